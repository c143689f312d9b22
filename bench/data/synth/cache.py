"""Housekeeping of the world cache. Kept out of `export`: that module is one of the rendering sources whose code is
hashed into the cache key (`RENDER_SOURCES`), so code there that renders nothing would still start a new world."""
from __future__ import annotations

import re
from pathlib import Path

from bench.data.synth.export import cache_root, world_dir

WORLD_DIR_NAME = re.compile(r"world-v(\d+)-seed(\d+)-(\d+)px-([0-9a-f]{12})")
"""The name `world_dir` gives a world's folder."""


def stale_worlds() -> list[Path]:
    """The world folders in the cache this code no longer reads: written by another version of the rendering code,
    layouts or `WORLD_VERSION` (their key differs from `world_dir`'s for their seed and size). Other folders of the
    cache are not worlds and are never listed."""
    root = cache_root()
    if not root.is_dir():
        return []
    stale = []
    for path in sorted(root.iterdir()):
        m = WORLD_DIR_NAME.fullmatch(path.name)
        if m and path.is_dir() and path.name != world_dir(int(m[2]), int(m[3])).name:
            stale.append(path)
    return stale
