"""The synthetic anti-spoofing data: each capture domain's layout and the frames it renders.

Each domain has its own subjects and its own layout (`SYNTH_FAS[domain]`): subjects split train /
dev / test (no subject in two splits), and per subject `sessions` capture sessions, each with one
live video and one video per spoof medium of the domain; a video is `frames_per_video` frames.
Everything here decides what the FAS stand-ins hold on disk (`bench.data.synth.export`), so this
module is part of the render cache key. The protocols over these domains: `bench.protocols.synth_fas`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from bench.data.sets import FASSet
from bench.data.synth.world import DOMAINS, FaceWorld


@dataclass(frozen=True)
class SynthFASLayout:
    """One capture domain's subjects per split and videos per subject."""

    train: int
    dev: int
    test: int
    sessions: int  # per subject and session: one live video + one video per medium of the domain
    frames_per_video: int = 3

    def __post_init__(self) -> None:
        for name in ("train", "dev", "test", "sessions", "frames_per_video"):
            if getattr(self, name) < 1:
                raise ValueError(f"SynthFASLayout.{name} must be at least 1, got {getattr(self, name)}")

    @property
    def subjects(self) -> int:
        return self.train + self.dev + self.test


SYNTH_FAS: dict[str, SynthFASLayout] = {
    # proportions of the real datasets; CASIA-FASD and MSU-MFSD have no dev split: CASIA's dev
    # subjects are carved out of its official train subjects; MSU-MFSD's 15 official training subjects
    # all train (with 12, a camera's live faces were learnt from 36 frames: issue 16) and its 5 dev subjects
    # are extra (55 subjects were filmed, 35 released)
    "oulu": SynthFASLayout(train=20, dev=15, test=20, sessions=6),
    "casia": SynthFASLayout(train=15, dev=5, test=30, sessions=3),
    "replay": SynthFASLayout(train=15, dev=15, test=20, sessions=2),
    "msu": SynthFASLayout(train=15, dev=5, test=20, sessions=2),
}
"""Capture domain -> its layout. The one place to change (or, in tests, monkeypatch) the FAS world's size."""


def layout(domain: str) -> SynthFASLayout:
    """The layout of a capture domain (looked up at call time, so a patched `SYNTH_FAS` is seen)."""
    try:
        return SYNTH_FAS[domain]
    except KeyError:
        raise ValueError(f"no synthetic FAS layout for domain {domain!r} (known: {', '.join(SYNTH_FAS)})") from None


def session_media(domain: str) -> tuple[str, ...]:
    """The videos of one session, in order: `live`, then each medium of the domain."""
    return ("live",) + tuple(DOMAINS[domain].media)


def video_index(domain: str, session: int, medium: str) -> int:
    """Video number of (session, medium) for a subject: `session * (1 + len(media)) + j`."""
    media = session_media(domain)
    return session * len(media) + media.index(medium)


def session_of(domain: str, video: int) -> int:
    """The capture session (0-based) of a subject's video number."""
    return DOMAINS[domain].session_of(video)


def medium_of(domain: str, video: int) -> str:
    """`live` or the spoof medium of a subject's video number."""
    media = session_media(domain)
    return media[video % len(media)]


def subject_ids(domain: str, split: str) -> range:
    """Subjects of a domain's split; identities are disjoint across domains and splits."""
    base = 100_000 * (DOMAINS[domain].code + 1)
    lay = layout(domain)
    t, d, n = lay.train, lay.dev, lay.subjects
    return {"train": range(base, base + t), "dev": range(base + t, base + t + d), "test": range(base + t + d, base + n)}[split]


def split_frames(domain: str, split: str) -> list[tuple[int, int, int, str]]:
    """(subject, video, frame, medium) of every frame of a domain's split, in (subject, video, frame) order.

    Per subject and session s: video `s * (1 + len(media))` is live, then one video per medium of
    the domain (each video is its own scene: the renderer seeds it from (subject, video)).
    """
    lay, media = layout(domain), session_media(domain)
    return [(subject, s * len(media) + j, f, medium) for subject in subject_ids(domain, split)
            for s in range(lay.sessions) for j, medium in enumerate(media) for f in range(lay.frames_per_video)]


def quantize_map(m: np.ndarray) -> np.ndarray:
    """A [0, 1] map at 8 bits, as stored on disk (`NNNN_depth.png` = round(depth * 255)), back as float32."""
    return map_to_uint8(m).astype(np.float32) / 255


def map_to_uint8(m: np.ndarray) -> np.ndarray:
    return np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)


FRAME_CHUNK = 256
"""Frames rendered per call of `render_frames` when a whole split is rendered (`frame_chunks`)."""


def frame_chunks(domain: str, split: str, chunk: Optional[int] = None) -> list[list[tuple[int, int, int, str]]]:
    """The frames of a domain's split (`split_frames`), `chunk` (default `FRAME_CHUNK`) at a time."""
    chunk = chunk or FRAME_CHUNK
    keys = split_frames(domain, split)
    return [keys[start : start + chunk] for start in range(0, len(keys), chunk)]


def render_frames(keys: list[tuple[int, int, int, str]], domain: str, size: int, world_seed: int = 0) -> FASSet:
    """The frames (subject, video, frame, medium) of `domain`, rendered (depth and reflection at 8 bits)."""
    subs, vids, frames, meds = (list(c) for c in zip(*keys))
    r = FaceWorld(world_seed, size).render_fas(subs, vids, frames, meds, domain)
    video_ids = np.array([f"{domain}/{s}/{v:02d}-{m}" for s, v, m in zip(subs, vids, meds)])
    sample_ids = [f"{vid}/f{f}" for vid, f in zip(video_ids, frames)]
    return FASSet(images=r.images, live=r.live, species=r.species, subtype=r.subtype, video_ids=video_ids,
                  subjects=np.asarray(subs), domains=np.array([domain] * len(subs)), depth=quantize_map(r.depth),
                  reflection=quantize_map(r.reflection), illumination=r.illumination, sample_ids=sample_ids)


def iter_domain_split(domain: str, split: str, size: int, world_seed: int = 0, chunk: Optional[int] = None) -> Iterator[FASSet]:
    """The frames of a domain's split rendered `chunk` at a time (`frame_chunks`, `render_frames`)."""
    for keys in frame_chunks(domain, split, chunk):
        yield render_frames(keys, domain, size, world_seed)
