"""The evaluation item containers and the sampling rules every protocol shares (numpy only).

A protocol hands out its data in these containers: face sets (train / dev), verification pairs,
identification galleries with probes, and labelled anti-spoofing frames. `choose_items` is the one
rule that picks a seed's evaluation items, so a seed selects the same items everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Optional, Sequence

import numpy as np

from bench.errors import BadInputError

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

    def subset(self, index) -> "PairSet":
        """The pairs at `index` (positions into this set, in that order)."""
        index = np.asarray(index, dtype=np.int64)
        return PairSet(self.probes[index], self.references[index], self.genuine[index],
                       [self.pair_ids[i] for i in index])


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


@dataclass(frozen=True)
class FoldedPairs:
    """Verification pairs in cross-validation folds (LFW View 2, insightface's `.bin` sets), labels only.

    Pair `i` compares image `first[i]` with image `second[i]` (numbers into the protocol's image list, which
    may be shared between pairs); `folds[i]` is its fold. `images`, when loaded, holds every image of that list
    (uint8 N,S,S,3) in order."""

    first: np.ndarray
    second: np.ndarray
    genuine: np.ndarray
    folds: np.ndarray
    pair_ids: list[str]
    images: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.pair_ids)

    def sample_ids(self, index: np.ndarray) -> list[str]:
        """The stored sample ids of the pairs at `index`: each pair's id behind its fold (`fold_sample_id`)."""
        return [fold_sample_id(int(self.folds[i]), self.pair_ids[i]) for i in index]


def fold_sample_id(fold: int, pair_id: str) -> str:
    """A k-fold protocol's sample id: `f<fold>:` then the pair's id (`f3:g:Name_0001.jpg|Name_0004.jpg`)."""
    return f"f{fold}:{pair_id}"


def fold_of(sample_id: str) -> Optional[int]:
    """The fold of a k-fold protocol's sample id (`fold_sample_id`); None for any other sample id."""
    head, sep, _ = str(sample_id).partition(":")
    return int(head[1:]) if sep and head[:1] == "f" and head[1:].isdigit() else None


def choose_across_folds(folds: np.ndarray, n: int | None, seed: int, salt: int) -> np.ndarray:
    """Positions of `n` items spread evenly over the folds of `folds` (one fold label per item), chosen by `seed`.

    Within each fold the items are put in a seeded order (`salt` keeps item kinds apart, as in `choose_items`);
    then the first item of every fold is taken, fold by fold, then the second, and so on: any `n` holds each fold's
    items to within one of the others' (as far as a fold has items)."""
    folds = np.asarray(folds)
    rank = np.empty(len(folds), dtype=np.int64)
    for fold in np.unique(folds):
        where = np.flatnonzero(folds == fold)
        rank[where[np.random.default_rng([seed, 404, salt, int(fold)]).permutation(len(where))]] = np.arange(len(where))
    order = np.lexsort((folds, rank))  # by rank within the fold, then by fold
    return order[: (len(order) if n is None else n)]


_FAS_ARRAYS = ("images", "live", "species", "subtype", "video_ids", "subjects", "domains", "depth", "reflection", "illumination")


def choose_items(count: int, n: int | None, seed: int, salt: int) -> np.ndarray:
    """Positions of the `n` evaluation items chosen by `seed` out of `count` (all, reordered, if n is None).

    The one sampling rule of every protocol; `salt` keeps the draws of different item kinds apart
    (0 genuine pairs, 1 impostor pairs, 2 attack frames, 3 live frames).
    """
    order = np.random.default_rng([seed, 404, salt]).permutation(count)
    return order[: (count if n is None else n)]


def pair_choice(kind: str, count: int, n: int | None, seed: int) -> np.ndarray:
    """Positions in a fixed pair list (`count` pairs of `kind`) of the `n` pairs chosen by `seed`."""
    return choose_items(count, n, seed, 0 if kind == "genuine" else 1)


def pairs_within(faces: FaceSet, kind: str, count: int) -> PairSet:
    """A fixed list of up to `count` pairs of `kind` formed inside `faces`, like a pairs.txt written for that set.

    Genuine: an identity with two images or more, then two of its images; impostor: two identities, then one
    image of each; drawn from a fixed generator (salt 0 genuine, 1 impostor), each pair once (in either order),
    in drawing order. Fewer than `count` where the set cannot form that many. Pair ids name the two sample ids,
    `g:a|b` / `i:a|b`, as the test pairs do; `pair_choice` picks a seed's pairs from the list.
    """
    if kind not in ("genuine", "impostor"):
        raise ValueError(f"pair kind {kind!r}: genuine or impostor")
    by_id: dict = {}
    for index, who in enumerate(faces.identities.tolist()):
        by_id.setdefault(who, []).append(index)
    names = sorted(by_id)
    sizes = [len(by_id[w]) for w in names]
    if kind == "genuine":
        names = [w for w in names if len(by_id[w]) >= 2]
        count = min(count, sum(k * (k - 1) // 2 for k in sizes))
    else:
        count = min(count, (sum(sizes) ** 2 - sum(k * k for k in sizes)) // 2)
    if count == 0:
        raise BadInputError(f"no {kind} pairs can be formed from {len(faces)} faces of {len(by_id)} identities")
    rng = np.random.default_rng([505, 0 if kind == "genuine" else 1])
    pairs: list[tuple[int, int]] = []
    seen: set = set()
    while len(pairs) < count:
        if kind == "genuine":
            a, b = (int(v) for v in rng.choice(by_id[names[int(rng.integers(len(names)))]], 2, replace=False))
        else:
            wa, wb = (names[int(v)] for v in rng.choice(len(names), 2, replace=False))
            a, b = int(rng.choice(by_id[wa])), int(rng.choice(by_id[wb]))
        if (min(a, b), max(a, b)) not in seen:  # each pair once, whichever side it was drawn on
            seen.add((min(a, b), max(a, b)))
            pairs.append((a, b))
    first, second = (np.asarray(side, dtype=np.int64) for side in zip(*pairs))
    ids = [f"{kind[0]}:{faces.sample_ids[a]}|{faces.sample_ids[b]}" for a, b in pairs]
    return PairSet(faces.images[first], faces.images[second], np.full(len(pairs), kind == "genuine"), ids)


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
