"""Interleaved timing: every contender runs once per round, in the same order, and medians are kept."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class Contender:
    """One timed thing: `fn()` processes `samples` samples per call."""

    name: str
    fn: Callable[[], Any]
    samples: int
    kind: str  # "baseline", "native", "library" or "adapter"
    library: str = ""  # for library / adapter contenders: torchattacks, foolbox or art
    note: str = ""


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What makes a timer see finished work on `device` (a no-op on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def interleaved(contenders: list[Contender], repeats: int, device: torch.device, warmup: int = 1) -> dict[str, Timing]:
    """Time each contender `repeats` times in rounds (A B C, B C A, C A B, ...); `warmup` untimed rounds first.

    Every round runs every contender once; the order rotates so that no contender always runs
    right after the same neighbour. Round i of each contender's `seconds` is from the same round.
    """
    sync = synchronizer(device)
    out = {c.name: Timing(c.name) for c in contenders}
    k = len(contenders)
    for r in range(warmup + repeats):
        for c in contenders[r % k:] + contenders[:r % k]:
            sync()
            t0 = time.perf_counter()
            c.fn()
            sync()
            if r >= warmup:
                out[c.name].seconds.append(time.perf_counter() - t0)
    return out
