"""Anti-spoofing threat models: spoof-to-live and live-to-spoof at the dev EER threshold."""
from __future__ import annotations

import torch
from torch import nn

from bench.tasks.base import Task


class SpoofTask(Task):
    """Frames scored by a liveness logit (higher = live); accepted as live when score >= threshold.

    `spoof-to-live` (attack frames must be accepted as live) is the threat that matters;
    `live-to-spoof` (live frames must be rejected) is the denial-of-service one.
    """

    items = "frames"

    def __init__(self, model: nn.Module, threshold: float, goal: str, n_items: int) -> None:
        self.accept = self.wants(goal) == "accept"  # spoof-to-live: accepted as live; live-to-spoof: rejected
        self.model = model
        self.threshold = float(threshold)
        self.goal = goal
        self.n_items = int(n_items)

    def __len__(self) -> int:
        return self.n_items

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).reshape(-1)

    def margin_from_scores(self, s: torch.Tensor) -> torch.Tensor:
        return s - self.threshold if self.accept else self.threshold - s

    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        live = scores >= self.threshold
        return live if self.accept else ~live

    def subset(self, index: torch.Tensor) -> "SpoofTask":
        return SpoofTask(self.model, self.threshold, self.goal, len(index)).with_starts(self.starts_for(index))
