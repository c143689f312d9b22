"""Square attack: score-based black-box random search (Andriushchenko et al., ECCV 2020).

Written from the paper's description. The attack only reads the task's margin (scores), never a
gradient. Each iteration proposes, for every sample still unbroken, a change confined to one random
square window of side s = round(sqrt(p H W)) and keeps it only if the margin improves (random
search). The fraction p starts at `p_init` and is halved at the paper's checkpoints
{10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000} of a 10 000-query run, rescaled to the budget.

Linf: initialised with vertical stripes of width one, each column and colour channel at +-eps;
an update adds +-2 eps (one sign per colour channel) on the window and projects back onto the
ball and [0, 1], so the window becomes x +- eps per channel.

L2: initialised with a grid of squares, each the centred shape eta (a pyramid of nested rings,
sum_k 1 / (n + 1 - k)^2) with a random sign per channel, rescaled to norm eps. An update picks two
windows W1 and W2; per channel it moves the mass of W2 into W1, adds +-eta* (eta made of two halves
of opposite sign, or its transpose, unit norm) to W1's normalised content and rescales W1 to the
norm available (W1 u W2's norm plus an even share of the budget still unused), so the perturbation
stays on the sphere of radius eps (before the [0, 1] clip).

Batched over every sample still unbroken: samples leave the batch once broken; `queries` counts
one per forward of a sample's candidate (the initial point too) and never exceeds `max_queries`.
`restarts` splits the budget: each restart starts afresh on the samples every earlier one failed
on, with its share of the queries (and its own p schedule); the best point of any restart is kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from attacks.base import Attack, AttackOutput, Budget, eps_view, flat_norm, project
from attacks.registry import register_attack
from bench.errors import BadInputError
from bench.progress import report_steps
from bench.tasks.base import Task

P_CHECKPOINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # of a 10 000-query run (the paper)
RETRIES = 3  # Linf: re-draws of a proposal that would not change the sample's point (no model call)


def p_at(p_init: float, it: int, budget: int) -> float:
    """The square-size fraction at iteration `it` of a run of `budget` queries (the paper's schedule, rescaled)."""
    i = int(it / budget * 10000)
    return p_init / 2 ** sum(i > c for c in P_CHECKPOINTS)


def side_at(p: float, h: int, w: int, minimum: int = 1) -> int:
    """The window side for fraction p of the h x w pixels."""
    return max(min(int(round(math.sqrt(p * h * w))), h, w), min(minimum, h, w))


def _corners(n: int, s: int, h: int, w: int, device, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 1, 1) top rows and left columns of one random s x s window per sample (the draws of a window)."""
    r = torch.randint(0, h - s + 1, (n, 1, 1, 1), generator=generator, device=device)
    c = torch.randint(0, w - s + 1, (n, 1, 1, 1), generator=generator, device=device)
    return r, c


def _windows(n: int, s: int, h: int, w: int, device, generator) -> torch.Tensor:
    """(n, 1, h, w) boolean masks of one random s x s window per sample."""
    r, c = _corners(n, s, h, w, device, generator)
    rows = torch.arange(h, device=device).view(1, 1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, 1, w)
    return (rows >= r) & (rows < r + s) & (cols >= c) & (cols < c + s)


def _signs(shape, device, dtype, generator) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=generator, device=device).to(dtype) * 2 - 1


def pyramid(h1: int, h2: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The paper's centred shape eta^(h1, h2): sum_{k=0}^{M(r, s)} 1 / (n + 1 - k)^2, n = floor(h1 / 2),
    M(r, s) = n - max(|r - floor(h1 / 2)|, |s - floor(h2 / 2)|) (0-based r, s); 0 where M < 0."""
    n = h1 // 2
    terms = 1.0 / (n + 1 - torch.arange(n + 1, device=device, dtype=dtype)) ** 2
    cum = terms.cumsum(0)  # cum[m] = sum_{k=0}^{m}
    r = (torch.arange(h1, device=device) - h1 // 2).abs().view(-1, 1)
    s = (torch.arange(h2, device=device) - h2 // 2).abs().view(1, -1)
    m = n - torch.maximum(r, s)
    return torch.where(m >= 0, cum[m.clamp(0, n)], torch.zeros((), device=device, dtype=dtype))


def update_shape(h: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The L2 update eta*: (eta^(h, k), -eta^(h, h - k)) side by side, k = floor(h / 2), unit L2 norm."""
    k = h // 2
    eta = torch.cat([pyramid(h, k, device, dtype), -pyramid(h, h - k, device, dtype)], dim=1)
    return eta / eta.norm().clamp_min(1e-12)


def _place(shape: torch.Tensor, n: int, h: int, w: int, transpose: torch.Tensor, device, generator):
    """Put an s x s `shape` at one random position per sample (transposed where `transpose`).

    Returns the (n, 1, h, w) window mask and the (n, 1, h, w) image that holds the shape inside it.
    """
    s = shape.shape[0]
    r, c = _corners(n, s, h, w, device, generator)
    rows = torch.arange(h, device=device).view(1, 1, h, 1) - r
    cols = torch.arange(w, device=device).view(1, 1, 1, w) - c
    inside = (rows >= 0) & (rows < s) & (cols >= 0) & (cols < s)
    rr, cc = rows.clamp(0, s - 1), cols.clamp(0, s - 1)
    t = transpose.view(n, 1, 1, 1)
    idx = torch.where(t, cc * s + rr, rr * s + cc)
    img = shape.flatten()[idx] * inside
    return inside, img


def _linf_proposal(x0: torch.Tensor, delta: torch.Tensor, eps: torch.Tensor, s: int, generator) -> torch.Tensor:
    """The Linf window update of `delta` (window side s): +-2 eps per channel on one random window, projected; a
    sample whose proposal would not change its point draws again, up to `RETRIES` times (no model call).

    Every draw is made whether or not a sample needs it (the generator's stream, and so the attack's result, does
    not depend on it), but once no sample is left whose proposal is unchanged, the rest are only drawn, not built."""
    k, ch, h, w = delta.shape
    dev, dt = delta.device, delta.dtype
    cur = x0 + delta
    cand, unchanged = None, None
    for r in range(RETRIES + 1):
        if unchanged is not None and not bool(unchanged.any()):  # the redraw's draws, unused
            _corners(k, s, h, w, dev, generator)
            _signs((k, ch, 1, 1), dev, dt, generator)
            continue
        win = _windows(k, s, h, w, dev, generator)
        step = win * _signs((k, ch, 1, 1), dev, dt, generator) * (2 * eps)
        prop = project(delta + step, x0, "linf", eps)
        cand = prop if cand is None else torch.where(unchanged, prop, cand)  # the first proposal that changes the point
        if r < RETRIES:
            unchanged = ((x0 + cand) == cur).flatten(1).all(1).view(-1, 1, 1, 1)
    return cand


def _l2_init(x: torch.Tensor, eps: torch.Tensor, generator) -> torch.Tensor:
    """A grid of pyramid-shaped squares (side ~ min(H, W) / 5) with random signs per channel, norm eps."""
    n, ch, h, w = x.shape
    b = max(min(h, w) // 5, 1)
    tile = pyramid(b, b, x.device, x.dtype)
    gh, gw = -(-h // b), -(-w // b)
    signs = _signs((n, ch, gh, gw), x.device, x.dtype, generator)
    grid = signs.repeat_interleave(b, 2).repeat_interleave(b, 3) * tile.repeat(gh, gw)
    delta = grid[:, :, :h, :w]
    return delta / flat_norm(delta) * eps


def _channel_norm(v: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1) L2 norm of each channel over the image."""
    return v.pow(2).sum((2, 3), keepdim=True).sqrt()


def _l2_proposal(nu: torch.Tensor, eps: torch.Tensor, s: int, generator) -> torch.Tensor:
    """The paper's L2 window update of the current perturbation `nu` (norm <= eps) with window side s."""
    n, ch, h, w = nu.shape
    dev, dt = nu.device, nu.dtype
    shape = update_shape(s, dev, dt)
    transpose = torch.randint(0, 2, (n,), generator=generator, device=dev).bool()
    w1, eta = _place(shape, n, h, w, transpose, dev, generator)
    w2 = _windows(n, s, h, w, dev, generator)
    unused = (eps.pow(2) - nu.flatten(1).pow(2).sum(1).view(-1, 1, 1, 1)).clamp_min(0)  # (N, 1, 1, 1)
    in1 = nu * w1
    avail = (_channel_norm(nu * (w1 | w2)).pow(2) + unused / ch).sqrt()  # (N, C, 1, 1)
    rho = _signs((n, ch, 1, 1), dev, dt, generator)
    tmp = rho * eta + in1 / _channel_norm(in1).clamp_min(1e-12)
    tmp = tmp / _channel_norm(tmp).clamp_min(1e-12) * avail
    out = torch.where(w2, torch.zeros_like(nu), nu)
    return torch.where(w1, tmp, out)


# About 90 lines with its signature, on purpose: the query loop reads as Algorithm 1 of Andriushchenko et al. (2020)
# in one piece; splitting it would scatter the per-sample state it slices as samples stop.
def square_attack(
    task: Task,
    x: torch.Tensor,
    norm: str,
    eps: Budget,
    *,
    max_queries: int = 5000,
    p_init: float = 0.8,
    restarts: int = 1,
    generator: Optional[torch.Generator] = None,
) -> AttackOutput:
    """Square attack on `task`'s margin; batched, per-sample early stop, best-so-far, hard query budget."""
    if x.dim() != 4:
        raise BadInputError(f"square: images must be (N, C, H, W), got shape {tuple(x.shape)}")
    x = x.detach()
    n, ch, h, w = x.shape
    dev, dt = x.device, x.dtype
    eps_all = eps_view(eps, x)
    best_x = x.clone()
    best_m = torch.full((n,), -torch.inf, device=dev)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    queries = torch.zeros(n, dtype=torch.long, device=dev)
    budgets = [max_queries // restarts + (1 if r < max_queries % restarts else 0) for r in range(restarts)]

    def evaluate(sub: Task, xa: torch.Tensor):
        with torch.no_grad():
            s = sub.scores(xa)
            return sub.margin_from_scores(s).detach(), sub.success_from_scores(s)

    spent = 0  # queries of the earlier restarts' budgets
    for budget in budgets:
        act = (~done).nonzero().squeeze(1)
        if act.numel() == 0 or budget < 1:
            break
        x0, e = x[act], eps_all[act]
        sub = task.subset(act)
        if norm == "linf":
            stripes = _signs((act.numel(), ch, 1, w), dev, dt, generator) * e
            delta = project(stripes.expand(-1, -1, h, -1), x0, norm, e)
        else:
            delta = project(_l2_init(x0, e, generator), x0, norm, e)
        m_cur, ok = evaluate(sub, x0 + delta)
        queries.index_add_(0, act, torch.ones_like(act))
        for it in range(1, budget + 1):
            report_steps(spent + it, max_queries, "queries")
            # the one host sync per iteration: who broke, and is anyone left
            n_ok = int(ok.sum())
            if n_ok:
                idx = act[ok]
                best_x[idx] = (x0 + delta)[ok]
                best_m[idx] = m_cur[ok]
                done[idx] = True
                if n_ok == act.numel():
                    act = act[:0]
                    break
                keep = ~ok
                act, x0, e, delta, m_cur = act[keep], x0[keep], e[keep], delta[keep], m_cur[keep]
                sub = task.subset(act)
            if it == budget:
                break
            p = p_at(p_init, it, budget)
            if norm == "linf":
                cand = _linf_proposal(x0, delta, e, side_at(p, h, w), generator)
            else:
                s = side_at(p, h, w, minimum=2)
                cand = project(_l2_proposal(delta, e, s, generator), x0, norm, e)
            m_new, ok_new = evaluate(sub, x0 + cand)
            queries.index_add_(0, act, torch.ones_like(act))
            accept = ok_new | (m_new > m_cur)
            delta = torch.where(accept.view(-1, 1, 1, 1), cand, delta)
            m_cur = torch.where(accept, m_new, m_cur)
            ok = ok_new
        spent += budget
        if act.numel():  # the restart's best point of each sample it did not break
            better = m_cur > best_m[act]
            idx = act[better]
            best_x[idx] = (x0 + delta)[better]
            best_m[idx] = m_cur[better]
    return AttackOutput(best_x, done, queries)


@register_attack
@dataclass
class Square(Attack):
    name = "square"
    backend = "native"
    norms = ("linf", "l2")
    black_box = True
    description = ("Square attack: score-based random search over square windows (black-box, margin only); "
                   "batched, per-sample early stop and query budget")

    max_queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1

    def validate(self) -> None:
        if self.max_queries < 1:
            raise BadInputError(f"square: max_queries must be >= 1, got {self.max_queries}")
        if not 0 < self.p_init <= 1:
            raise BadInputError(f"square: p_init must be in (0, 1], got {self.p_init}")
        if self.restarts < 1:
            raise BadInputError(f"square: restarts must be >= 1, got {self.restarts}")
        if self.restarts > self.max_queries:
            raise BadInputError(f"square: restarts ({self.restarts}) share max_queries ({self.max_queries}); "
                                f"at most one restart per query")

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        values = eps.flatten().unique().tolist() if isinstance(eps, torch.Tensor) else [float(eps)]
        for v in values:  # refused before any query
            self.check(norm, float(v))
        return square_attack(task, x, norm, eps, max_queries=self.max_queries, p_init=self.p_init,
                             restarts=self.restarts, generator=generator)
