"""insightface's verification `.bin` files: written the way insightface writes them (Python 3 and, assembled by hand,
Python 2), read back without running pickle code; every malformed case refused with one line."""
import io
import os
import pickle

import numpy as np
import pytest

from bench.data.real import DatasetError, InsightFaceBin, bin_folds, read_bin
from bench.data.real.insightface_bin import _NoCodeUnpickler
from bench.errors import FacebenchError
from tests import real_fixtures as fx

PAIRS = 10


def _faces(n_images: int = 2 * PAIRS, fmt: str = "JPEG") -> list[bytes]:
    return [fx.encoded_face(i, fmt=fmt) for i in range(n_images)]


ISSAME = [i % 2 == 0 for i in range(PAIRS)]


def _refused(path, message) -> DatasetError:
    with pytest.raises(DatasetError, match=message) as info:
        read_bin(path)
    assert isinstance(info.value, FacebenchError) and "\n" not in str(info.value) and str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize("protocol", [None, 3, 4])
def test_reads_a_bin_written_like_insightface(tmp_path, protocol):
    faces = _faces()
    path = fx.write_insightface_bin(tmp_path / "lfw.bin", faces, ISSAME, protocol)
    data = read_bin(path)
    assert len(data) == PAIRS and data.issame.dtype == bool and data.issame.tolist() == ISSAME
    assert data.encoded == faces
    first, second = data.pairs([0, 3])
    assert first.shape == second.shape == (2, 112, 112, 3) and first.dtype == np.uint8
    # pairs are interleaved: pair 3 is images 6 and 7
    assert np.array_equal(second[1], data.images([7])[0])
    assert not np.array_equal(first[1], second[1])
    floats = data.floats([0, 1], size=56)
    assert floats.shape == (2, 56, 56, 3) and floats.dtype == np.float32
    assert 0.0 <= floats.min() and floats.max() <= 1.0 and floats.max() > 0.5


def test_png_images_decode_exactly(tmp_path):
    path = fx.write_insightface_bin(tmp_path / "x.bin", _faces(4, fmt="PNG"), [True, False])
    expected = np.random.default_rng(3).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    assert np.array_equal(read_bin(path).images([3])[0], expected)


@pytest.mark.parametrize("protocol", [0, 2])
def test_reads_python2_era_files(tmp_path, protocol):
    """Python 2 wrote the images as `str` (STRING at protocol 0, SHORT_BINSTRING / BINSTRING at 2); they are read
    back as bytes, as insightface's reader does with `encoding='bytes'`."""
    faces = _faces(4, fmt="PNG")
    short = [b"\x89PNG"]  # under 256 bytes: SHORT_BINSTRING at protocol 2
    raw = fx.py2_pickle(faces, [True, False], protocol)
    assert (b"U" + bytes([4]) + short[0] in fx.py2_pickle(short, [], 2)) and (protocol == 0 or b"T" in raw[:8])
    path = tmp_path / "py2.bin"
    path.write_bytes(raw)
    assert pickle.loads(raw, encoding="bytes") == (faces, [True, False])  # the hand-assembled file is a valid pickle
    data = read_bin(path)
    assert data.encoded == faces and data.issame.tolist() == [True, False]
    assert data.images([0, 1, 2, 3]).shape == (4, 112, 112, 3)


def test_folds_are_consecutive_blocks_in_file_order():
    assert bin_folds(20).tolist() == [f for f in range(10) for _ in range(2)]
    assert bin_folds(6000).tolist() == np.repeat(np.arange(10), 600).tolist()
    # 23 pairs: like scikit-learn's KFold(10), the first 3 folds are one longer
    assert np.bincount(bin_folds(23)).tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    with pytest.raises(DatasetError, match="10-fold evaluation needs at least 10 pairs, got 4"):
        bin_folds(4)


class _Shell:
    """Unpickled by an ordinary unpickler, this runs a shell command (os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Opener:
    """Unpickled by an ordinary unpickler, this creates a file (builtins.open in write mode)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("payload", [_Shell, _Opener])
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])  # GLOBAL, STACK_GLOBAL
def test_a_global_is_refused_and_nothing_runs(tmp_path, payload, protocol):
    marker = tmp_path / "marker-a"
    evil = pickle.dumps((_faces(2), [payload(marker)]), protocol=protocol)
    # the payload is live: an ordinary unpickler runs it (on a copy of the bytes naming another file, same length)
    control = tmp_path / "marker-b"
    pickle.loads(evil.replace(str(marker).encode(), str(control).encode()))
    assert control.exists()
    path = tmp_path / "evil.bin"
    path.write_bytes(evil)
    error = _refused(path, r"refused: the pickle refers to code \((GLOBAL|STACK_GLOBAL)")
    assert "nothing in it was run" in str(error)
    assert not marker.exists()


def test_the_unpickler_alone_refuses_globals_and_persistent_ids(tmp_path):
    """The second lock, without the opcode check in front of it."""
    marker = tmp_path / "pwned"
    evil = pickle.dumps([_Opener(marker)], protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        _NoCodeUnpickler(io.BytesIO(evil), encoding="bytes").load()
    assert not marker.exists()
    persistent = b"\x80\x02X\x01\x00\x00\x00aQ."  # BINUNICODE 'a', BINPERSID
    with pytest.raises(pickle.UnpicklingError, match="persistent id refused"):
        _NoCodeUnpickler(io.BytesIO(persistent), encoding="bytes").load()


def test_numpy_contents_are_refused_as_a_global_with_a_hint(tmp_path):
    """numpy labels, or images kept as the arrays `cv2.imencode` returns (as some packing scripts append them), need
    numpy's globals: refused, naming the global and saying how to convert the file."""
    path = fx.write_insightface_bin(tmp_path / "np.bin", _faces(4), np.array([True, False]))
    _refused(path, r"STACK_GLOBAL numpy[\w.]*\.(_reconstruct|_frombuffer) at byte .*re-save it as a list of bytes")
    arrays = [np.frombuffer(b, dtype=np.uint8) for b in _faces(2)]
    path = fx.write_insightface_bin(tmp_path / "np2.bin", arrays, [True], protocol=2)
    _refused(path, r"GLOBAL numpy[\w.]*\.\w+ at byte .*a list of bools \(bool\(label\)\)")


def test_truncated_file(tmp_path):
    path = fx.write_insightface_bin(tmp_path / "lfw.bin", _faces(), ISSAME)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _refused(path, "not a complete pickle .*truncated")
    path.write_bytes(b"")
    _refused(path, "the file is empty")


def test_not_a_pickle(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(fx.encoded_face(0))  # a JPEG saved under the .bin's name
    _refused(path, r"not a pickle .*it starts with b'\\xff\\xd8")


def test_python3_bytes_below_protocol_3_get_a_hint(tmp_path):
    path = fx.write_insightface_bin(tmp_path / "p2.bin", _faces(2), [True], protocol=2)
    _refused(path, r"GLOBAL _codecs.encode at byte \d+\).*re-save it with protocol 3 or higher")


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=".bin file not found"):
        InsightFaceBin(tmp_path / "absent.bin")


@pytest.mark.parametrize("obj, message", [
    ({"images": []}, "opcode EMPTY_DICT at byte .* builds something a .bin does not hold"),
    ((["a.jpg"], [True]), "opcode SHORT_BINUNICODE"),  # file names instead of images
    ((_faces(2), [1]), "opcode BININT1"),  # 0/1 instead of booleans
    ((_faces(2), [None]), "opcode NONE"),
    ((_faces(2), [True], [True]), r"expected a pickled pair \(images, issame\), got a tuple of length 3"),
    (_faces(2), r"expected \(list of encoded images, list of is-same booleans\), got \(a bytes, a bytes\)"),
    (_faces(3), r"expected a pickled pair \(images, issame\), got a list of length 3"),
    ((tuple(_faces(2)), [True]), r"expected \(list of encoded images, list of is-same booleans\), got \(a tuple"),
    ((_faces(2), [b"x"]), "is-same label 0 is a bytes, not a boolean"),
    (([_faces(1)[0], True], [True]), "image 1 is a bool, not encoded image bytes"),
    ((_faces(3), [True]), "1 is-same labels need 2 images .*found 3"),
    (([], []), "holds no pairs"),
])
def test_wrong_structure(tmp_path, obj, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    _refused(path, message)


def test_undecodable_image_names_image_and_pair(tmp_path):
    faces = _faces(4)
    faces[3] = b"not an image at all"
    data = read_bin(fx.write_insightface_bin(tmp_path / "x.bin", faces, [True, False]))  # opens: bytes are bytes
    assert data.images([0, 1, 2]).shape == (3, 112, 112, 3)
    with pytest.raises(DatasetError, match=r"image 3 \(pair 1\) cannot be decoded as an image") as info:
        data.pairs([1])
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="no image 4"):
        data.images([4])


def test_images_of_different_sizes_need_a_size(tmp_path):
    faces = [fx.encoded_face(0), fx.encoded_face(1, side=96)]
    data = read_bin(fx.write_insightface_bin(tmp_path / "x.bin", faces, [True]))
    with pytest.raises(DatasetError, match="images of different sizes"):
        data.images([0, 1])
    assert data.images([0, 1], size=112).shape == (2, 112, 112, 3)


def test_kfold_verification_over_a_bin(tmp_path):
    """The documented path: a .bin's pairs, its folds, one similarity per pair, `kfold_verification`. Genuine pairs are
    one image twice, impostor pairs two different images, so every fold's threshold separates them."""
    from bench.metrics import kfold_verification

    issame = [i % 2 == 0 for i in range(20)]
    faces = []
    for i, same in enumerate(issame):
        faces += [fx.encoded_face(2 * i, side=16, fmt="PNG"), fx.encoded_face(2 * i + (0 if same else 1), side=16, fmt="PNG")]
    data = read_bin(fx.write_insightface_bin(tmp_path / "tiny.bin", faces, issame))
    first, second = data.pairs(range(len(data)))
    scores = -np.abs(first.astype(float) - second.astype(float)).mean(axis=(1, 2, 3))
    result = kfold_verification(scores, data.issame, data.folds(), far=0.25)
    assert [f.fold for f in result.folds] == list(range(10))
    assert result.accuracy == (1.0, 0.0) and result.tar == (1.0, 0.0)
    assert [(f.n_genuine, f.n_impostor) for f in result.folds] == [(1, 1)] * 10
