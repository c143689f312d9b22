"""APGD: auto-PGD on the task margin, untargeted and targeted (Croce & Hein, ICML 2020).

Written from the paper's description: steps of 2 eps to start with, a momentum term
(x <- x + alpha (z - x) + (1 - alpha) (x - x_prev), alpha = 0.75), and at checkpoints
w_j = ceil(p_j N) (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) the step
size of a sample is halved, and it restarts from its best point, when (1) fewer than rho of the
steps since the previous checkpoint increased its margin, or (2) neither its step size nor its
best margin changed since the previous checkpoint. The loss is the task's margin (DLR needs >= 3
classes; verification and liveness are binary), so no cross-entropy variant is offered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from attacks.base import Attack, AttackOutput, Budget, eps_view, project, steepest_step
from attacks.native.engine import random_start
from attacks.registry import register_attack
from bench.errors import BadInputError
from bench.progress import part_of_steps, report_steps
from bench.tasks.base import Task


def checkpoints(steps: int) -> list[int]:
    """The iterations w_1 < w_2 < ... (<= steps) at which APGD may halve a sample's step size."""
    p_prev, p = 0.0, 0.22
    out: list[int] = []
    while p <= 1.0:
        w = math.ceil(round(p * steps, 6))  # 0.41 + 0.16 must give 57, not 58
        if 0 < w <= steps and (not out or w > out[-1]):
            out.append(w)
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)
    return out


def _checkpoint(st: dict, since: int, rho: float, shape1: tuple) -> None:
    """At a checkpoint, `since` iterations after the last: halve the step of each sample whose margin rose in fewer
    than `rho` of them, or whose step and best margin did not change since; a halved sample restarts from its
    best point, without momentum. Updates the per-sample state `st` in place."""
    stalled = st["n_up"] < rho * since
    flat = (st["eta"] == st["cp_eta"]).flatten(1).all(1) & (st["best_m"] == st["cp_m"])
    halve = stalled | flat
    st["cp_eta"], st["cp_m"] = st["eta"], st["best_m"].clone()
    h4 = halve.view(shape1)
    st["eta"] = torch.where(h4, st["eta"] / 2, st["eta"])
    st["delta"] = torch.where(h4, st["best_d"], st["delta"])
    st["prev"] = torch.where(h4, st["best_d"], st["prev"])
    st["grad"] = torch.where(h4, st["best_g"], st["grad"])
    st["m"] = torch.where(halve, st["best_m"], st["m"])
    st["n_up"] = torch.zeros_like(st["n_up"])


# About 90 lines with its signature, on purpose: the iterate loop reads as Algorithm 1 of Croce & Hein (2020) in one
# piece (the step-size checkpoint is `_checkpoint`); splitting the loop would scatter its per-sample state.
def apgd(
    task: Task,
    x: torch.Tensor,
    norm: str,
    eps: Budget,
    *,
    steps: int,
    restarts: int = 1,
    random_init: bool = True,
    alpha: float = 0.75,
    rho: float = 0.75,
    generator: Optional[torch.Generator] = None,
) -> AttackOutput:
    """APGD maximising `task`'s margin inside the norm ball; batched, per-sample early stop and best-so-far.

    Each restart runs only on the samples every earlier restart failed on. `queries` counts forward
    passes per sample (one per iterate, plus the starting point of each restart).
    """
    x = x.detach()
    n = x.shape[0]
    eps_all = eps_view(eps, x)
    best_x = x.clone()
    best_m = torch.full((n,), -torch.inf, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    queries = torch.zeros(n, dtype=torch.long, device=x.device)
    cps = set(checkpoints(steps))
    shape1 = (-1,) + (1,) * (x.dim() - 1)

    def evaluate(act: torch.Tensor, xa: torch.Tensor, need_grad: bool):
        """Margin, success and (optionally) gradient at xa; updates the global best and counts queries."""
        xa = xa.detach().requires_grad_(need_grad)
        sub = task.subset(act)
        with torch.enable_grad() if need_grad else torch.no_grad():
            s = sub.scores(xa)
            m = sub.margin_from_scores(s)
        grad = torch.autograd.grad(m.sum(), xa)[0] if need_grad else None
        md = m.detach()
        ok = sub.success_from_scores(s.detach())
        queries[act] += 1
        better = ok | (md > best_m[act])
        best_x[act[better]] = xa.detach()[better]
        best_m[act[better]] = md[better]
        done[act[ok]] = True
        return md, ok, grad

    for r in range(restarts):
        act = (~done).nonzero().squeeze(1)
        if act.numel() == 0:
            break
        x0, e = x[act], eps_all[act]
        delta = random_start(x0, norm, e, generator) if random_init else torch.zeros_like(x0)
        delta = project(delta, x0, norm, e)
        m_cur, ok, grad = evaluate(act, x0 + delta, steps > 0)
        # per-sample state of this restart; every tensor is indexed like `act`
        st = {
            "x0": x0, "e": e, "delta": delta, "prev": delta, "grad": grad, "m": m_cur,
            "best_d": delta, "best_g": grad, "best_m": m_cur.clone(),
            "eta": 2.0 * e, "cp_eta": 2.0 * e, "cp_m": m_cur.clone(),
            "n_up": torch.zeros_like(m_cur),
        }
        keep = ~ok
        last_cp = 0
        for k in range(steps):
            report_steps(r * steps + k, restarts * steps)
            if not bool(keep.all()):
                if not bool(keep.any()):
                    break
                act = act[keep]
                st = {name: v[keep] for name, v in st.items()}
            d, x0, e = st["delta"], st["x0"], st["e"]
            z = project(d + st["eta"] * steepest_step(st["grad"], norm), x0, norm, e)
            new = z if k == 0 else project(d + alpha * (z - d) + (1 - alpha) * (d - st["prev"]), x0, norm, e)
            last = k == steps - 1
            m_new, ok, grad = evaluate(act, x0 + new, not last)
            if last:
                break
            st["n_up"] = st["n_up"] + (m_new > st["m"]).to(m_new.dtype)
            better = m_new > st["best_m"]
            b4 = better.view(shape1)
            st["best_d"] = torch.where(b4, new, st["best_d"])
            st["best_g"] = torch.where(b4, grad, st["best_g"])
            st["best_m"] = torch.where(better, m_new, st["best_m"])
            st["prev"], st["delta"], st["grad"], st["m"] = d, new, grad, m_new
            if k + 1 in cps:
                _checkpoint(st, k + 1 - last_cp, rho, shape1)
                last_cp = k + 1
            keep = ~ok
    return AttackOutput(best_x, done, queries)


def apgd_targeted(
    task: Task,
    x: torch.Tensor,
    norm: str,
    eps: Budget,
    *,
    n_targets: int,
    steps: int,
    restarts: int = 1,
    random_init: bool = True,
    alpha: float = 0.75,
    rho: float = 0.75,
    generator: Optional[torch.Generator] = None,
) -> AttackOutput:
    """APGD aimed in turn at each sample's top-`n_targets` other classes (by clean score).

    Uses the task's `retarget` hook; a binary task has a single target (its goal), so this is the
    untargeted attack. Each target runs only on the samples still unbroken, and the best point of
    any target is kept for the others.
    """
    x = x.detach()
    n = x.shape[0]
    with torch.no_grad():
        clean_scores = task.scores(x)
    queries = torch.ones(n, dtype=torch.long, device=x.device)
    x_adv = x.clone()
    done = task.success_from_scores(clean_scores).clone()
    best_m = task.margin_from_scores(clean_scores).detach().clone()
    eps_all = eps_view(eps, x)
    targets = min(n_targets, task.num_targets())
    for rank in range(targets):
        idx = (~done).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        sub = task.subset(idx)
        with part_of_steps(rank, targets):
            out = apgd(sub.retarget(clean_scores[idx], rank), x[idx], norm, eps_all[idx], steps=steps,
                       restarts=restarts, random_init=random_init, alpha=alpha, rho=rho, generator=generator)
        queries[idx] += out.queries + 1
        with torch.no_grad():  # judge on the task's own margin, not the retargeted one
            s = sub.scores(out.x_adv)
        m = sub.margin_from_scores(s)
        ok = sub.success_from_scores(s)
        better = ok | (m > best_m[idx])
        x_adv[idx[better]] = out.x_adv[better]
        best_m[idx[better]] = m[better]
        done[idx[ok]] = True
    return AttackOutput(x_adv, done, queries)


def _check_common(name: str, steps: int, restarts: int, alpha: float, rho: float) -> None:
    if steps < 1:
        raise BadInputError(f"{name}: steps must be >= 1, got {steps}")
    if restarts < 1:
        raise BadInputError(f"{name}: restarts must be >= 1, got {restarts}")
    if not 0 < alpha <= 1:
        raise BadInputError(f"{name}: alpha (weight of the new step against momentum) must be in (0, 1], got {alpha}")
    if not 0 < rho <= 1:
        raise BadInputError(f"{name}: rho must be in (0, 1], got {rho}")


@register_attack
@dataclass
class APGD(Attack):
    name = "apgd"
    backend = "native"
    norms = ("linf", "l2")
    description = "auto-PGD on the task margin: step halving at checkpoints, momentum, best-so-far, early stop"

    steps: int = 100
    restarts: int = 1
    random_start: bool = True
    alpha: float = 0.75
    rho: float = 0.75

    def validate(self) -> None:
        _check_common(self.name, self.steps, self.restarts, self.alpha, self.rho)

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return apgd(task, x, norm, eps, steps=self.steps, restarts=self.restarts, random_init=self.random_start,
                    alpha=self.alpha, rho=self.rho, generator=generator)


@register_attack
@dataclass
class APGDTargeted(APGD):
    name = "apgd-t"
    description = "targeted APGD on the top-k other classes (the task's retarget hook); untargeted on binary goals"

    n_targets: int = 9

    def validate(self) -> None:
        super().validate()
        if self.n_targets < 1:
            raise BadInputError(f"apgd-t: n_targets must be >= 1, got {self.n_targets}")

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        return apgd_targeted(task, x, norm, eps, n_targets=self.n_targets, steps=self.steps, restarts=self.restarts,
                             random_init=self.random_start, alpha=self.alpha, rho=self.rho, generator=generator)
