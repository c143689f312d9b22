"""Turn an official video dataset into the facebench frame layout that the FAS loaders read.

Each video `X.avi|.mov|.mp4` becomes a directory `X/` with `frames_per_video` evenly spaced
frames `0000.png, 0001.png, ...` and a `boxes.txt` of the largest face OpenCV's Haar cascade
finds in each (`<frame-index> <x> <y> <w> <h>`; no line when none is found). Every other file
(protocol lists, subject lists, ...) is copied unchanged, so the output keeps the official layout.

With an aligner (`align="mtcnn" | "dlib5"`, `bench.data.real.align`) each frame is instead the aligned crop of its
largest face (ArcFace's 112x112 or dlib's 150x150), `boxes.txt` is empty (the crop is the face) and
`landmarks.txt` holds the five points found in the source frame; a frame without a face is not written.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from bench.progress import bar as progress_bar

from bench.data.real.align import build_aligner, resolve
from bench.data.real.registry import DATASETS
from bench.data.real.common import VIDEO_SUFFIXES, DatasetError, even_indices, require
from bench.config import check_writable
from bench.errors import BadInputError

DONE_MARKER = "boxes.txt"
"""Written last in a video's directory: its presence means the video is done (prepare resumes)."""

LANDMARKS_FILE = "landmarks.txt"
"""Aligned output: `<frame-index> x0 y0 ... x4 y4`, the five points in the source frame (aligner's scheme)."""

DETECTORS = ("haar", "mtcnn")
"""What finds the face box that `--align dlib5` places its points in (the default first)."""


@dataclass
class PrepareReport:
    """What `prepare_dataset` did, as counts (and the videos it could not decode)."""

    dataset: str
    videos: int = 0
    frames: int = 0
    boxes: int = 0
    skipped: int = 0
    copied_files: int = 0
    failed: list = field(default_factory=list)
    align: Optional[str] = None
    crop: Optional[str] = None
    no_face: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset, "videos": self.videos, "frames": self.frames, "boxes": self.boxes,
            "skipped": self.skipped, "copied_files": self.copied_files, "failed": list(self.failed),
            "align": self.align, "crop": self.crop, "no_face": list(self.no_face),
        }


def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv is a declared dependency
        raise BadInputError("`prepare` needs OpenCV: pip install opencv-python-headless") from None
    return cv2


class FaceDetector:
    """OpenCV's shipped frontal-face Haar cascade; returns the largest face of a frame."""

    def __init__(self) -> None:
        cv2 = _cv2()
        if not hasattr(cv2, "CascadeClassifier"):
            raise BadInputError(
                f"OpenCV {cv2.__version__} has no Haar cascades (removed in 5.x); "
                "pip install 'opencv-python-headless>=4.8,<5'"
            )
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise BadInputError(f"cannot load OpenCV's face cascade {path}")

    def largest_face(self, bgr: np.ndarray) -> Optional[tuple[int, int, int, int]]:
        cv2 = _cv2()
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        side = min(gray.shape[:2])
        min_side = max(12, side // 10)
        faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
        return int(x), int(y), int(w), int(h)


def _check_paths(name: str, src: Path, out: Path) -> type:
    loader = DATASETS.get(name)
    if not getattr(loader, "has_videos", False):
        raise BadInputError(
            f"dataset {name!r} has no videos to prepare; point facebench at its official folder directly"
        )
    if not src.is_dir():
        raise DatasetError(f"--src {src} not found or not a directory")
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise BadInputError(f"--out {out} is inside --src {src}; choose a folder outside the official dataset")
    require(src, *loader.required)
    check_writable(out, "--out", folder=True)  # before the first video is read (a file in the way, no permission)
    return loader


def _read_frames(path: Path, n: int, size: Optional[int]) -> list[np.ndarray]:
    """`n` evenly spaced BGR frames of a video (fewer if it is shorter), scaled so the long side <= size."""
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return []
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # container without a frame count: count by decoding
            while capture.grab():
                count += 1
            capture.release()
            capture = cv2.VideoCapture(str(path))
        wanted = set(even_indices(count, n)) if count > 0 else set()
        frames, index = [], 0
        while wanted and index <= max(wanted) and capture.grab():
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    frames.append(frame)
            index += 1
    finally:
        capture.release()
    if size is not None:
        frames = [_fit(f, size) for f in frames]
    return frames


def _fit(frame: np.ndarray, size: int) -> np.ndarray:
    cv2 = _cv2()
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    if scale >= 1:
        return frame
    return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _check_alignment(align: Optional[str], crop: Optional[str], detector: Optional[str]) -> None:
    """Refuse, in one line, alignment options that do not go together (unknown names: the registries' line)."""
    if align is None:
        for option, value in (("--crop", crop), ("--detector", detector)):
            if value is not None:
                raise BadInputError(f"{option} only applies to aligned crops; give --align mtcnn or dlib5 too")
        return
    spec, _ = resolve(align, crop)
    if detector is not None and detector not in DETECTORS:
        raise BadInputError(f"unknown --detector {detector!r} (known: {', '.join(DETECTORS)})")
    if detector is not None and not spec.needs_box:
        raise BadInputError(f"--align {align} finds its own faces; --detector is for --align dlib5")


def _box_finder(detector: str):
    """uint8 RGB -> the largest face's box (left, top, right, bottom) by the Haar cascade or MTCNN, or None."""
    if detector == "mtcnn":
        from bench.data.real.mtcnn import MTCNN

        mtcnn = MTCNN()

        def find(rgb: np.ndarray):
            face = mtcnn.largest(rgb)
            return None if face is None else tuple(float(v) for v in face.box)

        return find
    haar = FaceDetector()

    def find_haar(rgb: np.ndarray):
        box = haar.largest_face(np.ascontiguousarray(rgb[..., ::-1]))
        return None if box is None else (box[0], box[1], box[0] + box[2] - 1, box[1] + box[3] - 1)

    return find_haar


def _write_boxed(target: Path, frames: list[np.ndarray], detector: "FaceDetector") -> int:
    """The frames as they are, and `boxes.txt` of their Haar faces; returns how many frames have a box."""
    cv2 = _cv2()
    lines = []
    for index, frame in enumerate(frames):
        if not cv2.imwrite(str(target / f"{index:04d}.png"), frame):
            raise DatasetError(f"cannot write {target / f'{index:04d}.png'}")
        box = detector.largest_face(frame)
        if box is not None:
            lines.append(f"{index} {box[0]} {box[1]} {box[2]} {box[3]}\n")
    (target / DONE_MARKER).write_text("".join(lines))
    return len(lines)


def _write_aligned(target: Path, frames: list[np.ndarray], aligner) -> int:
    """Each frame's aligned face crop (frames without a face are left out), `landmarks.txt`, then an empty
    `boxes.txt` (the crops are the faces); returns how many frames were written. Nothing is written without a face."""
    cv2 = _cv2()
    found = [(index, aligner.align(np.ascontiguousarray(frame[..., ::-1]))) for index, frame in enumerate(frames)]
    found = [(index, face) for index, face in found if face is not None]
    if not found:
        return 0
    target.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, face in found:
        if not cv2.imwrite(str(target / f"{index:04d}.png"), np.ascontiguousarray(face.crop[..., ::-1])):
            raise DatasetError(f"cannot write {target / f'{index:04d}.png'}")
        lines.append(f"{index} " + " ".join(f"{v:.2f}" for v in np.asarray(face.landmarks).ravel()) + "\n")
    (target / LANDMARKS_FILE).write_text("".join(lines))
    (target / DONE_MARKER).write_text("")
    return len(found)


def _video_files(src: Path) -> tuple[list[Path], list[Path]]:
    """The videos and the other files under `src` (relative, sorted; hidden ones left out)."""
    videos, others = [], []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        (videos if path.suffix.lower() in VIDEO_SUFFIXES else others).append(rel)
    return videos, others


def prepare_dataset(
    name: str, src: Path, out: Path, frames_per_video: int = 10, size: Optional[int] = None,
    align: Optional[str] = None, crop: Optional[str] = None, detector: Optional[str] = None,
) -> dict:
    """Write the frame layout of dataset `name` from its official folder `src` into `out`; return counts.

    `size`, if given, caps the longer side of the frames read (aspect kept). `align` (`mtcnn` or `dlib5`) writes
    each frame's aligned face crop instead (`crop`: `arcface112` or `dlib150`, by default the aligner's own;
    `detector`: what finds dlib5's face box, `haar` or `mtcnn`). Videos already done in `out` (their `boxes.txt`
    exists) are skipped, so an interrupted run can be resumed.
    """
    src, out = Path(src), Path(out)
    if frames_per_video < 1:
        raise BadInputError(f"--frames must be at least 1, got {frames_per_video}")
    if size is not None and size < 16:
        raise BadInputError(f"--size must be at least 16 pixels, got {size}")
    _check_alignment(align, crop, detector)
    _check_paths(name, src, out)
    report = PrepareReport(name)
    if align is None:  # built before anything is written: a missing model or package leaves --out untouched
        detector_ = FaceDetector()
    else:
        spec, chosen = resolve(align, crop)
        report.align, report.crop = spec.name, chosen.name
        finder = _box_finder(detector or DETECTORS[0]) if spec.needs_box else None
        aligner = build_aligner(spec.name, chosen.name, finder)
    videos, others = _video_files(src)
    for rel in others:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
        report.copied_files += 1
    for rel in progress_bar(videos, desc=f"prepare {name}", unit="video"):
        target = out / rel.with_suffix("")
        if (target / DONE_MARKER).exists():
            report.skipped += 1
            continue
        frames = _read_frames(src / rel, frames_per_video, size)
        if not frames:
            report.failed.append(str(rel))
            continue
        if align is None:
            target.mkdir(parents=True, exist_ok=True)
            report.boxes += _write_boxed(target, frames, detector_)
            written = len(frames)
        else:
            written = _write_aligned(target, frames, aligner)
            if not written:
                report.no_face.append(str(rel))
                continue
            report.boxes += written
        report.videos += 1
        report.frames += written
    return report.as_dict()
