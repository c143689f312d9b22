"""Training-time adversarial examples: PGD on a recipe's own batch loss, built on the native engine's helpers."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from attacks.base import eps_view, project, steepest_step
from attacks.native.engine import random_start

LINF_EPS = 8 / 255
LINF_STEP = 2 / 255


def pgd_maximise(loss_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, eps: float = LINF_EPS,
                 step_size: float = LINF_STEP, steps: int, norm: str = "linf", random_init: bool = True,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """`steps` steepest-ascent steps of the scalar `loss_of(x_adv)` (a whole batch's loss) inside the norm ball.

    Unlike the engine's `gradient_attack`, which ascends a per-sample margin with early stop, the loss
    here couples the samples (mined triplets, contrastive negatives), so the whole batch moves together
    and the last iterate is returned (Madry-style adversarial training). `step_size` is absolute, in
    [0, 1] pixel units; the start, step and projection (eps ball and [0, 1]) are the engine's.
    The caller chooses the model's mode (eval while crafting); no parameter gradient is accumulated.
    """
    x = x.detach()
    e = eps_view(eps, x)
    delta = random_start(x, norm, e, generator) if random_init else torch.zeros_like(x)
    delta = project(delta, x, norm, e)
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_of(x + delta)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = project(delta.detach() + step_size * steepest_step(grad, norm), x, norm, e)
    return (x + delta).detach()


def device_generator(device: torch.device, seed: int) -> torch.Generator:
    """A seeded torch generator on `device` (random starts and augmentations are drawn where the batch lives)."""
    return torch.Generator(device=device).manual_seed(int(seed))
