"""PGD: projected gradient descent with random start and restarts (Madry et al., 2018)."""
from __future__ import annotations

from dataclasses import dataclass

from attacks.base import Attack, AttackOutput
from attacks.native.engine import gradient_attack
from attacks.registry import register_attack
from bench.errors import BadInputError


@register_attack
@dataclass
class PGD(Attack):
    name = "pgd"
    backend = "native"
    budgets_together = True
    norms = ("linf", "l2")
    description = "projected gradient ascent on the task margin; random start, restarts, per-sample early stop"

    steps: int = 10
    step_size: float = 0.25  # relative to eps
    random_start: bool = True
    restarts: int = 1

    def validate(self) -> None:
        if self.steps < 1:
            raise BadInputError(f"pgd: steps must be >= 1, got {self.steps}")
        if not 0 < self.step_size <= 1:
            raise BadInputError(f"pgd: step_size is relative to eps and must be in (0, 1], got {self.step_size}")
        if self.restarts < 1:
            raise BadInputError(f"pgd: restarts must be >= 1, got {self.restarts}")

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return gradient_attack(
            task, x, norm, eps, steps=self.steps, step_size=self.step_size,
            random_init=self.random_start, restarts=self.restarts, generator=generator,
        )
