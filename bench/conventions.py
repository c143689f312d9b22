"""The output conventions every evaluated model follows, checked on one batch before any attack.

FR models return L2-normalised embeddings (N, D); FAS models return one liveness logit per image (N,),
higher = live. Both must be differentiable in their input (white-box attacks need input gradients).
Nothing is fixed up silently: a model that breaks a convention is refused with one line that says how.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.errors import ModelOutputError

NORM_TOLERANCE = {torch.float64: 1e-3, torch.float32: 1e-3}  # lower precisions: LOW_PRECISION_TOLERANCE
LOW_PRECISION_TOLERANCE = 1e-2


def check_model_outputs(model: nn.Module, x: torch.Tensor, task: str, name: str) -> None:
    """Run `model` on the batch `x` (float [0, 1], NCHW) and refuse outputs that break the `task` convention."""
    n = x.shape[0]
    what = f"model {name!r}"
    x = x.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = model(x)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelOutputError(
            f"{what} failed on a batch of {n} images of shape {tuple(x.shape[1:])} (float in [0, 1], RGB, NCHW): "
            f"{type(e).__name__}: {first}"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"{what} returned {type(out).__name__}; {task.upper()} models must return one tensor")
    shape = tuple(out.shape)
    if task == "fr":
        if out.ndim != 2 or shape[0] != n or shape[1] < 1:
            raise ModelOutputError(
                f"FR models must return embeddings of shape (N, D); {what} returned shape {shape} for {n} images"
            )
    else:
        if shape != (n,):
            hint = ""
            if shape == (n, 1):
                hint = ": end forward with .squeeze(1)"
            elif shape == (n, 2):
                hint = ": reduce a two-class head to one logit, e.g. live logit minus spoof logit"
            raise ModelOutputError(
                f"FAS models must return one liveness logit per image, shape (N,); {what} returned shape {shape} "
                f"for {n} images{hint}"
            )
    if not out.is_floating_point():
        raise ModelOutputError(f"{what} returned {out.dtype} values; {task.upper()} models must return floats")
    if not bool(torch.isfinite(out).all()):
        raise ModelOutputError(f"{what} returned non-finite values (NaN or inf) on a batch of {n} images")
    if task == "fr":
        norms = out.detach().float().norm(dim=1)
        tol = NORM_TOLERANCE.get(out.dtype, LOW_PRECISION_TOLERANCE)
        if bool(((norms - 1).abs() > tol).any()):
            raise ModelOutputError(
                f"FR models must return L2-normalised embeddings; {what} returned row norms from "
                f"{float(norms.min()):.4g} to {float(norms.max()):.4g} (end forward with F.normalize(e, dim=1))"
            )
    if not out.requires_grad:
        raise ModelOutputError(
            f"{what} output does not depend differentiably on its input (no gradient); attacks need input "
            "gradients: do not detach, use torch.no_grad or leave torch inside forward"
        )
