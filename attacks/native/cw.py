"""C&W-L2: the Carlini-Wagner L2 attack on the task margin (Carlini & Wagner, S&P 2017).

Written from the paper's description: the image is x' = (tanh(w) + 1) / 2, so the box is kept by
construction; w minimises ||x' - x||_2^2 + c * max(kappa - margin(x'), 0) with Adam, and c is found
per sample by binary search (multiplied by 10 while no success is known, bisected once it is). The
smallest successful perturbation seen is kept. It is a minimal-norm attack: success in a cell means the
goal is reached within the L2 budget given, and the output also carries the L2 norm it found (`min_eps`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from attacks.base import Attack, AttackOutput, Budget, eps_view, flat_norm
from attacks.registry import register_attack
from bench.errors import BadInputError
from bench.progress import report_steps
from bench.tasks.base import Task


def _atanh_box(x: torch.Tensor) -> torch.Tensor:
    """w with (tanh(w) + 1) / 2 = x, for x kept a hair inside (0, 1)."""
    return torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))


def carlini_wagner_l2(
    task: Task,
    x: torch.Tensor,
    eps: Budget,
    *,
    steps: int = 100,
    search_steps: int = 9,
    initial_const: float = 1.0,
    kappa: float = 0.0,
    lr: float = 0.01,
    abort_early: bool = True,
) -> AttackOutput:
    """Per sample, the smallest L2 perturbation C&W finds that reaches the goal; success if it is within `eps`.

    Pure torch and batched: Adam is written out so that its state can be sliced when a sample stops
    (no improvement of its objective by 1e-4 relative over steps/10 iterations). Samples broken on clean
    input get distance 0. `min_eps` is the distance found (inf where none). Points farther than `eps`
    are projected onto the L2 ball (and judged there), so `x_adv` always respects the budget.
    """
    x = x.detach()
    n = x.shape[0]
    eps_all = eps_view(eps, x)
    queries = torch.ones(n, dtype=torch.long, device=x.device)
    with torch.no_grad():
        clean_ok = task.success_from_scores(task.scores(x))
    best_l2 = torch.where(clean_ok, torch.zeros(n, device=x.device), torch.full((n,), torch.inf, device=x.device))
    best_x = x.clone()
    const = torch.full((n,), float(initial_const), device=x.device)
    lo = torch.zeros(n, device=x.device)
    hi = torch.full((n,), torch.inf, device=x.device)
    w0_all = _atanh_box(x)
    check_every = max(steps // 10, 1)
    beta1, beta2 = 0.9, 0.999
    for search in range(search_steps):
        act = (~clean_ok).nonzero().squeeze(1)
        if act.numel() == 0:
            break
        w = w0_all[act].clone()
        x0, c = x[act], const[act]
        m1, m2 = torch.zeros_like(w), torch.zeros_like(w)
        found = torch.zeros(act.numel(), dtype=torch.bool, device=x.device)  # success in this search step
        prev_obj = torch.full((act.numel(),), torch.inf, device=x.device)
        pos = torch.arange(act.numel(), device=x.device)  # row of each active sample in `found`
        for t in range(1, steps + 1):
            report_steps(search * steps + t - 1, search_steps * steps)
            w.requires_grad_(True)
            with torch.enable_grad():
                xa = (torch.tanh(w) + 1) / 2
                sub = task.subset(act)
                s = sub.scores(xa)
                margin = sub.margin_from_scores(s)
                dist = (xa - x0).flatten(1).pow(2).sum(1)
                obj = dist + c * (kappa - margin).clamp_min(0)
            g = torch.autograd.grad(obj.sum(), w)[0]
            w = w.detach()
            queries[act] += 1
            with torch.no_grad():
                ok = sub.success_from_scores(s.detach()) & (margin.detach() >= kappa)
                l2 = dist.detach().sqrt()
                better = ok & (l2 < best_l2[act])
                best_l2[act[better]] = l2[better]
                best_x[act[better]] = xa.detach()[better]
                found[pos[ok]] = True
                m1 = beta1 * m1 + (1 - beta1) * g
                m2 = beta2 * m2 + (1 - beta2) * g * g
                w = w - lr * (m1 / (1 - beta1**t)) / ((m2 / (1 - beta2**t)).sqrt() + 1e-8)
                if abort_early and t % check_every == 0:
                    od = obj.detach()
                    keep = od <= prev_obj * 0.9999
                    prev_obj = od
                    if not bool(keep.all()):
                        if not bool(keep.any()):
                            break
                        act, w, x0, c, m1, m2, pos, prev_obj = (v[keep] for v in (act, w, x0, c, m1, m2, pos, prev_obj))
        # binary search on c: success -> smaller c, failure -> larger c (x10 until an upper bound is known)
        rows = (~clean_ok).nonzero().squeeze(1)
        hi[rows] = torch.where(found, torch.minimum(hi[rows], const[rows]), hi[rows])
        lo[rows] = torch.where(found, lo[rows], torch.maximum(lo[rows], const[rows]))
        const[rows] = torch.where(torch.isinf(hi[rows]), const[rows] * 10, (lo[rows] + hi[rows]) / 2)
    return _within_budget(task, x, best_x, best_l2, eps_all, queries)


def _within_budget(task: Task, x: torch.Tensor, best_x: torch.Tensor, best_l2: torch.Tensor, eps_all: torch.Tensor,
                   queries: torch.Tensor) -> AttackOutput:
    """The output: each sample's best point when it is within its budget, else that point projected onto the L2
    ball and judged there (one more query)."""
    shape1 = (-1,) + (1,) * (x.dim() - 1)
    d = best_x - x
    over = best_l2 > eps_all.view(-1)
    x_adv = torch.where(over.view(shape1), (x + d * torch.clamp(eps_all / flat_norm(d), max=1.0)).clamp(0, 1), best_x)
    success = best_l2 <= eps_all.view(-1)
    if bool(over.any()):
        idx = over.nonzero().squeeze(1)
        with torch.no_grad():
            success[idx] = task.subset(idx).success(x_adv[idx])
        queries[idx] += 1
    return AttackOutput(x_adv, success, queries, min_eps=best_l2)


@register_attack
@dataclass
class CarliniWagnerL2(Attack):
    name = "cw-l2"
    backend = "native"
    norms = ("l2",)
    description = "Carlini-Wagner L2 (tanh box, binary search over c, confidence kappa) on the task margin"
    measures_min_eps = True

    steps: int = 100
    search_steps: int = 9
    initial_const: float = 1.0
    kappa: float = 0.0
    lr: float = 0.01
    abort_early: bool = True

    def validate(self) -> None:
        if self.steps < 1:
            raise BadInputError(f"cw-l2: steps must be >= 1, got {self.steps}")
        if self.search_steps < 1:
            raise BadInputError(f"cw-l2: search_steps must be >= 1, got {self.search_steps}")
        if not self.initial_const > 0:
            raise BadInputError(f"cw-l2: initial_const must be positive, got {self.initial_const}")
        if self.kappa < 0:
            raise BadInputError(f"cw-l2: kappa (confidence) must be >= 0, got {self.kappa}")
        if not 0 < self.lr <= 1:
            raise BadInputError(f"cw-l2: lr must be in (0, 1], got {self.lr}")

    def run(self, task, x, norm, eps, generator: Optional[torch.Generator] = None) -> AttackOutput:
        return carlini_wagner_l2(task, x, eps, steps=self.steps, search_steps=self.search_steps,
                                 initial_const=self.initial_const, kappa=self.kappa, lr=self.lr,
                                 abort_early=self.abort_early)
