"""Face verification threat models: dodging and impersonation at the dev threshold."""
from __future__ import annotations

from typing import Union

import torch
from torch import nn

from bench.tasks.base import Task


class VerificationTask(Task):
    """Pairs (probe, reference): only the probe is perturbed, the reference embedding is fixed.

    A pair is accepted as a match when cos(probe, reference) >= threshold. `dodging` wants a
    genuine pair rejected; `impersonation` wants an impostor pair accepted.

    `threshold` is one float for every pair, or a tensor of one threshold per pair: the k-fold protocols
    (`bench.protocols.kfold`) judge each pair at the threshold of its fold, chosen on the other folds.
    """

    items = "pairs"

    def __init__(self, model: nn.Module, references: torch.Tensor, threshold: Union[float, torch.Tensor],
                 goal: str) -> None:
        self.accept = self.wants(goal) == "accept"  # impersonation: accepted; dodging: rejected
        self.model = model
        self.references = references.detach()
        if torch.is_tensor(threshold):
            threshold = threshold.detach().to(torch.float32).reshape(-1)
            if threshold.shape[0] != self.references.shape[0]:
                raise ValueError(f"{threshold.shape[0]} thresholds for {self.references.shape[0]} pairs")
        else:
            threshold = float(threshold)
        self.threshold = threshold
        self.goal = goal

    def __len__(self) -> int:
        return self.references.shape[0]

    def _tau(self, s: torch.Tensor) -> Union[float, torch.Tensor]:
        """The threshold of each scored pair (a float, or the per-pair tensor on the scores' device)."""
        return self.threshold if isinstance(self.threshold, float) else self.threshold.to(s.device, s.dtype)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x) * self.references.to(x.device)).sum(dim=1)

    def margin_from_scores(self, s: torch.Tensor) -> torch.Tensor:
        tau = self._tau(s)
        return s - tau if self.accept else tau - s

    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        accepted = scores >= self._tau(scores)
        return accepted if self.accept else ~accepted

    def subset(self, index: torch.Tensor) -> "VerificationTask":
        tau = self.threshold if isinstance(self.threshold, float) else self.threshold[index.to(self.threshold.device)]
        sub = VerificationTask(self.model, self.references[index], tau, self.goal)
        return sub.with_starts(self.starts_for(index))
