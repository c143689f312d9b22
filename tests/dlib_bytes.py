"""A small writer of dlib's serialization (the inverse of bench/data/real/dlib_format.py, written from dlib's
`serialize` functions) for synthetic test files, and the real photos of the `face_recognition` sdist."""
from __future__ import annotations

import functools
import io
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest


def uint(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "little")
    return bytes([len(body)]) + body


def sint(v: int) -> bytes:
    body = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def real(x: float) -> bytes:
    """A float as dlib's `float_details` (24 mantissa digits, as dlib writes a float)."""
    if math.isinf(x):
        return sint(0) + sint(32000 if x > 0 else 32001)
    if math.isnan(x):
        return sint(0) + sint(32002)
    m, e = math.frexp(float(np.float32(x)))
    return sint(int(m * (1 << 24))) + sint(e - 24)


def reals(values) -> bytes:
    return b"".join(real(float(v)) for v in np.asarray(values).reshape(-1))


def string(s: str) -> bytes:
    return uint(len(s)) + s.encode("ascii")


def boolean(b: bool) -> bytes:
    return b"1" if b else b"0"


def tensor(a) -> bytes:
    a = np.asarray(a, dtype="<f4")
    shape = (list(a.shape) + [1, 1, 1, 1])[:4] if a.ndim < 4 else list(a.shape)
    return sint(2) + b"".join(sint(d) for d in shape) + a.tobytes()


def empty_tensor() -> bytes:
    return sint(2) + sint(0) * 4


def alias(*shape: int) -> bytes:
    return sint(1) + b"".join(sint(d) for d in shape)


def matrix(a) -> bytes:
    a = np.asarray(a, dtype=np.float32)
    a = a.reshape(-1, 1) if a.ndim == 1 else a
    return sint(-a.shape[0]) + sint(-a.shape[1]) + reals(a)


# -- network layers (the `serialize` of dlib/dnn/layers.h) --------------------------------------------------------

def con(weight, bias, stride: int, padding: int) -> bytes:
    f, c, nr, nc = weight.shape
    params = np.concatenate([np.asarray(weight, np.float32).reshape(-1), np.asarray(bias, np.float32)])
    return (string("con_4") + tensor(params.reshape(-1, 1, 1, 1)) + sint(f) + sint(nr) + sint(nc) + sint(stride)
            + sint(stride) + sint(padding) + sint(padding) + alias(f, c, nr, nc) + alias(1, f, 1, 1) + reals([1, 1, 1, 0]))


def affine(gamma, beta) -> bytes:
    k = len(gamma)
    params = np.concatenate([gamma, beta]).astype(np.float32)
    return string("affine_") + tensor(params.reshape(-1, 1, 1, 1)) + alias(1, k, 1, 1) + alias(1, k, 1, 1) + sint(0)


def relu() -> bytes:
    return string("relu_")


def pool(kind: str, window: int, stride: int) -> bytes:
    return string(f"{kind}_2") + sint(window) * 2 + sint(stride) * 2 + sint(0) * 2


def add_prev() -> bytes:
    return string("add_prev_")


def fc_no_bias(weight) -> bytes:
    inputs, outputs = weight.shape
    return (string("fc_2") + uint(outputs) + uint(inputs) + tensor(np.asarray(weight, np.float32).reshape(-1, 1, 1, 1))
            + alias(inputs, outputs, 1, 1) + alias(0, 0, 0, 0) + sint(1) + reals([1, 1, 1, 0]))


def network(layers: list, mean=(122.782, 117.001, 104.298), size: int = 150) -> bytes:
    """A `loss_metric` network of `layers` from the input up: layer bytes, or "tag"/"skip" (no bytes of their own).
    dlib writes it from the outside in: each wrapper's version, the input layer, then the layers from the input up
    (each followed by its state: three bools and three empty tensors)."""
    state = boolean(True) + boolean(True) + boolean(False) + empty_tensor() * 3
    head = sint(1) + string("loss_metric_2") + real(0.04) + real(0.6)
    wrappers = b"".join(sint(1) if item in ("tag", "skip") else sint(2) for item in reversed(layers[1:]))
    inner = (sint(3) + string("input_rgb_image_sized") + reals(mean) + uint(size) + uint(size) + layers[0] + state
             + uint(1))
    rest = b"".join(b"" if item in ("tag", "skip") else item + state for item in layers[1:])
    return head + wrappers + inner + rest


# -- the real photos ----------------------------------------------------------------------------------------------

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
"""Three photographs of one person and one of another, in the tests of the `face_recognition` 1.3.0 sdist."""


@functools.lru_cache(maxsize=1)
def download_photos() -> dict:
    """The photos as (H, W, 3) uint8 RGB arrays, read from the sdist that pip fetches into a temporary folder (gone
    afterwards; the photos never reach the repository), once per test session; the test is skipped when the
    registry cannot be reached (a skip is not cached: the next module tries again)."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="face_recognition_sdist") as tmp:
        folder, tried = Path(tmp), []
        for isolation in (["--no-build-isolation"], []):
            cmd = [sys.executable, "-m", "pip", "download", "face_recognition==1.3.0", "--no-deps", "--no-binary",
                   ":all:", "-d", str(folder), "-q", *isolation]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            except subprocess.TimeoutExpired:
                pytest.skip("pip download face_recognition==1.3.0 timed out (registry unreachable?)")
            archives = sorted(folder.glob("face_recognition-1.3.0.tar.gz"))
            if archives:
                break
            tried.append(((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1])
        else:
            pytest.skip(f"cannot fetch the face_recognition 1.3.0 sdist from the registry: {tried[-1]}")
        photos = {}
        with tarfile.open(archives[0]) as tar:
            for name in PHOTOS:
                member = tar.getmember(f"face_recognition-1.3.0/tests/test_images/{name}")
                photos[name] = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB"))
    return photos
