"""The embedded world rendered straight into memory, without the on-disk stand-ins.

`render_*` are the references the on-disk path (`bench.data.synth.readback`) must reproduce item for
item; `synth_fr_identification` serves synth-fr's identification items, which have no stand-in on disk.
"""
from __future__ import annotations

import numpy as np

from bench.data.sets import FaceSet, FASSet, IdentificationSet, PairSet, identification_split, pair_choice
from bench.data.synth import fr as synth_fr
from bench.data.synth.fas import iter_domain_split


def _face_set(ids: range, per_id: int, size: int, world_seed: int) -> FaceSet:
    parts = list(synth_fr.iter_faces(ids, per_id, size, world_seed))
    if not parts:
        return FaceSet(np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64), [])
    return FaceSet(np.concatenate([p.images for p in parts]), np.concatenate([p.identities for p in parts]),
                   [s for p in parts for s in p.sample_ids])


def render_synth_fr_train(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr training faces rendered in memory (the source `bench.data.synth.export` writes from)."""
    return _face_set(synth_fr.SYNTH_FR.train_ids, synth_fr.SYNTH_FR.train_per_id, size, world_seed)


def render_synth_fr_dev(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr dev faces rendered in memory."""
    return _face_set(synth_fr.SYNTH_FR.dev_ids, synth_fr.SYNTH_FR.dev_per_id, size, world_seed)


def render_synth_fr_pairs(kind: str, n: int | None, seed: int, size: int = 64, world_seed: int = 0) -> PairSet:
    """`n` test pairs of `kind` rendered in memory (the reference for the on-disk LFW stand-in)."""
    pairs = synth_fr.pair_list(kind, world_seed)
    chosen = [pairs[i] for i in pair_choice(kind, len(pairs), n, seed)]
    world = synth_fr.cached_world(world_seed, size)
    a = np.asarray([(p[0], p[1]) for p in chosen], dtype=np.int64).reshape(-1, 2)
    b = np.asarray([(p[2], p[3]) for p in chosen], dtype=np.int64).reshape(-1, 2)
    probes = world.render(a[:, 0], a[:, 1]).images
    refs = world.render(b[:, 0], b[:, 1]).images
    ids = [f"{kind[0]}:id{p[0]}/s{p[1]}|id{p[2]}/s{p[3]}" for p in chosen]
    return PairSet(probes, refs, np.full(len(chosen), kind == "genuine"), ids)


def synth_fr_identification(n: int | None, seed: int, size: int = 64, world_seed: int = 0) -> IdentificationSet:
    """Gallery + `n` probes over the synth-fr test identities (all of them in the gallery), rendered in memory."""
    fr = synth_fr.SYNTH_FR
    keys = [(int(i), s) for i in fr.test_ids for s in range(fr.test_per_id)]
    world = synth_fr.cached_world(world_seed, size)

    def load(chosen: list) -> np.ndarray:
        if not chosen:
            return np.zeros((0, size, size, 3), np.uint8)
        a = np.asarray(chosen, dtype=np.int64)
        return world.render(a[:, 0], a[:, 1]).images

    return identification_split(keys, [f"id{i}" for i, _ in keys], n, seed, load, lambda k: f"id{k[0]}/s{k[1]}")


def render_domain_split(domain: str, split: str, size: int, world_seed: int = 0) -> FASSet:
    """Every frame of every video of a domain's split, rendered in memory (the reference for the export)."""
    return FASSet.concat(list(iter_domain_split(domain, split, size, world_seed)))
