"""BIM (PGD without random start, Kurakin et al., 2017) and MIM (momentum iterative, Dong et al., 2018)."""
from __future__ import annotations

from dataclasses import dataclass

from attacks.base import Attack, AttackOutput
from attacks.native.engine import gradient_attack
from attacks.registry import register_attack
from bench.errors import BadInputError


def _check_steps(name: str, steps: int, step_size: float) -> None:
    if steps < 1:
        raise BadInputError(f"{name}: steps must be >= 1, got {steps}")
    if not 0 < step_size <= 1:
        raise BadInputError(f"{name}: step_size is relative to eps and must be in (0, 1], got {step_size}")


@register_attack
@dataclass
class BIM(Attack):
    name = "bim"
    backend = "native"
    budgets_together = True
    norms = ("linf", "l2")
    description = "basic iterative method: PGD from the clean input (no random start), per-sample early stop"

    steps: int = 10
    step_size: float = 0.1  # relative to eps

    def validate(self) -> None:
        _check_steps(self.name, self.steps, self.step_size)

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return gradient_attack(task, x, norm, eps, steps=self.steps, step_size=self.step_size,
                               random_init=False, generator=generator)


@register_attack
@dataclass
class MIM(Attack):
    name = "mim"
    backend = "native"
    budgets_together = True
    norms = ("linf", "l2")
    description = "momentum iterative method: steps along an accumulated L1-normalised gradient (decay mu)"

    steps: int = 10
    step_size: float = 0.1  # relative to eps (Dong et al. use eps / steps)
    decay: float = 1.0

    def validate(self) -> None:
        _check_steps(self.name, self.steps, self.step_size)
        if not 0 < self.decay <= 10:
            raise BadInputError(f"mim: decay must be in (0, 10], got {self.decay}")

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return gradient_attack(task, x, norm, eps, steps=self.steps, step_size=self.step_size,
                               random_init=False, momentum=self.decay, generator=generator)
