"""Synthetic anti-spoofing protocols over the embedded world's four capture domains.

Each domain has its own subjects, split train / dev / test by subject (no subject in two splits).
A subject has `live_videos` live videos and one video per spoof medium of its domain; a video is
`frames_per_video` frames. Intra-domain protocols train and test in one domain; cross-domain ones
train on source domains and test on an unseen one, with the threshold at the EER of the sources'
dev split (the target domain's data is never used to choose it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from bench.data.protocols import FASProtocol, FASSet, register_protocol
from bench.data.world import DOMAINS, FAS_DOMAINS, FaceWorld

LETTER = {"oulu": "o", "casia": "c", "replay": "i", "msu": "m"}  # I = Idiap Replay-Attack, as in the literature


@dataclass(frozen=True)
class SynthFASLayout:
    subjects: int = 50  # CASIA-FASD's shape: 20 train+dev, 30 test
    train: int = 14
    dev: int = 6  # the rest is test
    live_videos: int = 2
    frames_per_video: int = 3


SYNTH_FAS = SynthFASLayout()


def subject_ids(domain: str, split: str) -> range:
    """Subjects of a domain's split; identities are disjoint across domains and splits."""
    base = 100_000 * (DOMAINS[domain].code + 1)
    t, d, n = SYNTH_FAS.train, SYNTH_FAS.dev, SYNTH_FAS.subjects
    return {"train": range(base, base + t), "dev": range(base + t, base + t + d), "test": range(base + t + d, base + n)}[split]


def split_frames(domain: str, split: str) -> list[tuple[int, int, int, str]]:
    """(subject, video, frame, medium) of every frame of a domain's split, in order.

    Per subject: videos `0 .. live_videos-1` are live, then one video per medium of the domain.
    """
    media = ["live"] * SYNTH_FAS.live_videos + list(DOMAINS[domain].media)
    return [(subject, v, f, medium) for subject in subject_ids(domain, split)
            for v, medium in enumerate(media) for f in range(SYNTH_FAS.frames_per_video)]


def quantize_map(m: np.ndarray) -> np.ndarray:
    """A [0, 1] map at 8 bits, as stored on disk (`NNNN_depth.png` = round(depth * 255)), back as float32."""
    return map_to_uint8(m).astype(np.float32) / 255


def map_to_uint8(m: np.ndarray) -> np.ndarray:
    return np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)


def iter_domain_split(domain: str, split: str, size: int, world_seed: int = 0, chunk: int = 256) -> Iterator[FASSet]:
    """The frames of a domain's split rendered `chunk` at a time (depth and reflection at 8 bits)."""
    keys = split_frames(domain, split)
    world = FaceWorld(world_seed, size)
    for start in range(0, len(keys), chunk):
        subs, vids, frames, meds = (list(c) for c in zip(*keys[start : start + chunk]))
        r = world.render_fas(subs, vids, frames, meds, domain)
        video_ids = np.array([f"{domain}/{s}/{v:02d}-{m}" for s, v, m in zip(subs, vids, meds)])
        sample_ids = [f"{vid}/f{f}" for vid, f in zip(video_ids, frames)]
        yield FASSet(r.images, r.live, r.species, r.subtype, video_ids, np.asarray(subs), np.array([domain] * len(subs)),
                     quantize_map(r.depth), quantize_map(r.reflection), r.illumination, sample_ids)


def render_domain_split(domain: str, split: str, size: int, world_seed: int = 0) -> FASSet:
    """Every frame of every video of a domain's split, rendered in memory (the source of the export)."""
    return FASSet.concat(list(iter_domain_split(domain, split, size, world_seed)))


def domain_split(domain: str, split: str, size: int, world_seed: int = 0) -> FASSet:
    """Every frame of a domain's split, read through its real dataset's loader from the on-disk world.

    Same frames, labels and order as `render_domain_split`; cached per process.
    """
    from bench.data import export

    root = export.ensure(export.FAS_DATASET[domain], size, world_seed)
    return export.read_fas_split(root, domain, split, size)


class SynthFASProtocol(FASProtocol):
    """Train on `sources`, threshold on the sources' dev split, test on `targets`."""

    def __init__(self, name: str, sources: tuple[str, ...], targets: tuple[str, ...], description: str) -> None:
        super().__init__(
            name=name,
            task="fas",
            description=description,
            threshold_rule="dev EER over the source domains' dev split",
            splits={
                "train": f"{'+'.join(sources)}: {SYNTH_FAS.train} subjects each",
                "dev": f"{'+'.join(sources)}: {SYNTH_FAS.dev} subjects each",
                "test": f"{'+'.join(targets)}: {SYNTH_FAS.subjects - SYNTH_FAS.train - SYNTH_FAS.dev} subjects each",
                "frames": f"{SYNTH_FAS.frames_per_video} per video; {SYNTH_FAS.live_videos} live videos + one per medium per subject",
            },
            frames_per_video=SYNTH_FAS.frames_per_video,
        )
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "targets", targets)

    def frames(self, split: str, size: int) -> FASSet:
        domains = self.targets if split == "test" else self.sources
        return FASSet.concat([domain_split(d, split, size) for d in domains])


def _register_all() -> None:
    for d in FAS_DOMAINS:
        register_protocol(SynthFASProtocol(f"synth-{d}", (d,), (d,), f"intra-domain anti-spoofing in the {DOMAINS[d].stands_for} stand-in domain"))
    cross = [
        ("synth-casia->replay", ("casia",), ("replay",)),
        ("synth-replay->casia", ("replay",), ("casia",)),
        ("synth-mi->c", ("msu", "replay"), ("casia",)),
        ("synth-mi->o", ("msu", "replay"), ("oulu",)),
    ]
    cross += [(f"synth-ocim->{LETTER[t]}", tuple(d for d in FAS_DOMAINS if d != t), (t,)) for t in FAS_DOMAINS]
    for name, sources, targets in cross:
        register_protocol(
            SynthFASProtocol(name, sources, targets, f"cross-domain: train on {' + '.join(sources)}, test on unseen {targets[0]}")
        )


_register_all()
