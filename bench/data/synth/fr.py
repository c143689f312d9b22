"""The synthetic FR data: synth-fr's identity splits, its fixed test pair list and the live faces it renders.

Everything here decides what the CelebA and LFW stand-ins hold on disk (`bench.data.synth.export`),
so this module is part of the render cache key.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Optional

import numpy as np

from bench.data.sets import FaceSet
from bench.data.synth.world import FaceWorld


@dataclass(frozen=True)
class SynthFRSplits:
    """Identity ranges of the synthetic FR protocol. No identity is in two splits."""

    train_ids: range = range(0, 4000)
    train_per_id: int = 8
    dev_ids: range = range(10_000, 10_080)
    dev_per_id: int = 6
    test_ids: range = range(20_000, 20_150)
    test_per_id: int = 8
    test_pairs_per_kind: int = 600


SYNTH_FR = SynthFRSplits()


@lru_cache(maxsize=8)
def cached_world(seed: int, size: int) -> FaceWorld:
    """One `FaceWorld` per (seed, size) and process (it caches identity parameters)."""
    return FaceWorld(seed=seed, size=size)


FACE_CHUNK = 256
"""Faces rendered per call of `render_faces` when a whole identity range is rendered (`face_chunks`)."""


def face_chunks(ids: range, per_id: int, chunk: Optional[int] = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The live faces `ids` x `per_id` samples (identity-major) as (identities, samples) arrays of `chunk` faces
    (default `FACE_CHUNK`)."""
    chunk = chunk or FACE_CHUNK
    identities = np.repeat(np.asarray(ids, dtype=np.int64), per_id)
    samples = np.tile(np.arange(per_id, dtype=np.int64), len(ids))
    return [(identities[start : start + chunk], samples[start : start + chunk])
            for start in range(0, len(identities), chunk)]


def render_faces(identities: np.ndarray, samples: np.ndarray, size: int, world_seed: int) -> np.ndarray:
    """The live faces (identity, sample) of the FR data, as uint8 images (N, size, size, 3)."""
    return cached_world(world_seed, size).render(identities, samples, domain="celeb").images


def iter_faces(ids: range, per_id: int, size: int, world_seed: int, chunk: Optional[int] = None) -> Iterator[FaceSet]:
    """The live faces `ids` x `per_id` samples (identity-major), rendered `chunk` at a time (`face_chunks`)."""
    for i, s in face_chunks(ids, per_id, chunk):
        yield FaceSet(images=render_faces(i, s, size, world_seed), identities=i,
                      sample_ids=[f"id{a}/s{b}" for a, b in zip(i, s)])


def pair_list(kind: str, world_seed: int) -> list[tuple[int, int, int, int]]:
    """The fixed list of test pairs (id_a, sample_a, id_b, sample_b), like LFW's pairs.txt."""
    rng = np.random.default_rng([world_seed, 303, 0 if kind == "genuine" else 1])
    ids = np.asarray(SYNTH_FR.test_ids)
    k = SYNTH_FR.test_per_id
    pairs, seen = [], set()
    while len(pairs) < SYNTH_FR.test_pairs_per_kind:
        if kind == "genuine":
            a = b = int(rng.choice(ids))
            sa, sb = (int(v) for v in rng.choice(k, 2, replace=False))
        else:
            a, b = (int(v) for v in rng.choice(ids, 2, replace=False))
            sa, sb = int(rng.integers(k)), int(rng.integers(k))
        key = (a, sa, b, sb)
        if key not in seen:
            seen.add(key)
            pairs.append(key)
    return pairs
