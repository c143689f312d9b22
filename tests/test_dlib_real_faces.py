"""Issue 18, item 4: real faces end to end, with no dlib at run time. The photographs of the `face_recognition`
1.3.0 sdist (three of one person, one of another; fetched from the registry at test time, never stored) are
found by OpenCV's Haar cascade, aligned by the 5-point predictor read from dlib's file (`ShapePredictor`,
`face_chip`) and scored by the rebuilt ResNet: genuine pairs match at dlib's native Euclidean threshold (0.6),
impostor pairs do not, and facebench's impersonation attack (PGD from the attack registry, on a verification task
whose score is minus the squared Euclidean distance, so that its threshold is the native one) at Linf 8/255 makes
the impostor match."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from attacks import make_attack
from bench.data.real import dlib_format as df
from bench.tasks import VerificationTask
from tests import dlib_bytes as db

pytestmark = pytest.mark.slow


def model_file(name: str):
    try:
        return df.installed_model_file(name)
    except df.DlibFormatError as e:
        pytest.skip(str(e))


class SquaredDistanceScore(nn.Module):
    """[f(x), |f(x)|^2, 1]: its dot product with [2r, -1, -|r|^2] is -|f(x) - r|^2, so a `VerificationTask` over it
    accepts a pair exactly when the descriptors are closer than sqrt(-threshold)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.model(x)
        return torch.cat([f, (f * f).sum(dim=1, keepdim=True), torch.ones_like(f[:, :1])], dim=1)

    @staticmethod
    def reference(r: torch.Tensor) -> torch.Tensor:
        return torch.cat([2 * r, -torch.ones_like(r[:, :1]), -(r * r).sum(dim=1, keepdim=True)], dim=1)


@pytest.fixture(scope="module")
def chips():
    """The aligned 150 x 150 chips of the photos (Haar box -> 5 landmarks -> face_chip), in [0, 1], NCHW."""
    from bench.data.real.prepare import FaceDetector

    predictor = df.ShapePredictor.from_file(model_file("shape_predictor_5_face_landmarks.dat"))
    photos = db.download_photos()
    detector, out = FaceDetector(), {}
    for name, image in photos.items():
        found = detector.largest_face(np.ascontiguousarray(image[:, :, ::-1]))
        assert found is not None, f"no face found in {name}"
        x, y, w, h = found
        landmarks = predictor.predict(image, (x, y, x + w - 1, y + h - 1))
        out[name] = torch.from_numpy(df.face_chip(image, landmarks)).permute(2, 0, 1).float() / 255
    return out


@pytest.fixture(scope="module")
def network():
    from models_zoo.external.dlib_resnet import build_dlib_resnet

    return build_dlib_resnet(model_file("dlib_face_recognition_resnet_model_v1.dat"))


def test_real_faces_match_at_the_native_threshold_and_pgd_impersonates(chips, network):
    from models_zoo.external.dlib_resnet import NATIVE_THRESHOLD

    same = [n for n in db.PHOTOS if n.startswith("obama")]
    with torch.no_grad():
        d = {n: network(chips[n][None])[0] for n in db.PHOTOS}
    genuine = [float((d[a] - d[b]).norm()) for a, b in itertools.combinations(same, 2)]
    impostor = [float((d["biden.jpg"] - d[b]).norm()) for b in same]
    assert max(genuine) < NATIVE_THRESHOLD < min(impostor), (genuine, impostor)

    # impersonation: the other person's chip, perturbed, should be accepted as each of the three photos
    probe = chips["biden.jpg"][None].repeat(len(same), 1, 1, 1)
    references = SquaredDistanceScore.reference(torch.stack([d[n] for n in same]))
    task = VerificationTask(SquaredDistanceScore(network), references, -NATIVE_THRESHOLD ** 2, "impersonation")
    assert not task.success(probe).any()  # clean: rejected
    eps = 8 / 255
    out = make_attack("pgd", {"steps": 20}).run(task, probe, "linf", eps, torch.Generator().manual_seed(0))
    assert out.success.all()
    delta = out.x_adv - probe
    assert delta.abs().max() <= eps + 1e-6 and out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    with torch.no_grad():  # judged again with the plain network at the native threshold
        distances = (network(out.x_adv) - torch.stack([d[n] for n in same])).norm(dim=1)
    assert (distances < NATIVE_THRESHOLD).all(), distances
