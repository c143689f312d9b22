"""Contact sheets: a PNG grid of samples so a person can see what a protocol holds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.data.sets import fold_of
from bench.protocols.base import Protocol
from bench.protocols.fas import FASProtocol
from bench.protocols.fr import FRProtocol
from bench.protocols.kfold import KFoldProtocol


LINE_HEIGHT = 12  # pixels per line of a label (PIL's default bitmap font)


def wrap_label(draw: ImageDraw.ImageDraw, label: str, width: int) -> list[str]:
    """`label` in lines that each fit in `width` pixels: broken at spaces, a word too long for a line at its
    characters; nothing is cut off."""
    lines: list[str] = []
    for word in label.split():
        line = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(line) <= width:
            lines[-1] = line
            continue
        while draw.textlength(word) > width and len(word) > 1:
            cut = max(k for k in range(1, len(word) + 1) if k == 1 or draw.textlength(word[:k]) <= width)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines or [""]


def _grid(tiles: list[np.ndarray], labels: list[str], cols: int, scale: int = 2) -> Image.Image:
    s = tiles[0].shape[0]
    width = s * scale
    rows = (len(tiles) + cols - 1) // cols
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [wrap_label(draw, label, width - 4) for label in labels]
    pad = LINE_HEIGHT * max(len(lines) for lines in wrapped) + 2
    sheet = Image.new("RGB", (cols * width, rows * (width + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, lines) in enumerate(zip(tiles, wrapped)):
        r, c = divmod(i, cols)
        img = Image.fromarray(tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2))
        sheet.paste(img.resize((width, width), Image.NEAREST), (c * width, r * (width + pad) + pad))
        draw.multiline_text((c * width + 2, r * (width + pad)), "\n".join(lines), fill="black", spacing=2)
    return sheet


def depth_tile(depth: np.ndarray) -> tuple[np.ndarray, str]:
    """A depth label as an 8-bit tile and its caption; a frame without a depth map (NaN, prepared live frames
    whose dataset ships none) is a mid-grey tile captioned so, never a cast of NaN."""
    if not np.isfinite(depth).all():
        return np.full(depth.shape, 128, np.uint8), "no depth map"
    return (np.clip(depth, 0, 1) * 255).round().astype(np.uint8), "depth"


def contact_sheet(protocol: Protocol, size: int, out: Path, per_kind: int = 6) -> Path:
    """FR: faces of a few train identities; k-fold verification protocols (no training split): a few genuine and
    impostor pairs side by side, spread over the folds; FAS: live and each spoof sub-type, with depth."""
    tiles, labels = [], []
    if isinstance(protocol, KFoldProtocol):
        for kind in ("genuine", "impostor"):
            pairs = protocol.test_pairs(kind, per_kind, 0, size)
            for probe, reference, pair_id in zip(pairs.probes, pairs.references, pairs.pair_ids):
                tiles += [probe, reference]
                labels += [f"f{fold_of(pair_id)} {kind}", ""]
        cols = 4
    elif isinstance(protocol, FRProtocol):
        train = protocol.train_set(size)
        for ident in np.unique(train.identities)[:per_kind]:
            idx = np.flatnonzero(train.identities == ident)[:per_kind]
            tiles += [train.images[i] for i in idx]
            labels += [f"id {ident}"] * len(idx)
        cols = per_kind
    elif isinstance(protocol, FASProtocol):
        data = protocol.frames("train", size)
        for sub in sorted(set(data.subtype), key=lambda t: (t != "live", t)):
            idx = np.flatnonzero(data.subtype == sub)[: per_kind * protocol.frames_per_video : protocol.frames_per_video]
            for i in idx:
                depth, caption = depth_tile(data.depth[i])
                tiles += [data.images[i], depth]
                labels += [f"{data.domains[i]} {sub}", caption]
        cols = 2 * per_kind
    else:  # pragma: no cover - every protocol is FR or FAS
        raise TypeError(type(protocol))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _grid(tiles, labels, cols).save(out)
    return out
