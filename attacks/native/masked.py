"""Physically realisable attacks: a perturbation confined to an eyeglass frame, or to a square patch.

Both are PGD (the native engine: early stop, best-so-far) with the perturbation multiplied by a fixed
mask; the budget is the Linf bound inside the mask (1.0 = any colour, as printed glasses or a sticker
allow). The eyeglass frame is drawn once in the aligned 64-px face crop the renderer and the aligned
datasets share (eyes near u = +-0.25, v = -0.07 in [-1, 1] image coordinates, v downwards) and scaled
to the input size; see Sharif et al. (CCS 2016) for the attack and Brown et al. (2017) for patches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attacks.base import Attack, AttackOutput
from attacks.native.engine import gradient_attack
from attacks.registry import register_attack
from bench.errors import BadInputError

FRAME_SIZE = 64  # the aligned crop the frame shape is drawn in


def _frame_64(device=None) -> torch.Tensor:
    """The eyeglass frame in the 64-px crop: two elliptical rims, a bridge and the temples, as 0 / 1."""
    lin = (torch.arange(FRAME_SIZE, device=device, dtype=torch.float32) + 0.5) / FRAME_SIZE * 2 - 1
    v, u = torch.meshgrid(lin, lin, indexing="ij")
    a, b, rim = 0.21, 0.16, 0.08  # lens half-width and half-height, rim thickness (2.5 px at 64 px)
    frame = torch.zeros_like(u, dtype=torch.bool)
    for side in (-1.0, 1.0):
        du, dv = u - side * 0.26, v + 0.06
        outer = (du / a) ** 2 + (dv / b) ** 2 <= 1
        inner = (du / (a - rim)) ** 2 + (dv / (b - rim)) ** 2 < 1
        frame |= outer & ~inner
        frame |= (side * u >= 0.44) & (side * u <= 0.66) & (v >= -0.14) & (v <= -0.06)  # temple
    frame |= (u.abs() <= 0.1) & (v >= -0.16) & (v <= -0.08)  # bridge
    return frame.float()


def eyeglass_mask(height: int, width: int, device=None) -> torch.Tensor:
    """The eyeglass-frame mask at an input size, (1, 1, H, W) with values 0 / 1."""
    frame = _frame_64(device)[None, None]
    if (height, width) != (FRAME_SIZE, FRAME_SIZE):
        frame = F.interpolate(frame, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return (frame >= 0.5).float()


def patch_mask(height: int, width: int, size: float, cx: float, cy: float, device=None) -> torch.Tensor:
    """A square patch of side `size` x min(H, W) centred near (cx W, cy H), kept inside the image; (1, 1, H, W)."""
    side = max(1, round(size * min(height, width)))
    left = min(max(round(cx * width - side / 2), 0), width - side)
    top = min(max(round(cy * height - side / 2), 0), height - side)
    mask = torch.zeros(1, 1, height, width, device=device)
    mask[..., top : top + side, left : left + side] = 1.0
    return mask


def _check_pgd(name: str, steps: int, step_size: float, restarts: int) -> None:
    if steps < 1:
        raise BadInputError(f"{name}: steps must be >= 1, got {steps}")
    if not 0 < step_size <= 1:
        raise BadInputError(f"{name}: step_size is relative to eps and must be in (0, 1], got {step_size}")
    if restarts < 1:
        raise BadInputError(f"{name}: restarts must be >= 1, got {restarts}")


@dataclass
class MaskedPGD(Attack):
    """PGD confined to `mask(x)` (1 inside, 0 outside: the perturbation is exactly zero outside)."""

    norms = ("linf",)
    mask_confined = True

    steps: int = 50
    step_size: float = 0.05  # relative to eps
    random_start: bool = True
    restarts: int = 1

    def validate(self) -> None:
        _check_pgd(self.name, self.steps, self.step_size, self.restarts)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return gradient_attack(task, x, norm, eps, steps=self.steps, step_size=self.step_size,
                               random_init=self.random_start, restarts=self.restarts, mask=self.mask(x),
                               generator=generator)


@register_attack
@dataclass
class Eyeglass(MaskedPGD):
    name = "eyeglass"
    backend = "native"
    description = "PGD confined to an eyeglass-frame mask (eps: Linf bound inside the frame; 1.0 = any colour)"

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return eyeglass_mask(x.shape[-2], x.shape[-1], x.device).to(x.dtype)


@register_attack
@dataclass
class Patch(MaskedPGD):
    name = "patch"
    backend = "native"
    description = "PGD confined to a square patch (size: side as a fraction of the image; cx, cy: its centre)"

    size: float = 0.2
    cx: float = 0.5
    cy: float = 0.5

    def validate(self) -> None:
        super().validate()
        if not 0 < self.size <= 1:
            raise BadInputError(f"patch: size is a fraction of the image side and must be in (0, 1], got {self.size}")
        for key in ("cx", "cy"):
            if not 0 <= getattr(self, key) <= 1:
                raise BadInputError(f"patch: {key} is a fraction of the image and must be in [0, 1], got {getattr(self, key)}")

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return patch_mask(x.shape[-2], x.shape[-1], self.size, self.cx, self.cy, x.device).to(x.dtype)
