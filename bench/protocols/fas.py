"""Face anti-spoofing protocols: labelled frames per split; liveness score higher = live."""
from __future__ import annotations

from bench.data.sets import FASSet
from bench.protocols.base import Protocol


class FASProtocol(Protocol):
    """An anti-spoofing protocol: labelled frames per split; liveness score higher = live."""

    frames_per_video: int = 1

    def __init__(self, *, frames_per_video: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "frames_per_video", frames_per_video)

    def frames(self, split: str, size: int) -> FASSet:
        raise NotImplementedError
