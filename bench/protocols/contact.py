"""Contact sheets: a PNG grid of samples so a person can see what a protocol holds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.protocols.base import Protocol
from bench.protocols.fas import FASProtocol
from bench.protocols.fr import FRProtocol


def _grid(tiles: list[np.ndarray], labels: list[str], cols: int, scale: int = 2) -> Image.Image:
    s = tiles[0].shape[0]
    rows = (len(tiles) + cols - 1) // cols
    pad = 12
    sheet = Image.new("RGB", (cols * s * scale, rows * (s * scale + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        r, c = divmod(i, cols)
        img = Image.fromarray(tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2))
        sheet.paste(img.resize((s * scale, s * scale), Image.NEAREST), (c * s * scale, r * (s * scale + pad) + pad))
        draw.text((c * s * scale + 2, r * (s * scale + pad)), label[:18], fill="black")
    return sheet


def contact_sheet(protocol: Protocol, size: int, out: Path, per_kind: int = 6) -> Path:
    """FR: faces of a few train identities with their depth maps; FAS: live and each spoof sub-type, with depth."""
    tiles, labels = [], []
    if isinstance(protocol, FRProtocol):
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
                tiles += [data.images[i], (data.depth[i] * 255).astype(np.uint8)]
                labels += [f"{data.domains[i]} {sub}", "depth"]
        cols = 2 * per_kind
    else:  # pragma: no cover - every protocol is FR or FAS
        raise TypeError(type(protocol))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _grid(tiles, labels, cols).save(out)
    return out
