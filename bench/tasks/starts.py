"""Starting points for decision-based attacks: per item, an input from the protocol that reaches the goal.

HopSkipJump and the Boundary attack walk from an input that already reaches the goal toward the
original. A random image does that for `dodging` only; for the other goals the protocol has better:

- `impersonation`: the pair's reference image (the runner passes it directly);
- `spoof-to-live` / `live-to-spoof`: a live / a spoof frame of the same split;
- `target-identity`: a gallery image of the target identity; `misidentify`: one of any other identity.

Where there is a choice, the start is the candidate nearest to the item in pixel space (L2; ties to
the lowest index): deterministic, and chosen without querying the model. Attacks still check each
start through the task (`Task.starts`) and fall back to their random start where it fails.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from bench.data.sets import FASSet, IdentificationSet
from bench.goals import GOALS

CHUNK = 64  # pool images compared at a time (bounds memory at large input sizes)


def nearest(items: np.ndarray, pool: np.ndarray, allowed: Optional[np.ndarray] = None) -> np.ndarray:
    """For each of `items` (uint8 N,S,S,3), the index of the nearest image of `pool` (M,S,S,3) in pixel L2.

    `allowed` (N, M) bool restricts each item's candidates; every item needs at least one.
    """
    if len(pool) == 0:
        raise ValueError("no candidate starting points")
    q = torch.as_tensor(items.reshape(len(items), -1), dtype=torch.float64)
    q2 = (q * q).sum(1, keepdim=True)
    best_d = torch.full((len(items),), torch.inf, dtype=torch.float64)
    best_i = torch.full((len(items),), -1, dtype=torch.long)
    for lo in range(0, len(pool), CHUNK):
        p = torch.as_tensor(pool[lo : lo + CHUNK].reshape(min(CHUNK, len(pool) - lo), -1), dtype=torch.float64)
        d = q2 + (p * p).sum(1) - 2 * q @ p.T  # squared distances of uint8 pixels: exact integers in float64
        if allowed is not None:
            d = d.masked_fill(~torch.as_tensor(allowed[:, lo : lo + len(p)]), torch.inf)
        m, i = d.min(dim=1)
        better = m < best_d  # strict: an earlier chunk wins ties
        best_d = torch.where(better, m, best_d)
        best_i = torch.where(better, i + lo, best_i)
    if bool((best_i < 0).any()):
        raise ValueError(f"{int((best_i < 0).sum())} items have no allowed starting point")
    return best_i.numpy()


def spoof_starts(frames: FASSet, chosen: np.ndarray, goal: str) -> np.ndarray:
    """Frame indices of the starts of frames `chosen`: the nearest frame that is accepted as live when the goal wants
    acceptance (spoof-to-live: a live frame), else the nearest spoof frame."""
    pool = np.flatnonzero(frames.live if GOALS[goal].wants == "accept" else ~frames.live)
    return pool[nearest(frames.images[chosen], frames.images[pool])]


def identification_starts(ident: IdentificationSet, goal: str) -> np.ndarray:
    """Gallery indices of the probes' starts: the nearest gallery image of the target identity
    (`target-identity`) or of any identity but the probe's own (`misidentify`)."""
    if GOALS[goal].wants == "target-identity":
        allowed = ident.gallery_labels[None, :] == ident.targets[:, None]
    else:
        allowed = ident.gallery_labels[None, :] != ident.probe_labels[:, None]
    return nearest(ident.probes, ident.gallery, allowed)
