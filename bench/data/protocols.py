"""Named evaluation protocols: splits over a dataset that yield training data and evaluation items."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Hashable, Iterator, Sequence

import numpy as np

from bench.data.world import FaceWorld
from bench.errors import BadInputError
from bench.registry import Registry

GALLERY_PER_ID = 3  # gallery images per identity (fewer when an identity has fewer than 4 images)


@dataclass(frozen=True)
class FaceSet:
    """Images (uint8 N,S,S,3) with their identity labels and stable sample ids."""

    images: np.ndarray
    identities: np.ndarray
    sample_ids: list[str]

    def __len__(self) -> int:
        return len(self.identities)


@dataclass(frozen=True)
class PairSet:
    """Verification pairs: the probe (attacked side) and the reference (fixed side) of each pair."""

    probes: np.ndarray
    references: np.ndarray
    genuine: np.ndarray
    pair_ids: list[str]

    def __len__(self) -> int:
        return len(self.pair_ids)


@dataclass(frozen=True)
class IdentificationSet:
    """Closed-set identification items: a gallery (several images per identity) and probes of the same identities.

    Labels are class indices into `identities`; `targets` holds, per probe, the target identity of the
    `target-identity` goal (never the probe's own).
    """

    gallery: np.ndarray
    gallery_labels: np.ndarray
    probes: np.ndarray
    probe_labels: np.ndarray
    targets: np.ndarray
    identities: list[str]
    probe_ids: list[str]

    def __len__(self) -> int:
        return len(self.probe_labels)


@dataclass(frozen=True)
class Protocol:
    """A named split over a dataset: its task, its threshold rule and a description of each split."""

    name: str
    task: str
    description: str
    threshold_rule: str
    splits: dict = field(default_factory=dict)


class FRProtocol(Protocol):
    """A face-verification protocol: train and dev face sets, and genuine / impostor test pairs."""

    def train_set(self, size: int) -> FaceSet:
        raise NotImplementedError

    def dev_set(self, size: int) -> FaceSet:
        raise NotImplementedError

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        raise NotImplementedError

    def identification(self, n: int | None, seed: int, size: int) -> IdentificationSet:
        """Gallery and `n` probes from the test identities, chosen by `seed` (protocols that can form them)."""
        raise BadInputError(f"protocol {self.name!r} does not provide identification items (gallery and probes); "
                            "use synth-fr for the misidentify and target-identity goals")


def identification_split(
    keys: Sequence[Hashable],
    identities: Sequence[str],
    n: int | None,
    seed: int,
    load: Callable[[list], np.ndarray],
    sample_id: Callable[[Hashable], str],
) -> IdentificationSet:
    """Gallery / probe split of the test faces `keys` (with their `identities`), deterministic in `seed`.

    Only identities with at least two images take part (one gallery image and one probe at least).
    Per identity, a seeded permutation puts up to GALLERY_PER_ID images in the gallery (always leaving
    one probe); the `n` probes are drawn with `choose_items` (salt 4) from the rest, and each probe's
    target identity is drawn uniformly from the other gallery identities.
    """
    by_id: dict[str, list] = {}
    for key, who in zip(keys, identities):
        by_id.setdefault(str(who), []).append(key)
    names = sorted(i for i in by_id if len(by_id[i]) >= 2)
    if len(names) < 2:
        raise BadInputError("identification needs at least two test identities with two images or more")
    gallery, gallery_labels, pool, pool_labels = [], [], [], []
    for c, name in enumerate(names):
        group = by_id[name]
        order = np.random.default_rng([seed, 505, c]).permutation(len(group))
        g = min(GALLERY_PER_ID, len(group) - 1)
        gallery += [group[i] for i in order[:g]]
        gallery_labels += [c] * g
        pool += [group[i] for i in order[g:]]
        pool_labels += [c] * (len(group) - g)
    k = len(names)
    offsets = np.random.default_rng([seed, 606]).integers(1, k, size=len(pool))  # never 0: never the own identity
    chosen = np.sort(choose_items(len(pool), n, seed, 4))
    probe_labels = np.asarray(pool_labels, dtype=np.int64)[chosen]
    probes = [pool[i] for i in chosen]
    return IdentificationSet(
        gallery=load(gallery),
        gallery_labels=np.asarray(gallery_labels, dtype=np.int64),
        probes=load(probes),
        probe_labels=probe_labels,
        targets=(probe_labels + offsets[chosen]) % k,
        identities=names,
        probe_ids=[f"i:{sample_id(p)}" for p in probes],
    )


@dataclass(frozen=True)
class FASSet:
    """Anti-spoofing frames with their labels (every array has one row per frame)."""

    images: np.ndarray
    live: np.ndarray
    species: np.ndarray
    subtype: np.ndarray
    video_ids: np.ndarray
    subjects: np.ndarray
    domains: np.ndarray
    depth: np.ndarray
    reflection: np.ndarray
    illumination: np.ndarray
    sample_ids: list[str]

    def __len__(self) -> int:
        return len(self.live)

    def take(self, index: np.ndarray) -> "FASSet":
        index = np.asarray(index, dtype=np.int64)
        return FASSet(*(getattr(self, f)[index] for f in _FAS_ARRAYS), [self.sample_ids[i] for i in index])

    @staticmethod
    def concat(parts: list["FASSet"]) -> "FASSet":
        if len(parts) == 1:
            return parts[0]
        return FASSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FAS_ARRAYS),
                      [s for p in parts for s in p.sample_ids])


_FAS_ARRAYS = ("images", "live", "species", "subtype", "video_ids", "subjects", "domains", "depth", "reflection", "illumination")


class FASProtocol(Protocol):
    """An anti-spoofing protocol: labelled frames per split; liveness score higher = live."""

    frames_per_video: int = 1

    def __init__(self, *, frames_per_video: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "frames_per_video", frames_per_video)

    def frames(self, split: str, size: int) -> FASSet:
        raise NotImplementedError


PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    return PROTOCOLS.add(protocol.name, protocol)


def get_protocol(name: str) -> Protocol:
    return PROTOCOLS.get(name)


# --------------------------------------------------------------------------- synthetic FR


@dataclass(frozen=True)
class SynthFRSplits:
    """Identity ranges of the synthetic FR protocol. No identity is in two splits."""

    train_ids: range = range(0, 1000)
    train_per_id: int = 8
    dev_ids: range = range(10_000, 10_080)
    dev_per_id: int = 6
    test_ids: range = range(20_000, 20_150)
    test_per_id: int = 8
    test_pairs_per_kind: int = 600


SYNTH_FR = SynthFRSplits()


@lru_cache(maxsize=8)
def _world(seed: int, size: int) -> FaceWorld:
    return FaceWorld(seed=seed, size=size)


def iter_faces(ids: range, per_id: int, size: int, world_seed: int, chunk: int = 256) -> Iterator[FaceSet]:
    """The live faces `ids` x `per_id` samples (identity-major), rendered `chunk` at a time."""
    identities = np.repeat(np.asarray(ids, dtype=np.int64), per_id)
    samples = np.tile(np.arange(per_id, dtype=np.int64), len(ids))
    world = _world(world_seed, size)
    for start in range(0, len(identities), chunk):
        i, s = identities[start : start + chunk], samples[start : start + chunk]
        yield FaceSet(world.render(i, s, domain="celeb").images, i, [f"id{a}/s{b}" for a, b in zip(i, s)])


def _face_set(ids: range, per_id: int, size: int, world_seed: int) -> FaceSet:
    parts = list(iter_faces(ids, per_id, size, world_seed))
    if not parts:
        return FaceSet(np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64), [])
    return FaceSet(np.concatenate([p.images for p in parts]), np.concatenate([p.identities for p in parts]),
                   [s for p in parts for s in p.sample_ids])


def render_synth_fr_train(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr training faces rendered in memory (the source `bench.data.export` writes from)."""
    return _face_set(SYNTH_FR.train_ids, SYNTH_FR.train_per_id, size, world_seed)


def render_synth_fr_dev(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr dev faces rendered in memory."""
    return _face_set(SYNTH_FR.dev_ids, SYNTH_FR.dev_per_id, size, world_seed)


def synth_fr_train(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr training faces, read through the CelebA loader from the on-disk world (partition 0)."""
    from bench.data import export

    return export.read_faces(export.ensure("celeba", size, world_seed), "train", size)


def synth_fr_dev(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr dev faces, read through the CelebA loader from the on-disk world (partition 1)."""
    from bench.data import export

    return export.read_faces(export.ensure("celeba", size, world_seed), "val", size)


def _pair_list(kind: str, world_seed: int) -> list[tuple[int, int, int, int]]:
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


def choose_items(count: int, n: int | None, seed: int, salt: int) -> np.ndarray:
    """Positions of the `n` evaluation items chosen by `seed` out of `count` (all, reordered, if n is None).

    The one sampling rule of every protocol; `salt` keeps the draws of different item kinds apart
    (0 genuine pairs, 1 impostor pairs, 2 attack frames, 3 live frames).
    """
    order = np.random.default_rng([seed, 404, salt]).permutation(count)
    return order[: (count if n is None else n)]


def _pair_choice(kind: str, count: int, n: int | None, seed: int) -> np.ndarray:
    """Positions in the fixed pair list of the `n` pairs chosen by `seed`."""
    return choose_items(count, n, seed, 0 if kind == "genuine" else 1)


def render_synth_fr_pairs(kind: str, n: int | None, seed: int, size: int = 64, world_seed: int = 0) -> PairSet:
    """`n` test pairs of `kind` rendered in memory (the reference for the on-disk LFW stand-in)."""
    pairs = _pair_list(kind, world_seed)
    chosen = [pairs[i] for i in _pair_choice(kind, len(pairs), n, seed)]
    world = _world(world_seed, size)
    a = np.asarray([(p[0], p[1]) for p in chosen], dtype=np.int64).reshape(-1, 2)
    b = np.asarray([(p[2], p[3]) for p in chosen], dtype=np.int64).reshape(-1, 2)
    probes = world.render(a[:, 0], a[:, 1]).images
    refs = world.render(b[:, 0], b[:, 1]).images
    ids = [f"{kind[0]}:id{p[0]}/s{p[1]}|id{p[2]}/s{p[3]}" for p in chosen]
    return PairSet(probes, refs, np.full(len(chosen), kind == "genuine"), ids)


def synth_fr_pairs(kind: str, n: int | None, seed: int, size: int = 64, world_seed: int = 0) -> PairSet:
    """`n` test pairs of `kind` (genuine / impostor), chosen deterministically from `seed`.

    Read through the LFW loader (`pairs.txt`) from the on-disk world; same pairs, order and pixels
    as `render_synth_fr_pairs`.
    """
    from bench.data import export

    every = export.read_pairs(export.ensure("lfw", size, world_seed), kind, size)
    index = _pair_choice(kind, len(every), n, seed)
    return PairSet(every.probes[index], every.references[index], np.full(len(index), kind == "genuine"),
                   [every.pair_ids[i] for i in index])


class SynthFRProtocol(FRProtocol):
    """`synth-fr`: the embedded world's FR protocol (CelebA-like train, unseen-identity test pairs)."""

    def train_set(self, size: int) -> FaceSet:
        return synth_fr_train(size)

    def dev_set(self, size: int) -> FaceSet:
        return synth_fr_dev(size)

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        return synth_fr_pairs(kind, n, seed, size)

    def identification(self, n: int | None, seed: int, size: int) -> IdentificationSet:
        return synth_fr_identification(n, seed, size)


def synth_fr_identification(n: int | None, seed: int, size: int = 64, world_seed: int = 0) -> IdentificationSet:
    """Gallery + `n` probes over the synth-fr test identities (all of them in the gallery), rendered in memory."""
    keys = [(int(i), s) for i in SYNTH_FR.test_ids for s in range(SYNTH_FR.test_per_id)]
    world = _world(world_seed, size)

    def load(chosen: list) -> np.ndarray:
        if not chosen:
            return np.zeros((0, size, size, 3), np.uint8)
        a = np.asarray(chosen, dtype=np.int64)
        return world.render(a[:, 0], a[:, 1]).images

    return identification_split(keys, [f"id{i}" for i, _ in keys], n, seed, load, lambda k: f"id{k[0]}/s{k[1]}")


register_protocol(
    SynthFRProtocol(
        name="synth-fr",
        task="fr",
        description="embedded face world: train / dev identities (threshold) / test pairs on unseen identities",
        threshold_rule="verification threshold at FAR=1e-3 on all dev impostor pairs",
        splits={
            "train": f"{len(SYNTH_FR.train_ids)} identities x {SYNTH_FR.train_per_id} images",
            "dev": f"{len(SYNTH_FR.dev_ids)} identities x {SYNTH_FR.dev_per_id} images",
            "test": f"{SYNTH_FR.test_pairs_per_kind} genuine + {SYNTH_FR.test_pairs_per_kind} impostor pairs "
            f"over {len(SYNTH_FR.test_ids)} unseen identities",
            "identification": f"gallery of {len(SYNTH_FR.test_ids)} test identities x {GALLERY_PER_ID} images "
            f"(one template each); probes: their other {SYNTH_FR.test_per_id - GALLERY_PER_ID} images",
        },
    )
)
