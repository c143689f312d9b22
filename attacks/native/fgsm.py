"""FGSM: one full-budget step along the gradient's sign (Goodfellow et al., 2015)."""
from __future__ import annotations

from dataclasses import dataclass

from attacks.base import Attack, AttackOutput
from attacks.native.engine import gradient_attack
from attacks.registry import register_attack


@register_attack
@dataclass
class FGSM(Attack):
    name = "fgsm"
    backend = "native"
    budgets_together = True
    single_step = True
    norms = ("linf", "l2")
    description = "fast gradient (sign) method: one step of size eps"

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return gradient_attack(task, x, norm, eps, steps=1, step_size=1.0, random_init=False, generator=generator)
