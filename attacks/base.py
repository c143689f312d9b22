"""The attack interface: typed parameters, validation before work, and `run`."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Optional, Union

import torch

from bench.config import check_budget
from bench.errors import BadInputError
from bench.tasks.base import Task

Budget = Union[float, torch.Tensor]


@dataclass
class AttackOutput:
    """Adversarial inputs (the successful point, else the best margin found), success and queries.

    `min_eps`, when an attack measures it (minimal-perturbation search, C&W), is the smallest budget
    per sample at which it found the goal reached (0 for samples broken on clean input, inf where
    none was found); other attacks leave it None.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    queries: torch.Tensor
    min_eps: Optional[torch.Tensor] = None


@dataclass
class Attack:
    """Base of every attack. Subclasses are dataclasses whose fields are their typed parameters."""

    name: ClassVar[str] = ""
    backend: ClassVar[str] = "native"
    norms: ClassVar[tuple[str, ...]] = ("linf",)
    goals: ClassVar[Optional[tuple[str, ...]]] = None  # None: every goal
    description: ClassVar[str] = ""
    # Capabilities, declared by each attack (torchmetrics-style class attributes); everything that treats
    # attacks differently reads these, never the attack's name or class.
    measures_min_eps: ClassVar[bool] = False  # its output carries `min_eps` (the runner stores it per sample)
    # its budgets can run as one batch (eps a per-sample tensor, random numbers drawn per budget from a
    # `SegmentGenerators`), giving per-sample results identical to one run per budget
    budgets_together: ClassVar[bool] = False
    per_sample: ClassVar[bool] = False  # runs one sample per call (a library that queries arbitrary subsets)
    black_box: ClassVar[bool] = False  # uses model outputs only, no gradients (held to "never beats white-box")
    single_step: ClassVar[bool] = False  # one gradient step whatever its parameters (FGSM); `steps=1` counts too
    budget_is_ceiling: ClassVar[bool] = False  # eps is the ceiling of a minimal-budget search, not a fixed budget
    mask_confined: ClassVar[bool] = False  # perturbs inside a mask only; eps bounds the inside of the mask

    CAPABILITIES: ClassVar[tuple[str, ...]] = ("measures_min_eps", "budgets_together", "per_sample", "black_box",
                                               "single_step", "budget_is_ceiling", "mask_confined")

    def validate(self) -> None:
        """Refuse nonsensical parameters; subclasses extend this."""

    def check(self, norm: str, eps: float, goal: Optional[str] = None) -> None:
        """Everything that can be refused before any work: norm, budget and goal."""
        check_budget(norm, eps)
        if norm not in self.norms:
            raise BadInputError(f"attack {self.name!r} does not support norm {norm!r} (supports {', '.join(self.norms)})")
        if goal is not None and self.goals is not None and goal not in self.goals:
            raise BadInputError(f"attack {self.name!r} cannot serve goal {goal!r}")

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def run(self, task: Task, x: torch.Tensor, norm: str, eps: Budget, generator: Optional[torch.Generator] = None) -> AttackOutput:
        raise NotImplementedError


class SegmentGenerators:
    """Random generators for a batch that stacks several runs of an attack (one per budget, `segment[i]`
    says which run row i belongs to): every random draw is made per run with that run's generator, on
    that run's rows in order, so each run draws exactly what it would draw alone on its own rows.
    Attacks that declare `budgets_together` accept one in place of a `torch.Generator`."""

    def __init__(self, generators: list[torch.Generator], segment: torch.Tensor) -> None:
        self.generators = list(generators)
        self.segment = segment

    def subset(self, index: torch.Tensor) -> "SegmentGenerators":
        return SegmentGenerators(self.generators, self.segment[index.to(self.segment.device)])

    def per_run(self):
        """(generator, rows of this batch that belong to its run) for each run with rows here, in run order."""
        for k, g in enumerate(self.generators):
            rows = (self.segment == k).nonzero().squeeze(1)
            if rows.numel():
                yield g, rows


def eps_view(eps: Budget, x: torch.Tensor) -> torch.Tensor:
    """A budget as a (N, 1, 1, 1) tensor: one float for all samples, or one per sample."""
    if isinstance(eps, torch.Tensor):
        return eps.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1))).expand(x.shape[0], *([1] * (x.dim() - 1)))
    return torch.full((x.shape[0],) + (1,) * (x.dim() - 1), float(eps), device=x.device, dtype=x.dtype)


def flat_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm as (N, 1, 1, 1)."""
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))


def project(delta: torch.Tensor, x: torch.Tensor, norm: str, eps: torch.Tensor) -> torch.Tensor:
    """Project a perturbation onto the norm ball and keep x + delta inside [0, 1]."""
    if norm == "linf":
        delta = torch.maximum(torch.minimum(delta, eps), -eps)
    else:
        delta = delta * torch.clamp(eps / flat_norm(delta), max=1.0)
    return (x + delta).clamp_(0.0, 1.0) - x


def steepest_step(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit-norm steepest-ascent direction for the norm (sign for Linf, normalised for L2)."""
    return grad.sign() if norm == "linf" else grad / flat_norm(grad)
