"""Minimal-perturbation search: per sample, the smallest budget at which an attack succeeds, by bisection.

This gives median-distance and success-rate-vs-eps curves, the way face robustness is usually compared.
The bisection runs over a per-sample eps tensor (the native engine accepts one), so every step is one
batched attack on the samples whose interval is still open.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from attacks.base import Attack, AttackOutput, Budget, eps_view
from attacks.registry import ATTACKS, make_attack, register_attack
from bench.errors import BadInputError
from bench.progress import part_of_steps
from bench.tasks.base import Task


def minimal_eps(
    task: Task,
    x: torch.Tensor,
    attack: Attack,
    norm: str,
    eps_max: Budget,
    *,
    search_steps: int = 10,
    generator: Optional[torch.Generator] = None,
) -> AttackOutput:
    """Bisect, per sample, the smallest eps in (0, eps_max] at which `attack` succeeds.

    Returns the attack's successful point at the smallest budget found and that budget as `min_eps`
    (an upper bound within eps_max / 2**search_steps of where the attack starts to succeed); samples
    broken on clean input get 0, samples the attack cannot break at eps_max get inf (and the attack's
    best point at eps_max). `queries` sums the attack's queries over the search.
    """
    x = x.detach()
    n = x.shape[0]
    top = eps_view(eps_max, x).reshape(n).clone()
    queries = torch.ones(n, dtype=torch.long, device=x.device)
    with torch.no_grad():
        broken0 = task.success_from_scores(task.scores(x))
    min_eps = torch.where(broken0, torch.zeros_like(top), torch.full_like(top, torch.inf))
    x_adv = x.clone()
    # the top of the interval: who can be broken at all
    idx = (~broken0).nonzero().squeeze(1)
    success = broken0.clone()
    if idx.numel():
        with part_of_steps(0, 1 + search_steps):  # the inner attack's steps, as one of the search's runs
            out = attack.run(task.subset(idx), x[idx], norm, top[idx], generator=generator)
        queries[idx] += out.queries
        x_adv[idx] = out.x_adv
        success[idx] = out.success
        min_eps[idx[out.success]] = top[idx[out.success]]
    lo = torch.zeros_like(top)
    hi = top.clone()
    open_ = success & ~broken0
    for k in range(search_steps):
        idx = open_.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        mid = (lo[idx] + hi[idx]) / 2
        with part_of_steps(1 + k, 1 + search_steps):
            out = attack.run(task.subset(idx), x[idx], norm, mid, generator=generator)
        queries[idx] += out.queries
        ok = out.success
        hi[idx] = torch.where(ok, mid, hi[idx])
        lo[idx] = torch.where(ok, lo[idx], mid)
        x_adv[idx[ok]] = out.x_adv[ok]
    min_eps = torch.where(open_, hi, min_eps)
    return AttackOutput(x_adv, success, queries, min_eps=min_eps)


def success_curve(min_eps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Success rate at each budget of `grid`, from per-sample minimal budgets (inf = never broken)."""
    return (min_eps.view(1, -1) <= grid.view(-1, 1).to(min_eps)).float().mean(1)


@register_attack
@dataclass
class MinimalEps(Attack):
    name = "min-eps"
    backend = "native"
    norms = ("linf", "l2")
    description = "per-sample minimal budget by bisection of a native attack (output carries min_eps)"
    measures_min_eps = True
    budget_is_ceiling = True

    attack: str = "pgd"
    attack_steps: int = 20
    search_steps: int = 10

    def _inner(self) -> Attack:
        params = {"steps": self.attack_steps} if "steps" in {f for f in ATTACKS.get(self.attack).__dataclass_fields__} else {}
        return make_attack(self.attack, params)

    def validate(self) -> None:
        if self.attack == self.name:
            raise BadInputError("min-eps: the attack to bisect cannot be min-eps itself")
        cls = ATTACKS.get(self.attack)
        if cls.backend != "native":
            raise BadInputError(f"min-eps: needs a native attack (per-sample budgets), {self.attack!r} is {cls.backend}")
        if self.attack_steps < 1:
            raise BadInputError(f"min-eps: attack_steps must be >= 1, got {self.attack_steps}")
        if not 1 <= self.search_steps <= 40:
            raise BadInputError(f"min-eps: search_steps must be in [1, 40], got {self.search_steps}")
        self._inner()

    def check(self, norm: str, eps: float, goal: Optional[str] = None) -> None:
        super().check(norm, eps, goal)
        self._inner().check(norm, eps, goal)

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return minimal_eps(task, x, self._inner(), norm, eps, search_steps=self.search_steps, generator=generator)
