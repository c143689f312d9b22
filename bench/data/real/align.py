"""Face alignment: five landmarks -> the crop a real model expects (ArcFace's 112x112 template, dlib's 150x150 chip).

An aligner finds a face's five landmarks in one landmark scheme:

- `mtcnn5` (MTCNN, `bench.data.real.mtcnn`): the two eye centres, the nose tip, the two mouth corners, image
  left first;
- `dlib5` (dlib's 5-point shape predictor, `bench.data.real.dlib_format`): the outer and inner corner of the
  image-right eye, the outer and inner corner of the image-left eye, the base of the nose (dlib's part order).

A crop places each scheme's points at fixed pixels; the face is mapped there by the least-squares similarity
transform (rotation, uniform scale, translation: Umeyama's solution) and resampled bilinearly, outside the image
black, as insightface and dlib do. Pixel coordinates put the centre of the top-left pixel at (0, 0).

Only numpy at import: `facebench datasets prepare --help` loads this module, and torch, OpenCV and the aligners'
networks are imported when an aligner is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from bench.errors import BadInputError
from bench.registry import Registry

ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
"""insightface's reference points of its 112x112 ArcFace crops (`arcface_src` in its face_align), in mtcnn5 order."""

DLIB_CHIP_PADDING = 0.25
"""The padding of dlib's 150x150 chips for its face recognition network (`get_face_chip(img, shape, 150, 0.25)`)."""

# Where each scheme's points lie on dlib's mean face, in the unit square that dlib's chips are cut from
# (`get_face_chip_details`). dlib5: dlib's own five points for 5-part shapes. mtcnn5: derived from dlib's mean
# 68-point face (the mean of each eye's six points; point 30, the nose tip; points 48 and 54, the mouth corners).
UNIT_FACE = {
    "dlib5": np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                       [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                       [0.4901123135679, 0.6277975316475]]),
    "mtcnn5": np.array([[0.225492, 0.215990], [0.754761, 0.215990], [0.490127, 0.515625],
                        [0.254149, 0.780233], [0.726104, 0.780233]]),
}
SCHEMES = tuple(UNIT_FACE)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the similarity (rotation, uniform scale, translation, no reflection) that maps the points
    `src` (N, 2) closest to `dst` (N, 2) in least squares (Umeyama, 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise BadInputError(f"a similarity needs two sets of N >= 2 points (N, 2), got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise BadInputError("landmarks must be finite numbers")
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    s, d = src - mean_src, dst - mean_dst
    var_src = (s ** 2).sum() / len(src)
    if var_src <= 1e-12:
        raise BadInputError("the landmarks all lie on one point; no transform maps them")
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(sigma) @ flip)) / var_src
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_dst - scale * rotation @ mean_src
    return matrix


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped by a 2x3 affine matrix."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


# --------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class Crop:
    """An aligned crop: its side and where each landmark scheme's points go in it."""

    name: str
    size: int
    description: str
    place: Callable[[str], np.ndarray]  # scheme -> its points (5, 2) in the crop's pixels

    def template(self, scheme: str) -> np.ndarray:
        if scheme not in UNIT_FACE:
            raise BadInputError(f"unknown landmark scheme {scheme!r} (known: {', '.join(SCHEMES)})")
        return self.place(scheme)

    def eyes(self, scheme: str = "mtcnn5") -> np.ndarray:
        """The two eye centres (image left first) in the crop's pixels."""
        points = self.template(scheme)
        return points[:2] if scheme == "mtcnn5" else np.stack([points[2:4].mean(0), points[0:2].mean(0)])


CROPS: Registry[Crop] = Registry("crop")


def _arcface_place(scheme: str) -> np.ndarray:
    if scheme == "mtcnn5":
        return ARCFACE_112.copy()
    # the other scheme's points go where the mean face puts them once its mtcnn5 points fit the template
    fit = similarity_transform(UNIT_FACE["mtcnn5"], ARCFACE_112)
    return apply_transform(fit, UNIT_FACE[scheme])


def _dlib_place(scheme: str, size: int = 150, padding: float = DLIB_CHIP_PADDING) -> np.ndarray:
    return (padding + UNIT_FACE[scheme]) / (1 + 2 * padding) * size


CROPS.add("arcface112", Crop("arcface112", 112, "insightface's ArcFace crop: 112x112, the five-point template",
                             _arcface_place))
CROPS.add("dlib150", Crop("dlib150", 150, "dlib's face chip: 150x150, padding 0.25, dlib's mean face",
                          _dlib_place))


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size x size crop whose pixel p shows the image at the point `matrix` maps to p (bilinear, black outside)."""
    import cv2

    return cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align_crop(rgb: np.ndarray, landmarks: np.ndarray, crop: Crop, scheme: str) -> np.ndarray:
    """The crop of a face whose landmarks (5, 2) in `scheme` are known: (size, size, 3) uint8."""
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (5, 2):
        raise BadInputError(f"five landmarks (5, 2) expected, got {landmarks.shape}")
    return warp(rgb, similarity_transform(landmarks, crop.template(scheme)), crop.size)


# --------------------------------------------------------------------------- aligners


@dataclass(frozen=True)
class Aligned:
    """One aligned face: the crop, and the box (left, top, right, bottom) and landmarks (5, 2) in the image."""

    crop: np.ndarray
    box: tuple[float, float, float, float]
    landmarks: np.ndarray


BoxFinder = Callable[[np.ndarray], Optional[tuple[float, float, float, float]]]
"""uint8 RGB image -> the box (left, top, right, bottom) of its largest face, or None."""


class MTCNNAligner:
    """MTCNN's box and five points; crop `arcface112` by default."""

    scheme = "mtcnn5"

    def __init__(self, crop: Crop, min_face: int = 20) -> None:
        from bench.data.real.mtcnn import MTCNN

        self.crop, self.mtcnn = crop, MTCNN(min_face=min_face)

    def align(self, rgb: np.ndarray) -> Optional[Aligned]:
        face = self.mtcnn.largest(rgb)
        if face is None:
            return None
        box = tuple(float(v) for v in face.box)
        return Aligned(align_crop(rgb, face.landmarks, self.crop, self.scheme), box, face.landmarks)


DLIB_FORMAT = "bench.data.real.dlib_format"
"""The reader of dlib's model files (`ShapePredictor`, `face_chip`, `installed_model_file`)."""

DLIB5_MODEL = "shape_predictor_5_face_landmarks.dat"


def dlib_format():
    """The module that reads dlib's model files; one line when this checkout lacks it."""
    import importlib

    try:
        return importlib.import_module(DLIB_FORMAT)
    except ModuleNotFoundError as e:
        if e.name != DLIB_FORMAT:
            raise
        raise BadInputError(
            f"--align dlib5 needs {DLIB_FORMAT} (the reader of dlib's shape predictor), which this facebench lacks"
        ) from None


class Dlib5Aligner:
    """dlib's 5-point shape predictor, in a box from `find_box`; crop `dlib150` (dlib's own chip) by default."""

    scheme = "dlib5"

    def __init__(self, crop: Crop, find_box: BoxFinder) -> None:
        self.fmt = dlib_format()
        self.predictor = self.fmt.ShapePredictor.from_file(self.fmt.installed_model_file(DLIB5_MODEL))
        self.crop, self.find_box = crop, find_box

    def align(self, rgb: np.ndarray) -> Optional[Aligned]:
        box = self.find_box(rgb)
        if box is None:
            return None
        points = np.asarray(self.predictor.predict(rgb, box), np.float64)
        if self.crop.name == "dlib150":
            chip = self.fmt.face_chip(rgb, points, size=self.crop.size, padding=DLIB_CHIP_PADDING)
        else:
            chip = align_crop(rgb, points, self.crop, self.scheme)
        return Aligned(np.asarray(chip, np.uint8), tuple(float(v) for v in box), points)


@dataclass(frozen=True)
class AlignerSpec:
    """A registered aligner: its landmark scheme, default crop, whether it takes a face box from a detector."""

    name: str
    scheme: str
    default_crop: str
    needs_box: bool
    description: str


ALIGNERS: Registry[AlignerSpec] = Registry("aligner")
ALIGNERS.add("mtcnn", AlignerSpec(
    "mtcnn", "mtcnn5", "arcface112", False,
    "MTCNN's cascade finds the face and its five points (weights: the facenet-pytorch wheel)"))
ALIGNERS.add("dlib5", AlignerSpec(
    "dlib5", "dlib5", "dlib150", True,
    "dlib's 5-point shape predictor in a detector's box (model: face-recognition-models)"))


def resolve(align: str, crop: Optional[str]) -> tuple[AlignerSpec, Crop]:
    """The aligner and crop named (the aligner's default crop when `crop` is None); unknown names are one line."""
    spec = ALIGNERS.get(align)
    return spec, CROPS.get(spec.default_crop if crop is None else crop)


def build_aligner(align: str, crop: Optional[str] = None, find_box: Optional[BoxFinder] = None):
    """An aligner object with `align(rgb) -> Aligned | None`; `find_box` gives dlib5 its face boxes."""
    spec, chosen = resolve(align, crop)
    if spec.name == "mtcnn":
        return MTCNNAligner(chosen)
    if find_box is None:
        raise BadInputError(f"--align {spec.name} needs a face detector for its boxes")
    return Dlib5Aligner(chosen, find_box)
