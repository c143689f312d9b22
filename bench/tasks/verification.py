"""Face verification threat models: dodging and impersonation at the dev threshold."""
from __future__ import annotations

import torch
from torch import nn

from bench.tasks.base import Task


class VerificationTask(Task):
    """Pairs (probe, reference): only the probe is perturbed, the reference embedding is fixed.

    A pair is accepted as a match when cos(probe, reference) >= threshold. `dodging` wants a
    genuine pair rejected; `impersonation` wants an impostor pair accepted.
    """

    items = "pairs"

    def __init__(self, model: nn.Module, references: torch.Tensor, threshold: float, goal: str) -> None:
        self.accept = self.wants(goal) == "accept"  # impersonation: accepted; dodging: rejected
        self.model = model
        self.references = references.detach()
        self.threshold = float(threshold)
        self.goal = goal

    def __len__(self) -> int:
        return self.references.shape[0]

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x) * self.references.to(x.device)).sum(dim=1)

    def margin_from_scores(self, s: torch.Tensor) -> torch.Tensor:
        return s - self.threshold if self.accept else self.threshold - s

    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        accepted = scores >= self.threshold
        return accepted if self.accept else ~accepted

    def subset(self, index: torch.Tensor) -> "VerificationTask":
        sub = VerificationTask(self.model, self.references[index], self.threshold, self.goal)
        return sub.with_starts(self.starts_for(index))
