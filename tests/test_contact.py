"""Contact sheets (`facebench datasets show`): whole labels, and frames without a depth map."""
import warnings

import numpy as np
from PIL import Image, ImageDraw

from bench.protocols import get_protocol
from bench.protocols.contact import _grid, contact_sheet, depth_tile, wrap_label
from tests import real_fixtures as fx


def test_labels_are_wrapped_never_cut():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for label, width in [("oulu replay-monitor", 124), ("casia print-cut", 60), ("msu replay-tablet-high-res", 40),
                         ("id 12", 124)]:
        lines = wrap_label(draw, label, width)
        assert "".join(lines).replace(" ", "") == label.replace(" ", "")  # every character is there
        assert all(draw.textlength(line) <= width for line in lines), lines
    assert wrap_label(draw, "oulu replay-monitor", 124) == ["oulu replay-monitor"]  # fits one line at 64 px x 2
    tiles = [np.zeros((16, 16, 3), np.uint8)] * 2
    one, two = _grid(tiles, ["a", "b"], 2), _grid(tiles, ["a", "oulu replay-monitor"], 2)
    assert two.size[1] > one.size[1]  # room for the second line (a 16 px tile is 32 px wide)


def test_frames_without_depth_map_show_no_depth_and_raise_no_warning(tmp_path, monkeypatch):
    """Prepared live frames of a dataset without depth maps hold NaN depth: no cast of NaN to uint8."""
    fx.write_replay(tmp_path / "replay-attack")
    fx.write_casia(tmp_path / "casia-fasd")
    monkeypatch.setenv("FACEBENCH_DATA", str(tmp_path))
    protocol = get_protocol("replay->casia")
    assert np.isnan(protocol.frames("train", 16).depth).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = contact_sheet(protocol, 16, tmp_path / "sheet.png", per_kind=2)
    assert Image.open(out).size[0] == 2 * 2 * 2 * 16
    tile, caption = depth_tile(np.full((4, 4), np.nan, np.float32))
    assert caption == "no depth map" and (tile == 128).all() and tile.dtype == np.uint8
    tile, caption = depth_tile(np.full((4, 4), 128 / 255, np.float32))
    assert caption == "depth" and (tile == 128).all()
