"""Named protocols over the real datasets, read through their official-layout loaders; registered on import.

A dataset is found at `$FACEBENCH_DATA_<NAME>` (e.g. `FACEBENCH_DATA_OULU_NPU`) or, failing that,
at `$FACEBENCH_DATA/<name>` (e.g. `$FACEBENCH_DATA/oulu-npu`): `bench.data.real.locate`. Nothing is
read until a split is asked for, so the protocols are listed even where the data is absent.

Splits without an official dev set take a dev set out of the training subjects (the last 20 % of
them, by subject number): CASIA-FASD and MSU-MFSD. Cross-dataset protocols train on the sources'
train splits, fit the threshold on the sources' dev splits and test on the target's test split.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from bench.data.real.common import DatasetError, ImageRecord, VideoRecord, list_frames, read_image
from bench.data.real.insightface_bin import InsightFaceBin, read_bin
from bench.data.real.locate import dataset_root, loader
from bench.data.sets import (FaceSet, FASSet, FoldedPairs, IdentificationSet, PairSet, choose_items,
                             identification_split)
from bench.protocols.fas import FASProtocol
from bench.protocols.fr import FRProtocol
from bench.protocols.kfold import FOLDS, KFoldProtocol
from bench.protocols.registry import register_protocol, register_protocol_family

DEV_FRACTION = 0.2
CELEBA_INTRA_PAIRS = 3000  # per kind


def _faces(records: list[ImageRecord], size: int) -> FaceSet:
    names = sorted({r.identity for r in records})
    number = {n: i for i, n in enumerate(names)}
    images = np.stack([read_image(r.path, size) for r in records]) if records else np.zeros((0, size, size, 3), np.uint8)
    return FaceSet(images, np.asarray([number[r.identity] for r in records], dtype=np.int64), [r.sample_id for r in records])


def _pairs(chosen: list[tuple[ImageRecord, ImageRecord]], kind: str, size: int) -> PairSet:
    probes = np.stack([read_image(a.path, size) for a, _ in chosen]) if chosen else np.zeros((0, size, size, 3), np.uint8)
    refs = np.stack([read_image(b.path, size) for _, b in chosen]) if chosen else np.zeros((0, size, size, 3), np.uint8)
    ids = [f"{kind[0]}:{a.sample_id}|{b.sample_id}" for a, b in chosen]
    return PairSet(probes, refs, np.full(len(chosen), kind == "genuine"), ids)


def _identification(records: list[ImageRecord], n: Optional[int], seed: int, size: int) -> IdentificationSet:
    def load(chosen: list) -> np.ndarray:
        return np.stack([read_image(r.path, size) for r in chosen]) if chosen else np.zeros((0, size, size, 3), np.uint8)

    return identification_split(records, [r.identity for r in records], n, seed, load, lambda r: r.sample_id)


class CelebAToLFW(FRProtocol):
    """`celeba->lfw`: train on CelebA's train partition, threshold on its validation identities, test on LFW's pairs."""

    def train_set(self, size: int) -> FaceSet:
        return _faces(loader("celeba").faces("train"), size)

    def dev_set(self, size: int) -> FaceSet:
        return _faces(loader("celeba").faces("val"), size)

    def test_pairs(self, kind: str, n: Optional[int], seed: int, size: int) -> PairSet:
        pairs = [p for p in loader("lfw").pairs() if p.genuine == (kind == "genuine")]
        pick = choose_items(len(pairs), n, seed, 0 if kind == "genuine" else 1)
        return _pairs([(pairs[i].a, pairs[i].b) for i in pick], kind, size)

    def identification(self, n: Optional[int], seed: int, size: int) -> IdentificationSet:
        """Closed-set identification over LFW's people with two images or more."""
        return _identification(loader("lfw").faces(), n, seed, size)


class CelebAIntra(CelebAToLFW):
    """`celeba-intra`: as `celeba->lfw`, but test pairs drawn from CelebA's held-out test identities."""

    def test_pairs(self, kind: str, n: Optional[int], seed: int, size: int) -> PairSet:
        faces = loader("celeba").faces("test")
        by_id: dict[str, list[ImageRecord]] = {}
        for r in faces:
            by_id.setdefault(r.identity, []).append(r)
        ids = sorted(by_id)
        multi = [i for i in ids if len(by_id[i]) > 1]
        if kind == "genuine" and not multi or len(ids) < 2:
            raise DatasetError("CelebA test partition has too few identities to form verification pairs")
        rng = np.random.default_rng([0, 303, 0 if kind == "genuine" else 1])  # the fixed pair list
        chosen = []
        for _ in range(CELEBA_INTRA_PAIRS):
            if kind == "genuine":
                group = by_id[multi[rng.integers(len(multi))]]
                a, b = rng.choice(len(group), 2, replace=False)
                chosen.append((group[a], group[b]))
            else:
                i, j = rng.choice(len(ids), 2, replace=False)
                chosen.append((by_id[ids[i]][rng.integers(len(by_id[ids[i]]))], by_id[ids[j]][rng.integers(len(by_id[ids[j]]))]))
        pick = choose_items(len(chosen), n, seed, 0 if kind == "genuine" else 1)
        return _pairs([chosen[i] for i in pick], kind, size)

    def identification(self, n: Optional[int], seed: int, size: int) -> IdentificationSet:
        """Closed-set identification over CelebA's held-out test identities with two images or more."""
        return _identification(loader("celeba").faces("test"), n, seed, size)


# --------------------------------------------------------------------------- k-fold verification (nothing trained)

@lru_cache(maxsize=4)
def _lfw_view2(root: str) -> tuple[FoldedPairs, tuple[Path, ...]]:
    """LFW View 2's pairs (`pairs.txt`, header `10 300`) over the images they use, each image numbered once."""
    records = loader("lfw").pairs(view2=True)
    number: dict[Path, int] = {}
    for r in records:
        for image in (r.a, r.b):
            number.setdefault(image.path, len(number))
    pairs = FoldedPairs(np.array([number[r.a.path] for r in records]), np.array([number[r.b.path] for r in records]),
                        np.array([r.genuine for r in records]), np.array([r.fold for r in records]),
                        [r.pair_id for r in records])
    return pairs, tuple(number)


@dataclass(frozen=True)
class LFWView2(KFoldProtocol):
    """`lfw`: LFW View 2 (`pairs.txt`'s 10 folds of 300 matched and 300 mismatched pairs), images read whole."""

    def pair_folds(self) -> FoldedPairs:
        return _lfw_view2(str(dataset_root("lfw")))[0]

    def read_images(self, numbers: Sequence[int], size: int) -> np.ndarray:
        paths = _lfw_view2(str(dataset_root("lfw")))[1]
        images = [read_image(paths[int(i)], size) for i in numbers]
        return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)


@lru_cache(maxsize=2)
def _bin(path: str, stamp: tuple[int, int]) -> InsightFaceBin:
    """A `.bin` opened once per process and version of the file (`stamp`: its size and modification time)."""
    return read_bin(Path(path))


def _opened_bin(path: str) -> InsightFaceBin:
    try:
        st = os.stat(path)
    except OSError:
        return read_bin(Path(path))  # its one-line error (not found, unreadable)
    return _bin(path, (st.st_size, st.st_mtime_ns))


@dataclass(frozen=True)
class InsightFaceBinProtocol(KFoldProtocol):
    """`bin:PATH`: an insightface verification `.bin` (pairs interleaved, 10 consecutive folds in file order)."""

    path: str = ""

    def pair_folds(self) -> FoldedPairs:
        data = _opened_bin(self.path)
        first = 2 * np.arange(len(data))
        ids = [f"{'g' if same else 'i'}:{2 * i}|{2 * i + 1}" for i, same in enumerate(data.issame.tolist())]
        return FoldedPairs(first, first + 1, data.issame.copy(), data.folds(FOLDS), ids)

    def read_images(self, numbers: Sequence[int], size: int) -> np.ndarray:
        return _opened_bin(self.path).images([int(i) for i in numbers], size)


KFOLD_RULE = "per fold: the threshold at FAR=1e-3 on the other 9 folds' impostor pairs (accuracy: the best threshold there)"


def insightface_bin(path: str) -> InsightFaceBinProtocol:
    """The `bin:PATH` protocol of one file (`~` expanded, made absolute: the protocol's name)."""
    absolute = os.path.abspath(os.path.expanduser(path))
    return InsightFaceBinProtocol(
        name=f"bin:{absolute}", task="fr", threshold_rule=KFOLD_RULE, path=absolute,
        description=f"insightface verification set {os.path.basename(absolute)}: 10 folds in file order, mean +- std",
        splits={"test": f"{absolute} (pairs interleaved; 10 consecutive folds, each threshold from the other 9)"},
    )


# --------------------------------------------------------------------------- anti-spoofing

VideoSource = Callable[[str], list[VideoRecord]]  # split -> videos


def _hold_out_dev(videos: list[VideoRecord], split: str) -> list[VideoRecord]:
    """Split official train videos into train / dev by subject (the last DEV_FRACTION of subjects is dev)."""
    subjects = sorted({v.subject for v in videos}, key=lambda s: (len(s), s))
    k = max(1, int(round(len(subjects) * DEV_FRACTION))) if len(subjects) > 1 else 0
    dev = set(subjects[len(subjects) - k :])
    return [v for v in videos if (v.subject in dev) == (split == "dev")]


def official_split(dataset: str) -> VideoSource:
    """A dataset's own train / dev / test split (dev held out of train where there is none)."""

    def videos(split: str) -> list[VideoRecord]:
        data = loader(dataset)
        if dataset in ("casia-fasd", "msu-mfsd"):
            return data.videos("test") if split == "test" else _hold_out_dev(data.videos("train"), split)
        return data.videos(split)

    return videos


def oulu_protocol(n: int, fold: Optional[int] = None) -> VideoSource:
    return lambda split: loader("oulu-npu").protocol(n, split, fold)


def read_fas_frames(videos: list[VideoRecord], frames_per_video: int, size: int) -> FASSet:
    """Frames of `videos` (evenly spaced, cropped to their face box) with labels; unknown depth is NaN."""
    images, depth, rows, sample_ids = [], [], [], []
    for video in videos:
        for frame in list_frames(video, frames_per_video):
            images.append(read_image(frame.path, size, frame.box))
            if frame.depth_path is not None:
                depth.append(read_image(frame.depth_path, size, frame.box).mean(axis=2).astype(np.float32) / 255)
            else:
                depth.append(np.full((size, size), 0.0 if not video.live else np.nan, np.float32))
            rows.append(video)
            sample_ids.append(f"{video.video_id}/f{frame.index}")
    if not rows:
        raise DatasetError("the protocol selects no frames (empty split?)")
    return FASSet(
        images=np.stack(images),
        live=np.array([v.live for v in rows]),
        species=np.array([v.species for v in rows]),
        subtype=np.array([v.meta.get("subtype", v.species) for v in rows]),
        video_ids=np.array([v.video_id for v in rows]),
        subjects=np.array([f"{v.domain}:{v.subject}" for v in rows]),
        domains=np.array([v.domain for v in rows]),
        depth=np.stack(depth),
        reflection=np.zeros((len(rows), size, size), np.float32),
        illumination=np.full(len(rows), -1, np.int64),
        sample_ids=sample_ids,
    )


@dataclass(frozen=True)
class _Sources:
    train_dev: tuple[VideoSource, ...]
    test: tuple[VideoSource, ...]


class RealFASProtocol(FASProtocol):
    """Frames from real datasets: train / dev from the sources, test from the targets."""

    def __init__(self, name: str, description: str, sources: tuple[VideoSource, ...], targets: tuple[VideoSource, ...],
                 splits: dict, frames_per_video: int = 10) -> None:
        super().__init__(name=name, task="fas", description=description,
                         threshold_rule="dev EER (frame level) over the sources' dev split", splits=splits,
                         frames_per_video=frames_per_video)
        object.__setattr__(self, "_sources", _Sources(sources, targets))

    def frames(self, split: str, size: int) -> FASSet:
        if split not in ("train", "dev", "test"):
            raise DatasetError(f"unknown split {split!r} (train, dev or test)")
        srcs = self._sources.test if split == "test" else self._sources.train_dev
        videos = [v for source in srcs for v in source(split)]
        return read_fas_frames(videos, self.frames_per_video, size)


LETTERS = {"o": "oulu-npu", "c": "casia-fasd", "i": "replay-attack", "m": "msu-mfsd"}


def _register() -> None:
    register_protocol(CelebAToLFW(
        name="celeba->lfw", task="fr", threshold_rule="verification threshold at FAR=1e-3 on CelebA validation-identity impostor pairs",
        description="train on CelebA identities, threshold on held-out CelebA identities, test on LFW's 6000 pairs",
        splits={"train": "CelebA partition 0", "dev": "CelebA partition 1", "test": "LFW pairs.txt (10 folds)"},
    ))
    register_protocol(CelebAIntra(
        name="celeba-intra", task="fr", threshold_rule="verification threshold at FAR=1e-3 on CelebA validation-identity impostor pairs",
        description="intra-dataset: test pairs from CelebA's held-out test identities",
        splits={"train": "CelebA partition 0", "dev": "CelebA partition 1", "test": f"{CELEBA_INTRA_PAIRS} + {CELEBA_INTRA_PAIRS} pairs from partition 2"},
    ))
    register_protocol(LFWView2(
        name="lfw", task="fr", threshold_rule=KFOLD_RULE,
        description="LFW View 2 alone (no training split): 10 folds, each fold's thresholds from the other 9; mean +- std",
        splits={"test": "LFW pairs.txt, View 2 (header 10 300): 10 folds x (300 matched + 300 mismatched)"},
    ))
    register_protocol_family("bin", InsightFaceBinProtocol(
        name="bin:PATH", task="fr", threshold_rule=KFOLD_RULE,
        description="any insightface verification .bin (lfw, cfp_fp, agedb_30, calfw, cplfw): 10 folds, mean +- std",
        splits={"test": "PATH: pairs interleaved; 10 consecutive folds in file order, each threshold from the other 9"},
    ), insightface_bin)
    for n in (1, 2):
        src = (oulu_protocol(n),)
        register_protocol(RealFASProtocol(f"oulu-p{n}", f"OULU-NPU protocol {n}", src, src,
                                          {"train/dev/test": f"Protocols/Protocol_{n}/{{Train,Dev,Test}}.txt"}))
    for n in (3, 4):
        for fold in range(1, 7):
            src = (oulu_protocol(n, fold),)
            register_protocol(RealFASProtocol(
                f"oulu-p{n}-f{fold}", f"OULU-NPU protocol {n}, leave-one-phone-out fold {fold} of 6 (report mean ± std over folds)",
                src, src, {"train/dev/test": f"Protocols/Protocol_{n}/{{Train,Dev,Test}}_{fold}.txt"}))
    cross = [("casia->replay", "c", "i"), ("replay->casia", "i", "c"), ("mi->c", "mi", "c"), ("mi->o", "mi", "o")]
    cross += [(f"ocim->{t}", "".join(x for x in "ocim" if x != t), t) for t in "ocim"]
    for name, sources, target in cross:
        src = tuple(official_split(LETTERS[s]) for s in sources)
        register_protocol(RealFASProtocol(
            name, f"cross-dataset: train on {' + '.join(LETTERS[s] for s in sources)}, test on unseen {LETTERS[target]}",
            src, (official_split(LETTERS[target]),),
            {"train": " + ".join(f"{LETTERS[s]} train" for s in sources), "dev": " + ".join(f"{LETTERS[s]} dev" for s in sources),
             "test": f"{LETTERS[target]} test"}))


_register()
