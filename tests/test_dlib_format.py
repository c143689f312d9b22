"""dlib's serialization read in plain Python (bench/data/real/dlib_format.py): the primitives, a landmark predictor,
a network and malformed files, on synthetic bytes written by tests/dlib_bytes.py (no dlib, no model files)."""
import math

import numpy as np
import pytest

from bench.data.real import dlib_format as df
from bench.errors import FacebenchError
from tests import dlib_bytes as db


def reader(data: bytes) -> df.DlibReader:
    return df.DlibReader(data, "test.dat")


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, FacebenchError) and "\n" not in message
    return message


@pytest.mark.parametrize("value", [0, 1, 255, 256, 70000, 2**40 + 3, 2**63 - 1])
def test_unsigned_and_signed_integers_round_trip(value):
    assert reader(db.uint(value)).uint() == value
    assert reader(db.sint(value)).int() == value
    assert reader(db.sint(-value)).int() == -value


def test_integer_bytes_are_little_endian_after_a_control_byte():
    assert db.sint(-258) == bytes([0x82, 0x02, 0x01])
    assert reader(bytes([0x02, 0x34, 0x12])).uint() == 0x1234


@pytest.mark.parametrize("data, what", [
    (bytes([0x81, 0x01]), "control byte 0x81"),  # an unsigned integer with the sign bit
    (bytes([0x00]), "control byte 0x00"),  # no bytes
    (bytes([0x09]) + bytes(9), "control byte 0x09"),  # more than 8
    (bytes([0x04, 0x01]), "ends"),  # truncated
    (b"", "ends"),
])
def test_malformed_integers_give_one_line(data, what):
    with pytest.raises(df.DlibFormatError) as e:
        reader(data).uint()
    assert what in one_line_error(e) and "test.dat" in str(e.value)


@pytest.mark.parametrize("value", [0.0, 1.0, -2.5, 0.1, 122.782, -1e-7, 3.4e38, 1e-38])
def test_floats_in_dlibs_portable_format(value):
    expected = float(np.float32(value))
    assert reader(db.real(value)).float() == expected
    assert reader(db.reals([value, -value, value])).floats(3).tolist() == [expected, -expected, expected]


def test_special_floats():
    r = reader(db.real(math.inf) + db.real(-math.inf) + db.real(math.nan))
    assert r.float() == math.inf and r.float() == -math.inf and math.isnan(r.float())


def test_floats_refuse_dlibs_old_text_format_and_truncation():
    with pytest.raises(df.DlibFormatError) as e:
        reader(b"1.5 ").float()
    assert "old text format" in one_line_error(e)
    with pytest.raises(df.DlibFormatError) as e:
        reader(db.reals([1.0, 2.0])[:-1]).floats(2)
    assert "ends" in one_line_error(e)


def test_runs_of_integer_tokens_and_their_floats():
    values = [0, 5, -7, 300, -(2**40)]
    assert reader(b"".join(db.sint(v) for v in values)).tokens(5).tolist() == values
    t = reader(db.reals([1.5, -0.25, math.inf, -math.inf])).tokens(8)
    floats = df.floats_of_tokens(t[0::2], t[1::2])
    assert floats.dtype == np.float32 and floats.tolist() == [1.5, -0.25, math.inf, -math.inf]
    for bad, what in [(db.sint(300)[:-1], "ends"), (bytes([0x20, 0x01]), "control byte 0x20")]:
        with pytest.raises(df.DlibFormatError) as e:
            reader(bad).tokens(1)
        assert what in one_line_error(e)


def test_strings_bools_matrices_and_vectors():
    data = (db.string("con_4") + db.boolean(True) + db.boolean(False) + db.matrix([[1, 2], [3, 4]])
            + db.uint(3) + db.uint(7) + db.uint(8) + db.uint(9))
    r = reader(data)
    assert r.string() == "con_4" and r.boolean() is True and r.boolean() is False
    assert r.matrix().tolist() == [[1, 2], [3, 4]]
    assert r.sequence(r.uint, "list") == [7, 8, 9]
    r.at_end()
    with pytest.raises(df.DlibFormatError) as e:
        reader(b"x").boolean()
    assert "bool" in one_line_error(e)


def test_tensors_and_their_versions():
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) / 7
    assert np.array_equal(reader(db.tensor(a)).tensor(), a)
    assert reader(db.alias(2, 3, 4, 5)).alias_tensor() == (2, 3, 4, 5)
    with pytest.raises(df.DlibFormatError) as e:
        reader(db.sint(1) + db.tensor(a)[1:]).tensor()
    assert "unexpected version 1" in one_line_error(e)
    with pytest.raises(df.DlibFormatError) as e:
        reader(db.tensor(a)[:-3]).tensor()
    assert "ends" in one_line_error(e)


# -- a landmark predictor with known behaviour ----------------------------------------------------------------------

def tiny_predictor(thresh: float = 10.0, version: int = 1) -> bytes:
    """Two landmarks at (0.25, 0.5) and (0.75, 0.5) of the box; one tree splitting on (pixel at landmark 0) -
    (pixel at landmark 1) > thresh: left leaf moves landmark 0 right by 0.1 of the box, the right leaf left."""
    initial = [0.25, 0.5, 0.75, 0.5]
    tree = (db.uint(1) + db.uint(0) + db.uint(1) + db.real(thresh)
            + db.uint(2) + db.matrix([0.1, 0, 0, 0]) + db.matrix([-0.1, 0, 0, 0]))
    forests = db.uint(1) + db.uint(1) + tree
    anchors = db.uint(1) + db.uint(2) + db.uint(0) + db.uint(1)
    deltas = db.uint(1) + db.uint(2) + db.reals([0, 0, 0, 0])
    return db.sint(version) + db.matrix(initial) + forests + anchors + deltas


def face_image(left_value: int, right_value: int) -> np.ndarray:
    image = np.full((41, 41, 3), 100, dtype=np.uint8)
    image[20, 10] = left_value
    image[20, 30] = right_value
    return image


def test_shape_predictor_walks_its_trees_on_pixel_differences():
    sp = df.ShapePredictor.from_bytes(tiny_predictor(), "tiny.dat")
    assert sp.num_parts == 2
    box = (0, 0, 40, 40)
    bright_left = sp.predict(face_image(200, 0), box)  # 200 - 0 > 10: left leaf
    assert bright_left.tolist() == [[14.0, 20.0], [30.0, 20.0]]
    dark_left = sp.predict(face_image(0, 200), box)
    assert dark_left.tolist() == [[6.0, 20.0], [30.0, 20.0]]
    # the box maps the unit square; a shifted box shifts the points
    assert sp.predict(np.zeros((60, 60, 3), np.uint8), (10, 5, 50, 45)).tolist() == [[16.0, 25.0], [40.0, 25.0]]


def test_shape_predictor_reads_intensity_as_dlib_does():
    sp = df.ShapePredictor.from_bytes(tiny_predictor(thresh=0.0), "tiny.dat")
    image = face_image(0, 0)
    image[20, 10] = (2, 0, 0)  # intensity (2 + 0 + 0) // 3 == 0: not > 0
    assert sp.predict(image, (0, 0, 40, 40))[0, 0] == 6.0
    image[20, 10] = (3, 0, 0)  # intensity 1 > 0
    assert sp.predict(image, (0, 0, 40, 40))[0, 0] == 14.0
    with pytest.raises(df.DlibFormatError):
        sp.predict(image.astype(np.float32), (0, 0, 40, 40))


@pytest.mark.parametrize("data, what", [
    (tiny_predictor(version=2), "unexpected version 2"),
    (tiny_predictor()[:-5], "ends"),
    (tiny_predictor() + b"\x00", "left over"),
    (b"", "ends"),
    (tiny_predictor().replace(db.matrix([-0.1, 0, 0, 0]), db.matrix([-0.1, 0])), "differ in size"),
])
def test_malformed_shape_predictors_give_one_line(data, what, tmp_path):
    path = tmp_path / "bad.dat"
    path.write_bytes(data)
    with pytest.raises(df.DlibFormatError) as e:
        df.ShapePredictor.from_file(path)
    assert what in one_line_error(e) and "bad.dat" in str(e.value)


def test_damaged_files_give_one_line_or_read(tmp_path):
    """Truncations and flipped bytes anywhere in a predictor or a network: a one-line error (or, by chance, a file
    that still reads), never another exception."""
    rng = np.random.default_rng(0)
    for data, read in [(tiny_predictor(), df.ShapePredictor.from_bytes), (tiny_network()[0], df.read_net)]:
        damaged = [data[:cut] for cut in rng.integers(0, len(data), 30)]
        for at in rng.integers(0, len(data), 60):
            flipped = bytearray(data)
            flipped[at] ^= int(rng.integers(1, 256))
            damaged.append(bytes(flipped))
        for bad in damaged:
            try:
                read(bad, "damaged.dat")
            except df.DlibFormatError as e:
                assert "\n" not in str(e) and "damaged.dat" in str(e)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(df.DlibFormatError) as e:
        df.ShapePredictor.from_file(tmp_path / "nope.dat")
    assert "cannot read" in one_line_error(e)


# -- networks -------------------------------------------------------------------------------------------------------

def tiny_network() -> tuple[bytes, dict]:
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(4, 3, 3, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    w2, b2 = rng.normal(size=(4, 4, 3, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    fc = rng.normal(size=(4, 5)).astype(np.float32)
    layers = [db.con(w1, b1, 2, 0), db.relu(), "tag", db.con(w2, b2, 1, 1), db.affine(np.ones(4), np.zeros(4)),
              "skip", db.pool("avg_pool", 2, 2), db.add_prev(), db.pool("avg_pool", 0, 1), db.fc_no_bias(fc)]
    return db.network(layers, size=9), {"w1": w1, "b1": b1, "w2": w2, "fc": fc}


def test_read_net_reads_the_layers_from_the_input_up():
    data, weights = tiny_network()
    net = df.read_net(data, "tiny net")
    assert net.kinds == ["con", "relu", "tag_or_skip", "con", "affine", "tag_or_skip", "avg_pool", "add_prev",
                         "avg_pool", "fc"]
    assert net.input["nr"] == 9 and net.input["avg_red"] == pytest.approx(122.782)
    assert net.loss["dist_thresh"] == pytest.approx(0.6)
    first = net.layers[0]
    assert first.fields["stride_y"] == 2 and first.fields["padding_x"] == 0
    assert np.array_equal(first.arrays["weight"], weights["w1"]) and np.array_equal(first.arrays["bias"], weights["b1"])
    assert net.layers[3].fields["padding_y"] == 1
    assert np.array_equal(net.layers[-1].arrays["weight"], weights["fc"])  # input-major (inputs, outputs)
    assert net.layers[-2].fields["nr"] == 0


def test_malformed_networks_give_one_line():
    data, _ = tiny_network()
    for bad, what in [(data[:-4], "ends"), (data + b"1", "left over"),
                      (db.sint(2) + data[1:], "unexpected version 2"),
                      (data.replace(b"relu_", b"bn_c2"), "batch norm not folded")]:
        with pytest.raises(df.DlibFormatError) as e:
            df.read_net(bad, "bad net")
        assert what in one_line_error(e), (what, str(e.value))


# -- the installed model files ----------------------------------------------------------------------------------------

def test_installed_model_file_checks_the_pinned_sha256(tmp_path, monkeypatch):
    name = "shape_predictor_5_face_landmarks.dat"
    monkeypatch.setattr(df, "models_directory", lambda: None)
    with pytest.raises(df.DlibFormatError) as e:
        df.installed_model_file(name)
    assert "pip install 'facebench[real]'" in one_line_error(e) and "not installed" in str(e.value)
    (tmp_path / name).write_bytes(b"not dlib's file")
    monkeypatch.setattr(df, "models_directory", lambda: tmp_path)
    with pytest.raises(df.DlibFormatError) as e:
        df.installed_model_file(name)
    assert "sha256" in one_line_error(e) and "pip install 'facebench[real]'" in str(e.value)
    with pytest.raises(df.DlibFormatError) as e:
        df.installed_model_file("mmod_human_face_detector.dat")
    assert "not one of the pinned" in one_line_error(e)
    assert len(set(df.PINNED_SHA256.values())) == 3 and all(len(h) == 64 for h in df.PINNED_SHA256.values())


# -- face chips -------------------------------------------------------------------------------------------------------

def test_face_chip_of_landmarks_at_the_template_averages_neighbouring_pixels():
    """Landmarks exactly where `get_face_chip_details` puts them in a 150 px chip give no rotation and unit scale,
    and dlib's chip rectangle is centred on (75, 75) with a width of 149: (0.5, 0.5, 149.5, 149.5). Each chip pixel
    is then the bilinear mean of a 2 x 2 block, rounded down; the last row and column fall outside (black)."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(150, 150, 3), dtype=np.uint8)
    landmarks = (0.25 + df.FIVE_POINT_TEMPLATE) / 1.5 * 150
    details = df.face_chip_details(landmarks)
    assert details.angle == pytest.approx(0, abs=1e-12)
    assert np.allclose(details.rect, (0.5, 0.5, 149.5, 149.5))
    chip = df.face_chip(image, landmarks)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    blocks = image.astype(np.float64)
    mean = (blocks[:-1, :-1] + blocks[1:, :-1] + blocks[:-1, 1:] + blocks[1:, 1:]) / 4
    assert np.abs(chip[:149, :149].astype(int) - np.floor(mean + 1e-9)).max() <= 1
    assert (chip[149] == 0).all() and (chip[:, 149] == 0).all()


def test_face_chip_rotates_and_scales_with_the_landmarks():
    image = np.zeros((400, 400, 3), np.uint8)
    image[:, 200:] = 255  # right half white
    base = (0.25 + df.FIVE_POINT_TEMPLATE) / 1.5 * 150
    turned = (base - 75) @ np.array([[0.0, 1.0], [-1.0, 0.0]]) * 2 + 200  # turned 90 degrees, twice as large
    chip = df.face_chip(image, turned)
    assert df.face_chip_details(turned).angle == pytest.approx(math.pi / 2)
    assert chip.shape == (150, 150, 3)
    # the chip's top rows come from the image's right (white) half once turned back
    assert chip[:60].mean() > 200 and chip[90:].mean() < 50
    with pytest.raises(df.DlibFormatError):
        df.face_chip(image, turned[:4])


def test_pyramid_down_filters_and_halves():
    image = np.full((20, 30, 3), 80, dtype=np.uint8)
    down = df._pyramid_down(image)
    assert down.shape == ((20 - 3) // 2, (30 - 3) // 2, 3)
    assert (down == 80).all()  # (16 * 16 * 80) // 256


def test_the_readers_need_neither_dlib_nor_torch_nor_pickle():
    """dlib_format is numpy only (the data layer: no torch); neither it nor the rebuilt network imports dlib or
    pickle."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for module in ("bench/data/real/dlib_format.py", "models_zoo/external/dlib_resnet.py"):
        tree = ast.parse((root / module).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"dlib", "pickle", "face_recognition_models"}, (module, imported)
    code = "import sys, bench.data.real.dlib_format; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
