"""The embedded world read back from disk: each stand-in through the loader of the real dataset it replaces.

The synthetic protocols take their data from here (rendered into the cache first if absent, by
`bench.data.synth.export.ensure`); `bench.data.synth.in_memory` renders the same items without the
disk, as the reference. Side labels the official layouts have no place for come from
`facebench_labels.csv` and must agree with what the loaders parse.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from bench.data.real.celeba import CelebA
from bench.data.real.common import DatasetError, list_frames, read_image
from bench.data.real.lfw import LFW
from bench.data.sets import FaceSet, FASSet, PairSet, pair_choice
from bench.data.synth import export
from bench.data.synth import fas as synth_fas
from bench.data.synth.export import FAS_LAYOUTS, LABELS_FILE
from bench.data.synth.world import ILLUMINATION


def read_labels(root: Path) -> dict[str, dict[str, str]]:
    """`facebench_labels.csv` of a stand-in dataset: relative path -> row."""
    path = Path(root) / LABELS_FILE
    try:
        with open(path, newline="") as f:
            return {row["path"]: row for row in csv.DictReader(f)}
    except FileNotFoundError:
        raise DatasetError(f"{path} not found (side labels of a facebench stand-in dataset)") from None


def _label(labels: dict[str, dict[str, str]], root: Path, path: Path) -> dict[str, str]:
    rel = path.relative_to(root).as_posix()
    if rel not in labels:
        raise DatasetError(f"{root / LABELS_FILE} has no row for {rel}")
    return labels[rel]


@lru_cache(maxsize=8)
def read_faces(root: Path, partition: str, size: int) -> FaceSet:
    """A CelebA partition of a stand-in, through the CelebA loader; sample ids from the side labels."""
    labels = read_labels(root)
    images, identities, sample_ids = [], [], []
    for record in CelebA(root).faces(partition):
        row = _label(labels, root, record.path)
        identity = int(record.identity)
        if int(row["identity"]) != identity:
            raise DatasetError(f"{record.path}: identity_CelebA.txt says {identity}, {LABELS_FILE} says {row['identity']}")
        images.append(read_image(record.path, size))
        identities.append(identity)
        sample_ids.append(f"id{identity}/s{int(row['sample'])}")
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return FaceSet(stacked, np.asarray(identities, dtype=np.int64), sample_ids)


@lru_cache(maxsize=8)
def read_pairs(root: Path, kind: str, size: int) -> PairSet:
    """Every pair of `kind` in `pairs.txt` order, through the LFW loader; pair ids from the side labels."""
    labels = read_labels(root)
    cache: dict[Path, np.ndarray] = {}

    def image(path: Path) -> np.ndarray:
        if path not in cache:
            cache[path] = read_image(path, size)
        return cache[path]

    def key(path: Path) -> str:
        row = _label(labels, root, path)
        return f"id{int(row['identity'])}/s{int(row['sample'])}"

    records = [p for p in LFW(root).pairs() if p.genuine == (kind == "genuine")]
    empty = np.zeros((0, size, size, 3), np.uint8)
    probes = np.stack([image(p.a.path) for p in records]) if records else empty
    refs = np.stack([image(p.b.path) for p in records]) if records else empty
    ids = [f"{kind[0]}:{key(p.a.path)}|{key(p.b.path)}" for p in records]
    return PairSet(probes, refs, np.full(len(records), kind == "genuine"), ids)


# --------------------------------------------------------------------------- synth-fr


def synth_fr_train(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr training faces, read through the CelebA loader from the on-disk world (partition 0)."""
    return read_faces(export.ensure("celeba", size, world_seed), "train", size)


def synth_fr_dev(size: int = 64, world_seed: int = 0) -> FaceSet:
    """The synth-fr dev faces, read through the CelebA loader from the on-disk world (partition 1)."""
    return read_faces(export.ensure("celeba", size, world_seed), "val", size)


def synth_fr_pairs(kind: str, n: int | None, seed: int, size: int = 64, world_seed: int = 0) -> PairSet:
    """`n` test pairs of `kind` (genuine / impostor), chosen deterministically from `seed`.

    Read through the LFW loader (`pairs.txt`) from the on-disk world; same pairs, order and pixels
    as `in_memory.render_synth_fr_pairs`.
    """
    every = read_pairs(export.ensure("lfw", size, world_seed), kind, size)
    return every.subset(pair_choice(kind, len(every), n, seed))


# --------------------------------------------------------------------------- synthetic FAS domains


def domain_split(domain: str, split: str, size: int, world_seed: int = 0) -> FASSet:
    """Every frame of a domain's split, read through its real dataset's loader from the on-disk world.

    Same frames, labels and order as `in_memory.render_domain_split`; cached per process.
    """
    root = export.ensure(export.FAS_DATASET[domain], size, world_seed)
    return read_fas_split(root, domain, split, size)


def _read_map(path: Optional[Path], frame: Path) -> np.ndarray:
    if path is None:
        raise DatasetError(f"{frame}: no map beside it")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"), dtype=np.uint8).astype(np.float32) / 255
    except FileNotFoundError:
        raise DatasetError(f"{path} not found") from None


@lru_cache(maxsize=64)
def read_fas_split(root: Path, domain: str, split: str, size: int) -> FASSet:
    """A domain's split through its dataset's loader, as `in_memory.render_domain_split` returns it.

    Live, species, subject, split and sub-type come from the official names (as the loader parses
    them); video and frame numbers and illumination from `facebench_labels.csv`, which must agree.
    """
    layout = FAS_LAYOUTS[domain]
    labels = read_labels(root)
    base = synth_fas.subject_ids(domain, "train").start
    wanted = set(synth_fas.subject_ids(domain, split))
    frames_per_video = synth_fas.layout(domain).frames_per_video
    found = []
    for video in layout.videos(root, split):
        subject = base + layout.subject_index(video)
        if subject not in wanted:  # CASIA and MSU: train and dev share the official train split
            continue
        subtype = layout.subtype(video)
        for frame in list_frames(video, frames_per_video):
            row = _label(labels, root, frame.path)
            parsed = (int(video.live), video.species, subtype, subject)
            written = (int(row["live"]), row["species"], row["subtype"], int(row["subject"]))
            if parsed != written:
                raise DatasetError(f"{frame.path}: the {layout.dataset} loader reads {parsed} (live, species, "
                                   f"subtype, subject), {LABELS_FILE} says {written}")
            found.append((subject, int(row["video"]), int(row["frame"]), subtype, video.species, video.live,
                          ILLUMINATION.index(row["illumination"]), frame))
    found.sort(key=lambda f: f[:3])  # the loaders list videos by name; the world's order is (subject, video, frame)
    if not found:
        raise DatasetError(f"{root}: no frames of {domain} {split}")
    subjects = [f[0] for f in found]
    video_ids = np.array([f"{domain}/{s}/{v:02d}-{m}" for s, v, _, m, *_ in found])
    return FASSet(
        images=np.stack([read_image(f[7].path, size) for f in found]),
        live=np.array([f[5] for f in found]),
        species=np.array([f[4] for f in found]),
        subtype=np.array([f[3] for f in found]),
        video_ids=video_ids,
        subjects=np.asarray(subjects),
        domains=np.array([domain] * len(found)),
        depth=np.stack([_read_map(f[7].depth_path, f[7].path) for f in found]),
        reflection=np.stack([_read_map(f[7].path.with_name(f"{f[7].path.stem}_reflection.png"), f[7].path) for f in found]),
        illumination=np.asarray([f[6] for f in found], dtype=np.int64),
        sample_ids=[f"{vid}/f{f[2]}" for vid, f in zip(video_ids, found)],
    )
