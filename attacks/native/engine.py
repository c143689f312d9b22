"""The native gradient engine: batched, per-sample early stop and best-so-far, no host round-trips."""
from __future__ import annotations

from typing import Optional

import torch

from attacks.base import AttackOutput, Budget, SegmentGenerators, eps_view, flat_norm, project, steepest_step
from bench.progress import report_steps
from bench.tasks.base import Task


def random_start(x: torch.Tensor, norm: str, eps: torch.Tensor,
                 generator: "Optional[torch.Generator] | SegmentGenerators") -> torch.Tensor:
    """A uniform point in the Linf ball, or a random direction at a uniform radius in the L2 ball.
    With `SegmentGenerators`, each run's rows are drawn with its own generator (budgets together)."""
    if isinstance(generator, SegmentGenerators):
        out = torch.empty_like(x)
        for g, rows in generator.per_run():
            out[rows] = random_start(x[rows], norm, eps[rows], g)
        return out
    if norm == "linf":
        return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device, dtype=x.dtype)
    return d / flat_norm(d) * eps * r


def step_sizes(first: float, last: Optional[float], steps: int) -> list[float]:
    """The step size of each of `steps` steps: `first` throughout (`last` None), or a geometric decay from `first`
    at the first step to `last` at the last one."""
    if last is None or steps < 2:
        return [first] * steps
    return [first * (last / first) ** (t / (steps - 1)) for t in range(steps)]


def gradient_attack(
    task: Task,
    x: torch.Tensor,
    norm: str,
    eps: Budget,
    *,
    steps: int,
    step_size: float,
    random_init: bool,
    restarts: int = 1,
    momentum: float = 0.0,
    mask: Optional[torch.Tensor] = None,
    generator: "Optional[torch.Generator] | SegmentGenerators" = None,
    final_step_size: Optional[float] = None,
) -> AttackOutput:
    """Iterated steepest ascent of the task margin inside the norm ball (FGSM, BIM, PGD, MIM).

    `step_size` is relative to the budget (0.25 = eps/4); with `final_step_size` (relative too) the step decays
    geometrically to it at the last step (`step_sizes`). Samples leave the batch as soon as they are broken, so
    later steps cost only what is still unbroken; for the others the point with the largest margin seen is kept.
    `queries` counts forward passes per sample. `mask` (broadcastable to one sample, values 0 / 1) confines the
    perturbation to where it is 1 (eyeglass, patch attacks): zero elsewhere, the budget applies inside the mask.
    """
    sizes, x = step_sizes(step_size, final_step_size, steps), x.detach()
    n = x.shape[0]
    eps_all = eps_view(eps, x)
    best_x = x.clone()
    best_m = torch.full((n,), -torch.inf, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    queries = torch.zeros(n, dtype=torch.long, device=x.device)
    for r in range(restarts):
        act = (~done).nonzero().squeeze(1)
        if act.numel() == 0:
            break
        x0, e = x[act], eps_all[act]
        sub = task.subset(act)
        gen = generator.subset(act) if isinstance(generator, SegmentGenerators) else generator
        delta = random_start(x0, norm, e, gen) if random_init else torch.zeros_like(x0)
        if mask is not None:
            delta = delta * mask
        delta = project(delta, x0, norm, e)
        g_acc = torch.zeros_like(x0) if momentum > 0 else None
        for t in range(steps + 1):
            last = t == steps
            if steps > 1:  # a single step (FGSM) is no long attack
                report_steps(r * steps + t, restarts * steps)
            xa = (x0 + delta).requires_grad_(not last)
            with torch.enable_grad() if not last else torch.no_grad():
                s = sub.scores(xa)
                m = sub.margin_from_scores(s)
            ok = sub.success_from_scores(s.detach())
            md, xd = m.detach(), xa.detach()
            queries.index_add_(0, act, torch.ones_like(act))
            better = ok | (md > best_m[act])
            n_ok, n_better = torch.stack([ok.sum(), better.sum()]).tolist()  # the one host sync per step
            if n_better == act.numel():  # every sample improved: a plain row copy, no mask gather
                best_x.index_copy_(0, act, xd)
                best_m.index_copy_(0, act, md)
            elif n_better:
                idx = act[better]
                best_x[idx] = xd[better]
                best_m[idx] = md[better]
            if n_ok:
                done[act[ok]] = True
            if last or n_ok == act.numel():
                break
            grad = torch.autograd.grad(m.sum(), xa)[0]
            if mask is not None:
                grad = grad * mask
            if n_ok:  # re-pack the batch around the samples still unbroken
                keep = (~ok).nonzero().squeeze(1)
                act, x0, e, delta, grad = act[keep], x0[keep], e[keep], delta[keep], grad[keep]
                sub = task.subset(act)
                if g_acc is not None:
                    g_acc = g_acc[keep]
            if g_acc is not None:
                g_acc = momentum * g_acc + grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
                grad = g_acc
            delta = project(delta + sizes[t] * e * steepest_step(grad, norm), x0, norm, e)
    return AttackOutput(best_x, done, queries)
