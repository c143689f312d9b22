"""FMN: the fast minimum-norm attack, Linf and L2 (Pintor, Roli, Brendel & Biggio, NeurIPS 2021).

Written from the paper's description (Algorithm 1). Per sample it keeps a perturbation `delta` inside a ball of
radius `eps_k` and alternates two moves:

- the radius: while the current point does not reach the goal, `eps_k` is the linear estimate of the distance
  to the decision boundary, `||delta||_p + L / ||grad||_q` (q the dual norm, L = -margin) until a first
  adversarial point is found, and `eps_{k-1} (1 + gamma_k)` afterwards; while it reaches the goal, the smallest
  adversarial norm seen is recorded and `eps_k = min(eps_{k-1} (1 - gamma_k), best norm)`;
- the point: a steepest-ascent step of the task margin (the gradient's sign for Linf, the L2-normalised gradient
  for L2) of size `alpha_k eps_k`, projected onto the `eps_k` ball and the [0, 1] box.

`gamma_k` and `alpha_k` decay from their initial to their final values by cosine annealing. Departures from the
paper, each for a reason:
- the step is relative to the current radius (`alpha_k eps_k` times the unit steepest direction) instead of an
  absolute L2-normalised step, so that the defaults serve both norms and every image size;
- the boundary estimate is overshot by the same factor 1 + gamma_k (`next_radius`): a point that float rounding
  leaves a hair short of the boundary would otherwise be sent back to the same radius for ever;
- a perturbed point counts as adversarial only with a margin of at least `margin_tol` (`fmn`), so that the
  store's forward pass, which rounds differently, decides it the same way.
The defaults (alpha 0.5 -> 0.05 of the radius, gamma 0.05 -> 0.001, 100 steps) were chosen on the tiny
`triplet-adv`, `contrastive-triplet` and `cdcn` zoo models against the `min-eps` bisection, not on the models the
tests and docs/performance.md measure (`facenet-baseline`, `depth-gan-spoof`): a step of the whole radius
(alpha 1) bounces between the corners of the Linf ball on the harder goals and finds its first adversarial point
too late to shrink it.

The budget a cell gives is the ceiling of the search: `eps_k` never exceeds it, so every point the attack
evaluates lies within it; a sample whose minimal norm lies above it gets `min_eps` inf.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from attacks.base import Attack, AttackOutput, Budget, eps_view, project, steepest_step
from attacks.registry import register_attack
from bench.errors import BadInputError
from bench.progress import report_steps
from bench.tasks.base import Task


def cosine(start: float, end: float, k: int, total: int) -> float:
    """Cosine annealing from `start` (k = 0) to `end` (k = total)."""
    return end + (start - end) * (1 + math.cos(math.pi * k / total)) / 2


def _norms(d: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample norm of `d` (N,), Linf or L2 (the budget's norm); `_dual` is the dual norm, L1 or L2."""
    return d.flatten(1).abs().amax(1) if norm == "linf" else d.flatten(1).norm(dim=1)


def _dual(g: torch.Tensor, norm: str) -> torch.Tensor:
    return (g.flatten(1).abs().sum(1) if norm == "linf" else g.flatten(1).norm(dim=1)).clamp_min(1e-12)


def next_radius(radius: torch.Tensor, ok: torch.Tensor, found: torch.Tensor, size: torch.Tensor, margin: torch.Tensor,
                grad: torch.Tensor, best: torch.Tensor, gamma: float, norm: str, ceiling: torch.Tensor) -> torch.Tensor:
    """FMN's radius update: shrink towards the best adversarial norm where the point reaches the goal; else grow
    by (1 + gamma) once an adversarial point is known, or jump to the linear boundary estimate before (overshot
    by the same 1 + gamma: a point that float rounding leaves a hair short of the boundary would otherwise be
    sent back to the same radius for ever). Capped at the ceiling."""
    boundary = (size + (-margin).clamp_min(0) / _dual(grad, norm)) * (1 + gamma)
    out = torch.where(ok, torch.minimum(radius * (1 - gamma), best),
                      torch.where(found, radius * (1 + gamma), boundary))
    return torch.minimum(out, ceiling)


# About 70 lines: the loop is Algorithm 1 of Pintor et al. in one piece (the radius update is `next_radius`).
def fmn(
    task: Task,
    x: torch.Tensor,
    norm: str,
    ceiling: Budget,
    *,
    steps: int = 100,
    alpha_init: float = 0.5,
    alpha_final: float = 0.05,
    gamma_init: float = 0.05,
    gamma_final: float = 0.001,
    margin_tol: float = 1e-5,
) -> AttackOutput:
    """Per sample, the smallest `norm` perturbation FMN finds that reaches the task's goal, within `ceiling`.

    Batched: every sample takes every step (each keeps shrinking its perturbation once adversarial), except
    those broken on clean input, which leave after the first query with `min_eps` 0. Returns, per sample, the
    adversarial point of smallest norm (`min_eps`, its exact norm; `success`) or, where none was found within
    the ceiling, the point of largest margin seen (`min_eps` inf). `queries`: steps + 1 forward passes per
    sample (the clean point and each iterate; a gradient counts once), 1 for samples broken on clean input.

    A perturbed point counts as adversarial when the task decides it is and its margin is at least `margin_tol`
    (FMN then searches the boundary of that set): the point FMN converges to lies on the decision boundary, where
    the store's forward pass (the model as loaded, while attacks see the BatchNorm-folded copy, bench/precision.py)
    rounds differently by about 1e-7 and would decide about half of such points the other way.
    """
    x = x.detach()
    n = x.shape[0]
    top_all = eps_view(ceiling, x).reshape(n)
    best_norm = torch.full((n,), torch.inf, device=x.device)
    best_m = torch.full((n,), -torch.inf, device=x.device)
    best_x = x.clone()
    queries = torch.zeros(n, dtype=torch.long, device=x.device)
    act = torch.arange(n, device=x.device)
    x0, top, sub = x, top_all, task
    delta = torch.zeros_like(x)
    radius = torch.zeros(n, device=x.device, dtype=x.dtype)
    for k in range(steps + 1):
        report_steps(k, steps)
        last = k == steps
        xa = (x0 + delta).requires_grad_(not last)
        with torch.enable_grad() if not last else torch.no_grad():
            s = sub.scores(xa)
            m = sub.margin_from_scores(s)
        xd, md = xa.detach(), m.detach()
        ok = sub.success_from_scores(s.detach())
        if k > 0:  # the clean point is judged as it is; perturbed points with a margin to spare
            ok = ok & (md >= margin_tol)
        queries.index_add_(0, act, torch.ones_like(act))
        size = _norms(xd - x0, norm)  # measured as the store measures it: the returned point minus the clean one
        smaller = ok & (size <= best_norm[act])
        best_norm[act] = torch.where(smaller, size, best_norm[act])
        higher = ~torch.isfinite(best_norm[act]) & (md > best_m[act])  # no adversarial point yet: the best margin
        best_m[act] = torch.where(higher, md, best_m[act])
        keep_x = smaller | higher
        if bool(keep_x.any()):
            best_x[act[keep_x]] = xd[keep_x]
        if last:
            break
        grad = torch.autograd.grad(m.sum(), xa)[0]
        if k == 0 and bool(ok.any()):  # broken on clean input: minimal norm 0, nothing left to search
            rest = (~ok).nonzero().squeeze(1)
            if rest.numel() == 0:
                break
            act, x0, top, delta, radius, grad, md, size, ok = (
                v[rest] for v in (act, x0, top, delta, radius, grad, md, size, ok))
            sub = task.subset(act)
        found = torch.isfinite(best_norm[act])
        gamma = cosine(gamma_init, gamma_final, k, steps)
        radius = next_radius(radius, ok, found, size, md - margin_tol, grad, best_norm[act], gamma, norm, top)
        e = radius.view(-1, *([1] * (x.dim() - 1)))
        alpha = cosine(alpha_init, alpha_final, k, steps)
        delta = project(delta + alpha * e * steepest_step(grad, norm), x0, norm, e)
    success = torch.isfinite(best_norm)
    return AttackOutput(best_x, success, queries, min_eps=best_norm)


@register_attack
@dataclass
class FMN(Attack):
    """Fast minimum-norm attack: the per-sample minimal perturbation, the cell's budget its ceiling."""

    name = "fmn"
    backend = "native"
    norms = ("linf", "l2")
    description = ("fast minimum-norm attack (Pintor et al. 2021): per-sample minimal Linf / L2 perturbation, "
                   "eps its ceiling (output carries min_eps)")
    measures_min_eps = True
    budget_is_ceiling = True

    steps: int = 100
    alpha_init: float = 0.5  # the first step, relative to the current radius
    alpha_final: float = 0.05  # the last step, relative to the current radius
    gamma_init: float = 0.05  # the first radius change, a fraction of the radius
    gamma_final: float = 0.001  # the last radius change
    margin_tol: float = 1e-5  # the margin a perturbed point needs to count as adversarial (the task's score units)

    def validate(self) -> None:
        if self.steps < 1:
            raise BadInputError(f"fmn: steps must be >= 1, got {self.steps}")
        if not 0 < self.alpha_final <= self.alpha_init <= 2:
            raise BadInputError(f"fmn: step sizes need 0 < alpha_final <= alpha_init <= 2 (relative to the radius), "
                                f"got alpha_init={self.alpha_init}, alpha_final={self.alpha_final}")
        if not 0 < self.gamma_final <= self.gamma_init < 1:
            raise BadInputError(f"fmn: radius steps need 0 < gamma_final <= gamma_init < 1, "
                                f"got gamma_init={self.gamma_init}, gamma_final={self.gamma_final}")
        if not 0 <= self.margin_tol < 1:
            raise BadInputError(f"fmn: margin_tol must be in [0, 1), got {self.margin_tol}")

    def run(self, task, x, norm, eps, generator: Optional[torch.Generator] = None) -> AttackOutput:
        return fmn(task, x, norm, eps, steps=self.steps, alpha_init=self.alpha_init, alpha_final=self.alpha_final,
                   gamma_init=self.gamma_init, gamma_final=self.gamma_final, margin_tol=self.margin_tol)
