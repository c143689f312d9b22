"""Closed-set identification threat models: misidentify and target-identity against a template gallery."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from bench.tasks.base import Task

DECISION_RULE = "top-1 over the gallery templates (closed set, no threshold; ties to the lowest gallery index)"


def gallery_templates(embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """One template per identity: the mean of its L2-normalised embeddings, renormalised; (K, D), detached."""
    e = F.normalize(embeddings.detach().float(), dim=1)
    sums = torch.zeros(n_classes, e.shape[1], dtype=e.dtype, device=e.device).index_add_(0, labels.to(e.device), e)
    counts = torch.bincount(labels.to(e.device), minlength=n_classes)
    if bool((counts == 0).any()):
        raise ValueError(f"identities {(counts == 0).nonzero().flatten().tolist()} have no gallery image")
    return F.normalize(sums, dim=1)


class IdentificationTask(Task):
    """Probes identified as the gallery identity whose template is most similar (cosine); only probes are perturbed.

    `scores(x)` is the (N, K) matrix of cosine similarities to the K fixed templates. The decision is
    the argmax (ties to the lowest gallery index, torch's argmax rule). Goals:
    - `misidentify`: the top-1 identity becomes any other than the probe's own (`labels`);
      margin = max over other identities of the similarity minus the true identity's similarity;
    - `target-identity`: the top-1 identity becomes `targets` (one per probe, never its own);
      margin = target similarity minus the max over the other identities.
    Identification has no operating threshold: `threshold` is NaN and never used.

    For classification attacks: `as_classifier()` is the two-logit [keep, goal] view every task has;
    `as_identity_classifier()` gives the K similarity logits (`class_scores`) with `labels` as the
    true classes and `targets` as the target classes, for targeted multi-class attacks (APGD-T, DLR).
    """

    items = "identification"
    threshold = float("nan")

    def __init__(self, model: nn.Module, templates: torch.Tensor, labels: torch.Tensor, goal: str,
                 targets: Optional[torch.Tensor] = None, aim: Optional[torch.Tensor] = None) -> None:
        self.targeted = self.wants(goal) == "target-identity"  # target-identity; misidentify: any other identity
        if templates.shape[0] < 2:
            raise ValueError(f"identification needs at least 2 gallery identities, got {templates.shape[0]}")
        labels = labels.long()
        if self.targeted:
            if targets is None:
                raise ValueError(f"goal {goal} needs one target identity per probe")
            targets = targets.long().to(labels.device)
            if bool((targets == labels).any()):
                raise ValueError("a probe's target identity must differ from its own identity")
        self.model = model
        self.templates = templates.detach()
        self.labels = labels
        self.targets = targets
        self.goal = goal
        self.aim = None if aim is None else aim.long().to(labels.device)  # `retarget`: the class a margin climbs to

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def n_classes(self) -> int:
        return self.templates.shape[0]

    def class_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each probe to each gallery template, (N, K); differentiable in x."""
        e = self.model(x)
        return e @ self.templates.to(device=e.device, dtype=e.dtype).T

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_scores(x)

    def _split(self, s: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The similarity of class `cls` per row, and the max over every other class."""
        cls = cls.to(s.device)
        own = s.gather(1, cls.view(-1, 1)).squeeze(1)
        others = s.masked_fill(F.one_hot(cls, s.shape[1]).bool(), -torch.inf).max(dim=1).values
        return own, others

    def margin_from_scores(self, s: torch.Tensor) -> torch.Tensor:
        if not self.targeted:
            own, others = self._split(s, self.labels)
            if self.aim is not None:  # retargeted: climb towards one chosen other identity
                return s.gather(1, self.aim.to(s.device).view(-1, 1)).squeeze(1) - own
            return others - own
        target, others = self._split(s, self.targets)
        return target - others

    def predicted(self, s: torch.Tensor) -> torch.Tensor:
        """The decided identity per probe (argmax; ties to the lowest index)."""
        return s.argmax(dim=1)

    def success_from_scores(self, s: torch.Tensor) -> torch.Tensor:
        top = self.predicted(s)
        if not self.targeted:
            return top != self.labels.to(top.device)
        return top == self.targets.to(top.device)

    def broken_on_clean(self, s: torch.Tensor) -> torch.Tensor:
        """Every probe not identified correctly on clean input counts as broken, for both goals."""
        return self.predicted(s) != self.labels.to(s.device)

    def sample_scores(self, s: torch.Tensor) -> torch.Tensor:
        """Stored per probe: the rank-1 margin, true-identity similarity minus the best other (> 0: identified)."""
        own, others = self._split(s, self.labels)
        return own - others

    def subset(self, index: torch.Tensor) -> "IdentificationTask":
        index = index.to(self.labels.device)
        targets = None if self.targets is None else self.targets[index]
        aim = None if self.aim is None else self.aim[index]
        sub = IdentificationTask(self.model, self.templates, self.labels[index], self.goal, targets, aim)
        return sub.with_starts(self.starts_for(index))

    def num_targets(self) -> int:
        """`misidentify` can be reached through any other identity; `target-identity` through its target only."""
        return 1 if self.targeted else self.n_classes - 1

    def retarget(self, clean_scores: torch.Tensor, rank: int) -> "IdentificationTask":
        """`misidentify` with its margin aimed at each probe's `rank`-th most similar other identity on clean
        input (success is still any wrong identity); `target-identity` is already targeted (returned as is)."""
        if self.targeted:
            return self
        if not 0 <= rank < self.num_targets():
            raise ValueError(f"rank {rank} outside the {self.num_targets()} other identities")
        labels = self.labels.to(clean_scores.device)
        order = clean_scores.scatter(1, labels.view(-1, 1), -torch.inf).argsort(dim=1, descending=True)
        aimed = IdentificationTask(self.model, self.templates, self.labels, self.goal, self.targets, order[:, rank])
        return aimed.with_starts(self.starts)

    def as_identity_classifier(self, scale: float = 10.0) -> nn.Module:
        """An `nn.Module` with K logits (scaled similarities); true classes `labels`, target classes `targets`."""
        return IdentityClassifier(self, scale)


class IdentityClassifier(nn.Module):
    """Multi-class view of an identification task: logit k is `scale` x the similarity to template k."""

    def __init__(self, task: IdentificationTask, scale: float) -> None:
        super().__init__()
        self.task = task
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.class_scores(x) * self.scale
