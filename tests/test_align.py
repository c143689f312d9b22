"""Face alignment (`bench.data.real.align`, `bench.data.real.mtcnn`) and `datasets prepare --align`.

The rendered faces are the embedded world's, with the five landmarks placed as the templates place them (eye
distance, nose and mouth below the eyes, mouth width: `TemplateWorld`), so that a perfect aligner puts the eyes on
the template's eye points; pose, light, skin, hair, background and camera are the world's own. Where the world
puts each face's eyes, nose and mouth is computed from its parameters (`true_landmarks`).

"A few pixels" is the usual success criterion of landmark localisation: a mean eye error below 10 % of the
inter-ocular distance (NME 0.1; 3.5 px in the 112x112 ArcFace crop).
"""
from __future__ import annotations

import importlib.util
import sys
import tarfile
import types

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import FacebenchGroup
from bench.data.real import align as al
from bench.data.real.align import ARCFACE_112, CROPS, UNIT_FACE, apply_transform, similarity_transform
from bench.data.real.cli import prepare
from bench.data.real.common import list_frames, read_image
from bench.data.real.oulu import OuluNPU
from bench.data.real.prepare import LANDMARKS_FILE, prepare_dataset
from bench.data.synth.world import DOMAINS, FaceWorld, _nuisance
from bench.errors import BadInputError, UnknownNameError

HAS_FACENET = importlib.util.find_spec("facenet_pytorch") is not None
needs_mtcnn = pytest.mark.skipif(not HAS_FACENET, reason="MTCNN's weights come with facenet-pytorch "
                                 "(pip install --no-deps facenet-pytorch), not installed")
NME = 0.1
ARC = CROPS.get("arcface112")


# --------------------------------------------------------------------------- rendered faces with known landmarks

_U = UNIT_FACE["mtcnn5"]
_EYE_DX = 0.25  # half the eye distance, in the world's face units (its identities draw 0.19 to 0.31)
_K = 2 * _EYE_DX / (_U[1, 0] - _U[0, 0])  # face units per unit of the template's mean face
_NOSE_TIP = 0.6  # the world's nose peaks 0.6 nose lengths below its start, which is 0.02 below the eyes
PROPORTIONS = {
    "eye_dx": _EYE_DX, "eye_slant": 0.0, "mouth_w": (_U[4, 0] - _U[3, 0]) / 2 * _K,
    "nose_len": ((_U[2, 1] - _U[0, 1]) * _K - 0.02) / _NOSE_TIP,
}
MOUTH_BELOW_EYES = (_U[3, 1] - _U[0, 1]) * _K


class TemplateWorld(FaceWorld):
    """The world's faces with the template's proportions (the rest of each identity, and every nuisance, unchanged)."""

    def identity(self, identity: int) -> dict:
        params = dict(super().identity(identity))
        params.update(PROPORTIONS)
        params["mouth_y"] = params["eye_y"] + MOUTH_BELOW_EYES
        return params


def true_landmarks(world: FaceWorld, domain: str, identity: int, sample: int) -> np.ndarray:
    """Where `world.render` puts the pupils, nose tip and mouth corners of a face, in pixels (mtcnn5 order)."""
    p, n = world.identity(identity), _nuisance(world.seed, DOMAINS[domain], identity, sample)
    shift, eye_y = n["yaw"] * 0.22, p["eye_y"] + n["pitch"] * 0.15  # inner features' parallax
    iris, mouth_y = n["yaw"] * 0.03, p["mouth_y"] + n["pitch"] * 0.15
    face = np.array([
        (shift - p["eye_dx"] + iris, eye_y), (shift + p["eye_dx"] + iris, eye_y),
        (shift * 1.3, eye_y + 0.02 + _NOSE_TIP * p["nose_len"]),
        (shift - p["mouth_w"], mouth_y), (shift + p["mouth_w"], mouth_y),
    ])
    c, s = np.cos(n["roll"]), np.sin(n["roll"])
    u = n["tx"] + n["scale"] * (c * face[:, 0] - s * face[:, 1])
    v = n["ty"] + n["scale"] * (s * face[:, 0] + c * face[:, 1])
    return np.stack([(u + 1) * world.size / 2 - 0.5, (v + 1) * world.size / 2 - 0.5], 1)


def eye_nme(landmarks: np.ndarray, truth: np.ndarray, crop=ARC, scheme: str = "mtcnn5") -> float:
    """Mean distance of the true eyes from the crop's eye points, once aligned by `landmarks`, over the eye distance."""
    eyes = crop.eyes(scheme)
    placed = apply_transform(similarity_transform(landmarks, crop.template(scheme)), truth[:2])
    return float(np.linalg.norm(placed - eyes, axis=1).mean() / np.linalg.norm(eyes[1] - eyes[0]))


@pytest.fixture(scope="module")
def faces():
    """24 rendered faces (128 px, the OULU stand-in's camera and light) and their true landmarks."""
    world = TemplateWorld(seed=0, size=128)
    ids = list(range(24))
    images = world.render(ids, [1] * len(ids), domain="oulu").images
    return images, [true_landmarks(world, "oulu", i, 1) for i in ids]


# --------------------------------------------------------------------------- the transform and the crops


def test_similarity_transform_recovers_a_similarity_and_never_reflects():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(5, 2)) * 20
    angle, scale, shift = 0.4, 1.7, np.array([30.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(src, scale * src @ rotation.T + shift)
    assert np.allclose(matrix, np.c_[scale * rotation, shift])
    mirrored = similarity_transform(src, src * [-1, 1])  # the best reflection-free fit of a mirror image
    assert np.linalg.det(mirrored[:, :2]) > 0
    with pytest.raises(BadInputError, match="all lie on one point"):
        similarity_transform(np.ones((5, 2)), src)
    with pytest.raises(BadInputError, match="two sets of N >= 2 points"):
        similarity_transform(src[:, :1], src[:, :1])


def test_the_crops_place_both_schemes_on_one_face():
    """ArcFace's template is insightface's; each crop's dlib5 eye corners straddle its mtcnn5 eye centres."""
    assert np.array_equal(ARC.template("mtcnn5"), ARCFACE_112)
    for crop in (ARC, CROPS.get("dlib150")):
        mtcnn, dlib = crop.eyes("mtcnn5"), crop.eyes("dlib5")
        eye_distance = np.linalg.norm(mtcnn[1] - mtcnn[0])
        assert np.linalg.norm(mtcnn - dlib, axis=1).max() < 0.05 * eye_distance, crop.name
        assert (crop.template("mtcnn5") > 0).all() and (crop.template("mtcnn5") < crop.size).all()
    # dlib's chip: its unit square, padded by 0.25 on each side, scaled to 150 pixels
    assert np.allclose(CROPS.get("dlib150").template("dlib5"), (0.25 + UNIT_FACE["dlib5"]) / 1.5 * 150)
    with pytest.raises(UnknownNameError, match="unknown crop 'arcface"):
        CROPS.get("arcface")


def test_warp_moves_image_points_onto_the_template():
    """Bright dots drawn at five points of an image land, in the crop, on the template points they were aligned to."""
    rng = np.random.default_rng(1)
    angle, scale = 0.3, 2.2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (ARCFACE_112 - 56) @ rotation.T * scale + [150, 140] + rng.normal(0, 0.5, (5, 2))
    yy, xx = np.mgrid[0:300, 0:300]
    image = np.zeros((300, 300, 3), np.uint8)
    for k, (x, y) in enumerate(points):
        image[..., k % 3] += (200 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0 ** 2))).astype(np.uint8)
    crop = al.align_crop(image, points, ARC, "mtcnn5")
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    expected = apply_transform(similarity_transform(points, ARCFACE_112), points)
    cy, cx = np.mgrid[0:112, 0:112]
    for k, (x, y) in enumerate(expected):
        near = ((cx - x) ** 2 + (cy - y) ** 2 < 6 ** 2) & (crop[..., k % 3] > 20)
        weight = crop[..., k % 3] * near
        centroid = np.array([(weight * cx).sum(), (weight * cy).sum()]) / weight.sum()
        assert np.linalg.norm(centroid - [x, y]) < 0.3, (k, centroid, (x, y))
        assert np.linalg.norm(centroid - ARCFACE_112[k]) < 1.0  # the points were a similarity of the template


def test_true_landmarks_of_template_faces_fit_the_template(faces):
    """The stand-in faces are what the tests below need: aligned by their true points, their eyes are on the
    template's (checks `true_landmarks` and `TemplateWorld` themselves, with no detector)."""
    _, truths = faces
    assert max(eye_nme(t, t) for t in truths) < 0.03


# --------------------------------------------------------------------------- MTCNN


@needs_mtcnn
def test_mtcnn_aligns_rendered_faces(faces):
    images, truths = faces
    mtcnn = al.build_aligner("mtcnn").mtcnn
    found = [(mtcnn.largest(image), truth) for image, truth in zip(images, truths)]
    errors = [eye_nme(face.landmarks, truth) for face, truth in found if face is not None]
    assert len(errors) >= len(found) // 2, f"MTCNN found {len(errors)} of {len(found)} rendered faces"
    assert np.median(errors) < NME, f"median eye error {np.median(errors):.3f} of the eye distance"
    for face, truth in found:  # each face's box holds its true eyes
        if face is not None:
            x1, y1, x2, y2 = face.box
            assert ((truth[:2] > [x1, y1]) & (truth[:2] < [x2, y2])).all()


@needs_mtcnn
def test_mtcnn_matches_facenet_pytorch(faces):
    """The cascade written here against facenet-pytorch's own MTCNN on the same images: the same faces, boxes,
    probabilities and landmarks."""
    from facenet_pytorch import MTCNN as Reference

    reference = Reference(keep_all=True, select_largest=False)
    mine = al.build_aligner("mtcnn").mtcnn
    images, _ = faces
    compared = 0
    for image in images[:8]:
        ours = mine.detect(image)
        boxes, probs, points = reference.detect(image, landmarks=True)
        if boxes is None:
            assert ours == []
            continue
        assert len(ours) == len(boxes)
        for face, box, prob, point in zip(ours, boxes, probs, points):
            assert np.allclose(face.box, np.asarray(box, float), atol=1e-2)
            assert abs(face.score - float(prob)) < 1e-4
            assert np.allclose(face.landmarks, np.asarray(point, float), atol=1e-2)
            compared += 1
    assert compared >= 4


@needs_mtcnn
def test_mtcnn_weights_load_without_unpickling(monkeypatch):
    """Only `torch.load(weights_only=True)` reads the shipped files; a file that needs more is refused in one line."""
    import torch

    from bench.data.real import mtcnn

    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real_load(*a, **k))
    mtcnn.MTCNN()
    assert calls == [True, True, True]


def test_missing_weights_and_bad_input_are_one_line(monkeypatch, tmp_path):
    from bench.data.real import mtcnn

    monkeypatch.setattr(mtcnn, "find_spec", lambda name: None)
    with pytest.raises(BadInputError, match="pip install --no-deps facenet-pytorch"):
        mtcnn.MTCNN()
    (tmp_path / "pnet.pt").write_bytes(b"not a state dict")
    with pytest.raises(BadInputError, match="cannot read MTCNN weights .*pnet.pt"):
        mtcnn.MTCNN(folder=tmp_path)
    with pytest.raises(BadInputError, match="smallest face is 12 pixels"):
        mtcnn.MTCNN(min_face=8)


# --------------------------------------------------------------------------- dlib5 (its reader is another module)


def _stub_dlib_format(calls: list) -> types.ModuleType:
    """A stand-in for `bench.data.real.dlib_format` with its four names: the predictor returns the dlib5 points of
    the true face (the unit face's dlib5 points carried by the similarity that fits its mtcnn5 points)."""
    module = types.ModuleType(al.DLIB_FORMAT)

    class ShapePredictor:
        truth: np.ndarray = np.zeros((5, 2))

        @classmethod
        def from_file(cls, path):
            calls.append(("from_file", str(path)))
            return cls()

        def predict(self, image, box):
            calls.append(("predict", tuple(box)))
            fit = similarity_transform(UNIT_FACE["mtcnn5"], ShapePredictor.truth)
            return apply_transform(fit, UNIT_FACE["dlib5"])

    def face_chip(image, landmarks5, size=150, padding=0.25):
        calls.append(("face_chip", size, padding))
        return al.align_crop(image, landmarks5, CROPS.get("dlib150"), "dlib5")

    module.ShapePredictor, module.face_chip = ShapePredictor, face_chip
    module.installed_model_file = lambda name: calls.append(("model", name)) or f"/models/{name}"
    return module


def test_dlib5_aligner_against_the_reader_contract(monkeypatch, faces):
    calls: list = []
    module = _stub_dlib_format(calls)
    monkeypatch.setitem(sys.modules, al.DLIB_FORMAT, module)
    images, truths = faces
    box = (10.0, 12.0, 100.0, 110.0)
    for crop, size in (("dlib150", 150), ("arcface112", 112)):
        calls.clear()
        aligner = al.build_aligner("dlib5", crop, find_box=lambda rgb: box)
        module.ShapePredictor.truth = truths[0]
        face = aligner.align(images[0])
        assert face.crop.shape == (size, size, 3) and face.box == box
        assert calls[:3] == [("model", al.DLIB5_MODEL), ("from_file", f"/models/{al.DLIB5_MODEL}"), ("predict", box)]
        assert (("face_chip", 150, 0.25) in calls) == (crop == "dlib150")  # dlib's own chip for dlib150
        assert eye_nme(face.landmarks, truths[0], CROPS.get(crop), "dlib5") < 0.03
    assert al.build_aligner("dlib5", find_box=lambda rgb: None).align(images[0]) is None


def test_dlib5_without_its_reader_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, al.DLIB_FORMAT, None)
    with pytest.raises(BadInputError, match="--align dlib5 needs bench.data.real.dlib_format"):
        al.build_aligner("dlib5", find_box=lambda rgb: None)


# --------------------------------------------------------------------------- datasets prepare --align


def _write_face_avi(path, frames: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    side = frames.shape[1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (side, side))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


@pytest.fixture(scope="module")
def face_videos(tmp_path_factory):
    """OULU-NPU's official layout whose four videos show rendered faces (3 frames each, samples 0-2 of an identity),
    and each frame's true landmarks."""
    root = tmp_path_factory.mktemp("oulu-faces") / "official"
    world = TemplateWorld(seed=0, size=128)
    names = {"Train_files/1_1_01_1": 3, "Train_files/1_1_01_2": 4, "Dev_files/1_1_21_4": 5, "Test_files/1_3_36_1": 6}
    truths = {}
    for name, identity in names.items():
        _write_face_avi(root / f"{name}.avi", world.render([identity] * 3, [0, 1, 2], domain="oulu").images)
        truths[name] = [true_landmarks(world, "oulu", identity, s) for s in range(3)]
    lists = {"Train": ["+1,1_1_01_1", "-1,1_1_01_2"], "Dev": ["-2,1_1_21_4"], "Test": ["+1,1_3_36_1"]}
    for protocol, lines in lists.items():
        path = root / "Protocols" / "Protocol_1" / f"{protocol}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return root, truths


def _group():
    group = FacebenchGroup("datasets")
    group.add_command(prepare)
    return group


@needs_mtcnn
def test_prepare_align_mtcnn_end_to_end(face_videos, tmp_path):
    src, truths = face_videos
    out = tmp_path / "aligned"
    result = CliRunner().invoke(_group(), ["prepare", "oulu-npu", "--src", str(src), "--out", str(out),
                                           "--frames", "3", "--align", "mtcnn"])
    assert result.exit_code == 0, result.output
    assert "arcface112 crops by mtcnn" in result.output
    errors = []
    for name, truth in truths.items():
        folder = out / name
        if not folder.is_dir():
            continue
        assert (folder / "boxes.txt").read_text() == ""  # the crop is the face: loaders read it whole
        for line in (folder / LANDMARKS_FILE).read_text().splitlines():
            index, *values = line.split()
            assert read_image(folder / f"{int(index):04d}.png", 112).shape == (112, 112, 3)
            errors.append(eye_nme(np.array(values, float).reshape(5, 2), truth[int(index)]))
    assert len(errors) >= 6, f"faces aligned in {len(errors)} of 12 frames:\n{result.output}"
    assert np.median(errors) < NME
    video = OuluNPU(out).protocol(1, "train")[0]
    frame = list_frames(video, 3)[0]
    from PIL import Image

    with Image.open(frame.path) as img:
        assert frame.box is None and img.size == (112, 112)
        assert np.array_equal(read_image(frame.path, 112), np.asarray(img.convert("RGB")))
    again = prepare_dataset("oulu-npu", src, out, frames_per_video=3, align="mtcnn")
    assert again["skipped"] == len([p for p in truths if (out / p).is_dir()]) and again["videos"] == 0


@needs_mtcnn
def test_prepare_align_dlib5_crops_with_the_reader(monkeypatch, face_videos, tmp_path):
    """dlib5 in MTCNN's boxes (the stand-in predictor needs the true face: one video, one frame)."""
    calls: list = []
    module = _stub_dlib_format(calls)
    monkeypatch.setitem(sys.modules, al.DLIB_FORMAT, module)
    src, truths = face_videos
    module.ShapePredictor.truth = truths["Test_files/1_3_36_1"][1]
    counts = prepare_dataset("oulu-npu", src, tmp_path / "dlib", frames_per_video=1, align="dlib5", detector="mtcnn")
    assert counts["align"] == "dlib5" and counts["crop"] == "dlib150"
    assert ("face_chip", 150, 0.25) in calls and all(len(c[1]) == 4 for c in calls if c[0] == "predict")
    from PIL import Image

    with Image.open(tmp_path / "dlib" / "Test_files" / "1_3_36_1" / "0000.png") as img:
        assert img.size == (150, 150)


def test_prepare_without_a_face_writes_nothing_and_says_so(monkeypatch, tmp_path):
    """Flat frames (the loaders' video fixture) hold no face: no frame directory, and a warning naming the video."""
    from tests.real_fixtures import write_oulu_videos

    class NoFace:
        def align(self, rgb):
            return None

    monkeypatch.setattr("bench.data.real.prepare.build_aligner", lambda *a, **k: NoFace())
    src = write_oulu_videos(tmp_path / "official")
    result = CliRunner().invoke(_group(), ["prepare", "oulu-npu", "--src", str(src), "--out", str(tmp_path / "o"),
                                           "--frames", "2", "--align", "mtcnn", "--crop", "dlib150"])
    assert result.exit_code == 0, result.output
    assert "0 videos -> 0 frames (dlib150 crops by mtcnn)" in result.output
    assert "mtcnn found no face in any kept frame of" in result.output and "1_1_01_1.avi" in result.output
    assert not (tmp_path / "o" / "Train_files" / "1_1_01_1").exists()


@pytest.mark.parametrize("args, message", [
    (["--crop", "arcface112"], "--crop only applies to aligned crops; give --align mtcnn or dlib5 too"),
    (["--detector", "mtcnn"], "--detector only applies to aligned crops"),
    (["--align", "mtcnn", "--detector", "haar"], "--align mtcnn finds its own faces; --detector is for --align dlib5"),
    (["--align", "mtcnm"], "Invalid value for '--align': 'mtcnm' is not one of"),
    (["--align", "mtcnn", "--crop", "arcface128"], "Invalid value for '--crop'"),
])
def test_bad_alignment_options_are_one_line(tmp_path, args, message):
    from tests.real_fixtures import write_oulu_videos

    src = write_oulu_videos(tmp_path / "official")
    result = CliRunner().invoke(_group(), ["prepare", "oulu-npu", "--src", str(src), "--out", str(tmp_path / "o"),
                                           *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_prepare_align_mtcnn_without_its_weights_is_one_line(monkeypatch, tmp_path):
    from tests.real_fixtures import write_oulu_videos

    from bench.data.real import mtcnn

    monkeypatch.setattr(mtcnn, "find_spec", lambda name: None)
    src = write_oulu_videos(tmp_path / "official")
    result = CliRunner().invoke(_group(), ["prepare", "oulu-npu", "--src", str(src), "--out", str(tmp_path / "o"),
                                           "--align", "mtcnn"])
    assert result.exit_code == 2 and "pip install --no-deps facenet-pytorch" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@needs_mtcnn
def test_mtcnn_on_faceless_and_tiny_images():
    mtcnn = al.build_aligner("mtcnn").mtcnn
    assert mtcnn.detect(np.zeros((16, 16, 3), np.uint8)) == []  # smaller than the smallest face
    noise = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    assert all(f.landmarks.shape == (5, 2) for f in mtcnn.detect(noise))
    with pytest.raises(BadInputError, match="uint8 RGB image"):
        mtcnn.detect(np.zeros((16, 16), np.uint8))


def test_help_documents_alignment():
    text = CliRunner().invoke(_group(), ["prepare", "--help"]).output
    for word in ("--align [dlib5|mtcnn]", "--crop [arcface112|dlib150]", "--detector [haar|mtcnn]", "landmarks.txt"):
        assert word in text


# --------------------------------------------------------------------------- real photographs


@pytest.fixture(scope="session")
def photographs(tmp_path_factory):
    """The face photographs of face_recognition 1.3.0's sdist (fetched from PyPI into a temporary folder)."""
    import subprocess

    folder = tmp_path_factory.mktemp("face_recognition")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "face_recognition==1.3.0", "--no-deps",
                        "--no-binary", ":all:", "-d", str(folder), "-q"], check=True, capture_output=True, timeout=120)
        archive = next(folder.glob("face_recognition-1.3.0.tar.gz"))
    except (subprocess.SubprocessError, OSError, StopIteration) as e:
        pytest.skip(f"face_recognition 1.3.0's sdist could not be fetched from PyPI ({type(e).__name__})")
    from PIL import Image

    photos = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.endswith((".jpg",)) and "/tests/test_images/" in member.name:
                with Image.open(tar.extractfile(member)) as img:
                    img = img.convert("RGB")
                    img.thumbnail((800, 800))  # the faces stay 100 px or more across; both detectors run faster
                    photos[member.name.rsplit("/", 1)[1]] = np.asarray(img)
    assert photos, "the sdist holds no test images"
    return photos


@pytest.mark.slow
@needs_mtcnn
def test_mtcnn_on_photographs(photographs):
    """On real photographs: the same faces and points as facenet-pytorch's MTCNN, and the aligned crop really carries
    the eyes to the template (MTCNN run again on the crop, widened so the face has context, finds them there)."""
    from facenet_pytorch import MTCNN as Reference

    reference = Reference(keep_all=True, select_largest=False)
    mine = al.build_aligner("mtcnn").mtcnn
    wide = al.Crop("wide", 224, "the ArcFace crop in the middle of a 224 canvas", lambda s: ARC.template(s) + 56)
    for name, photo in sorted(photographs.items()):
        boxes, _, points = reference.detect(photo, landmarks=True)
        ours = mine.detect(photo)
        assert len(ours) == (0 if boxes is None else len(boxes)), name
        for face, point in zip(ours, points if boxes is not None else []):
            assert np.allclose(face.landmarks, np.asarray(point, float), atol=1e-2), name
        if "partial" in name or not ours:
            continue
        largest = max(ours, key=lambda f: f.area)
        again = mine.largest(al.align_crop(photo, largest.landmarks, wide, "mtcnn5"))
        assert again is not None, name
        eyes = wide.eyes()
        error = np.linalg.norm(again.landmarks[:2] - eyes, axis=1).mean() / np.linalg.norm(eyes[1] - eyes[0])
        assert error < NME, (name, error)


@pytest.mark.slow
def test_dlib5_on_photographs_agrees_with_mtcnn(photographs):
    """Where dlib's reader and its model are installed: dlib5's eye corners, in MTCNN's boxes, straddle MTCNN's eye
    centres (two independent landmarkers on the same real faces)."""
    if not HAS_FACENET:
        pytest.skip("MTCNN's weights come with facenet-pytorch, not installed")
    try:
        aligner = al.build_aligner("dlib5", "arcface112", find_box=lambda rgb: None)
    except BadInputError as e:
        pytest.skip(f"dlib5 unavailable here: {e}")
    mtcnn = al.build_aligner("mtcnn").mtcnn
    checked = 0
    for name, photo in sorted(photographs.items()):
        face = mtcnn.largest(photo)
        if face is None or "partial" in name:
            continue
        points = np.asarray(aligner.predictor.predict(photo, tuple(float(v) for v in face.box)), float)
        dlib_eyes = np.stack([points[2:4].mean(0), points[0:2].mean(0)])
        distance = np.linalg.norm(face.landmarks[1] - face.landmarks[0])
        assert np.linalg.norm(dlib_eyes - face.landmarks[:2], axis=1).mean() / distance < NME, name
        checked += 1
    assert checked >= 3
