"""Small rasterisation helpers shared by the face renderer and the presentation media."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def stack_params(dicts: Sequence[dict], key: str) -> np.ndarray:
    """One field of N parameter dicts as float32, broadcastable against (N, S, S) or (N, S, S, 3)."""
    arr = np.asarray([d[key] for d in dicts], dtype=np.float32)
    return arr[:, None, None] if arr.ndim == 1 else arr[:, None, None, :]


def soft(signed: np.ndarray, width: float) -> np.ndarray:
    """A soft (anti-aliased) mask from a signed distance: 1 inside (signed > 0), 0 outside.

    A linear ramp over about 4 `width`s (the slope of a logistic of that width at 0), cheaper than exp.
    """
    out = signed / (4 * width)
    out += 0.5
    return np.clip(out, 0.0, 1.0, out=out)
