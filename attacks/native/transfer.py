"""Transfer: adversarial examples crafted on a source model's task, scored on a target model's task.

The two tasks must describe the same items in the same order (the same pairs or frames, goal and
operating-point convention); only the models (and their thresholds) differ. Running this for every
(source, target) pair of zoo models of one task gives the transfer matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from attacks.base import Attack, AttackOutput, Budget
from bench.errors import BadInputError
from bench.tasks.base import Task


@dataclass
class TransferOutput(AttackOutput):
    """`success` is judged on the target task; `source_success` is the attack's own success on the source."""

    source_success: Optional[torch.Tensor] = None


def transfer(
    source_task: Task,
    target_task: Task,
    attack: Attack,
    x: torch.Tensor,
    norm: str,
    eps: Budget,
    generator: Optional[torch.Generator] = None,
) -> TransferOutput:
    """Craft with `attack` on `source_task`, then judge the same inputs on `target_task` (per sample)."""
    if len(source_task) != len(target_task) or len(source_task) != x.shape[0]:
        raise BadInputError(
            f"transfer: source ({len(source_task)}) and target ({len(target_task)}) tasks and the batch "
            f"({x.shape[0]}) must have the same items"
        )
    if source_task.goal != target_task.goal:
        raise BadInputError(f"transfer: source goal {source_task.goal!r} differs from target goal {target_task.goal!r}")
    attack.check(norm, float(eps) if not isinstance(eps, torch.Tensor) else float(eps.max()), source_task.goal)
    out = attack.run(source_task, x, norm, eps, generator=generator)
    success = target_task.success(out.x_adv)
    return TransferOutput(out.x_adv, success, out.queries + 1, out.min_eps, source_success=out.success)
