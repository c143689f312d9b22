"""Integrity checks that make a robustness number trustworthy; a failed check marks cells `unreliable`.

Three kinds, run with every suite:
- per goal, on the clean batch before any attack: the model is in eval mode, the forward pass is
  deterministic (if not, EOT over the randomness is applied to the gradient), the input gradient of
  the margin is finite and non-zero, and PGD at a large budget breaks (almost) every sample;
- per run: the clean dev metrics reproduce the model card;
- across the cells of a run: success grows with eps (iterative attacks), iterative >= single-step, more steps or restarts
  never lower success, and black-box attacks do not beat white-box ones at the same budget.
Cross-cell comparisons allow a slack of one sample in a hundred (at least one sample).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from bench.tasks.base import Task, TaskView
from models_zoo.checkpoint import training_modules

EOT_SAMPLES = 8  # draws of the model's randomness averaged when the forward pass is not deterministic
DETERMINISM_TOLERANCE = 1e-5
CARD_THRESHOLD_TOLERANCE = 1e-3
CARD_METRIC_TOLERANCE = 0.01  # absolute, on the dev metric (TAR for FR, ACER for FAS)
CARD_METRIC = {"fr": "dev_tar", "fas": "dev_acer"}
LARGE_EPS = 128 / 255  # Linf budget at which PGD must break nearly every sample
LARGE_EPS_STEPS = 200  # per start; the step decays geometrically over them (check_large_eps)
LARGE_EPS_FIRST_STEP = 16 / 255  # absolute: the largest step of the suites' attacks (APGD's 2 eps at 8/255)
LARGE_EPS_LAST_STEP = 1 / 32 / 255  # absolute: standard's APGD-100 at 4/255 after its 8 halvings (8/255 / 256)
LARGE_EPS_RANDOM_STARTS = 2  # after the start at the clean point, on the samples it left unbroken
LARGE_EPS_SAMPLES = 32
LARGE_EPS_MIN_SUCCESS = 0.95


@dataclass
class CheckResult:
    """One check's verdict; `detail` says why it failed (or what was done about it)."""

    name: str
    passed: bool
    detail: str = ""


class EOTTask(TaskView):
    """Expectation over transformation: a task whose scores are averaged over `k` forward passes.

    Every task's margin is a (piecewise) linear function of its scores, so the gradient of the
    averaged scores is the average of the `k` gradients over the model's randomness. Success,
    thresholds, subsets and starting points delegate to the wrapped task.
    """

    def __init__(self, task: Task, k: int) -> None:
        if k < 1:
            raise ValueError(f"EOT needs at least one sample, got {k}")
        super().__init__(task)
        self.k = int(k)

    def rewrap(self, task: Task) -> "EOTTask":
        return EOTTask(task, self.k)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.task.scores(x) for _ in range(self.k)]).mean(dim=0)


# ---------------------------------------------------------------------------- per goal, before attacking


def check_eval_mode(model: nn.Module) -> CheckResult:
    """Dropout, batch norm and the like must be in eval mode while a model is attacked."""
    training = training_modules(model)
    if training:
        shown = ", ".join(training[:3]) + (f" and {len(training) - 3} more" if len(training) > 3 else "")
        return CheckResult("eval_mode", False, f"model in train mode while attacked ({shown})")
    return CheckResult("eval_mode", True)


@torch.no_grad()
def check_determinism(task: Task, x: torch.Tensor) -> CheckResult:
    """Two forward passes on the same batch must agree; if not, attacks need EOT."""
    a, b = task.scores(x), task.scores(x)
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    if not math.isfinite(diff) or diff > DETERMINISM_TOLERANCE * max(1.0, float(a.abs().max()) if a.numel() else 1.0):
        return CheckResult("deterministic", False, f"forward pass not deterministic (two passes differ by up to {diff:.3g})")
    return CheckResult("deterministic", True)


def check_gradients(task: Task, x: torch.Tensor) -> CheckResult:
    """The input gradient of the attacker's margin must be finite and non-zero for every sample."""
    if x.shape[0] == 0:
        return CheckResult("gradients", True, "no sample to attack")
    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        m = task.margin(xg)
        if not m.requires_grad:
            return CheckResult("gradients", False, "the margin does not depend differentiably on the input")
        (g,) = torch.autograd.grad(m.sum(), xg, allow_unused=True)
    if g is None:
        return CheckResult("gradients", False, "the margin has no gradient with respect to the input")
    g = g.flatten(1)
    finite = torch.isfinite(g).all(dim=1)
    if not bool(finite.all()):
        return CheckResult("gradients", False, f"non-finite input gradient on {int((~finite).sum())} of {len(g)} samples")
    zero = (g == 0).all(dim=1)
    if bool(zero.any()):
        return CheckResult("gradients", False, f"zero input gradient on {int(zero.sum())} of {len(g)} samples")
    return CheckResult("gradients", True)


def check_large_eps(task: Task, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> CheckResult:
    """PGD at a budget large enough to reach any decision must break nearly every sample (else: masking).

    A false `unreliable` is as damaging as a missed one, so the attack here must be at least as strong as the
    suites' own. The former one, 40 steps of a fixed 6.4/255 from a random start, oscillated over a curved margin:
    on the example ResNet of docs/adding-a-model.md trained for 10 steps it broke 1 of 8 impostor pairs, and this
    one breaks all 8 (tests/test_checks.py). Each start is a long PGD whose step decays geometrically from
    LARGE_EPS_FIRST_STEP to LARGE_EPS_LAST_STEP: it takes every step size the suites' PGD and APGD take at any of
    their budgets, coarse to fine, in a ball that contains theirs. The first start is the clean point (the centre of
    the suites' small balls), then up to LARGE_EPS_RANDOM_STARTS random starts run on the samples still unbroken,
    unless the check has already passed. Native APGD at this budget would be weaker: its step starts at 2 eps (the
    whole box) and only halves at its checkpoints, so in 100 steps it never gets below 2 eps / 256 = 1/255,
    coarser than where `standard`'s APGD-100 at 4/255 ends (1/32 /255). A sample leaves a start as soon as it is
    broken, so a model without masking pays a few dozen steps per sample (docs/concepts.md has the timings); the
    full 3 x LARGE_EPS_STEPS only go to samples that resist every start.
    """
    from attacks.native.engine import gradient_attack

    x = x[:LARGE_EPS_SAMPLES]
    n = x.shape[0]
    if n == 0:
        return CheckResult("large_eps", True, "no sample to attack")
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    for start in range(1 + LARGE_EPS_RANDOM_STARTS):
        todo = (~done).nonzero().squeeze(1)
        if float(done.float().mean()) >= LARGE_EPS_MIN_SUCCESS:  # decided: the check passes whatever the rest do
            break
        out = gradient_attack(task.subset(todo), x[todo], "linf", LARGE_EPS, steps=LARGE_EPS_STEPS,
                              step_size=LARGE_EPS_FIRST_STEP / LARGE_EPS, final_step_size=LARGE_EPS_LAST_STEP / LARGE_EPS,
                              random_init=start > 0, generator=generator)
        done[todo[out.success]] = True
    rate = float(done.float().mean())
    if rate < LARGE_EPS_MIN_SUCCESS:
        return CheckResult("large_eps", False, f"PGD-{LARGE_EPS_STEPS} (step {LARGE_EPS_FIRST_STEP * 255:g}/255 decaying to "
                           f"{LARGE_EPS_LAST_STEP * 255:g}/255; clean start + {LARGE_EPS_RANDOM_STARTS} random) at Linf "
                           f"{round(LARGE_EPS * 255)}/255 breaks only {rate:.0%} of {n} samples "
                           f"(< {LARGE_EPS_MIN_SUCCESS:.0%}): gradient masking suspected")
    return CheckResult("large_eps", True)


# ---------------------------------------------------------------------------- per run


def check_card(card: dict, dev: dict, task: str) -> Optional[CheckResult]:
    """The dev threshold and dev metric re-measured on load must match the model card (None: no card)."""
    card_dev = card.get("dev") or {}
    metric = CARD_METRIC[task]
    if "threshold" not in card_dev:
        return None
    problems = []
    if abs(float(card_dev["threshold"]) - float(dev["threshold"])) > CARD_THRESHOLD_TOLERANCE:
        problems.append(f"threshold {float(dev['threshold']):.4f} vs card {float(card_dev['threshold']):.4f}")
    if metric in card_dev and metric in dev and abs(float(card_dev[metric]) - float(dev[metric])) > CARD_METRIC_TOLERANCE:
        problems.append(f"{metric} {float(dev[metric]):.3f} vs card {float(card_dev[metric]):.3f}")
    if problems:
        return CheckResult("card", False, "clean dev metrics do not reproduce the model card: " + ", ".join(problems))
    return CheckResult("card", True)


# ---------------------------------------------------------------------------- across cells


def _broken(summary: dict) -> int:
    """Samples broken in a cell (clean-wrong included): n minus the robust ones."""
    return int(summary["n"]) - int(round(float(summary["robust_accuracy"]) * int(summary["n"])))


def _slack(n: int) -> int:
    return max(1, math.ceil(n / 100))


def _is_black_box(cell: dict) -> bool:
    """Whether a cell's attack uses no gradient of the model (its cell kind or its attack declares it)."""
    from bench.cells import kind_of

    return kind_of(cell).capability(cell, "black_box")


def _steps(cell: dict) -> int:
    """Gradient steps of a cell's attack, as its cell kind counts them (1: single-step)."""
    from bench.cells import kind_of

    return kind_of(cell).steps(cell)


def cross_cell_checks(cells: list[dict]) -> dict[str, list[str]]:
    """Reasons per cell id for the comparisons between cells of one run that fail.

    `cells` are dicts with the cell's config (goal, attack, params, norm, eps), its summary (n,
    robust_accuracy) and `cell_id`. All cells of one goal are on the same samples.
    """
    reasons: dict[str, list[str]] = {}

    def flag(c: dict, why: str) -> None:
        reasons.setdefault(c["cell_id"], []).append(why)

    def eps_label(c: dict) -> str:
        from bench.config import format_eps

        return f"{c['norm']} {format_eps(c['norm'], c['eps'])}"

    def key(c: dict, drop: tuple[str, ...] = ()) -> str:
        return json.dumps({k: v for k, v in c["params"].items() if k not in drop}, sort_keys=True)

    # success grows with eps, per attack configuration that searches the ball: a single-step attack
    # evaluates one point per budget, and a full-size step can overshoot on a curved model (the smaller
    # budget's point lies inside the larger ball, unvisited), so only iterative attacks are held to it
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        if _steps(c) != 1:
            groups.setdefault((c["goal"], c["attack"], key(c), c["norm"]), []).append(c)
    for group in groups.values():
        best = None
        for c in sorted(group, key=lambda c: c["eps"]):
            b = _broken(c)
            if best is not None and b < _broken(best) - _slack(int(c["n"])):
                flag(c, f"success falls with eps: {b} broken at {eps_label(c)} < {_broken(best)} at {eps_label(best)}")
            if best is None or b > _broken(best):
                best = c
    by_budget: dict[tuple, list[dict]] = {}
    for c in cells:
        by_budget.setdefault((c["goal"], c["norm"], round(float(c["eps"]), 9)), []).append(c)
    for group in by_budget.values():
        white = [c for c in group if not _is_black_box(c)]
        # iterative >= single-step at the same budget
        single = [c for c in white if _steps(c) == 1]
        if single:
            top = max(single, key=_broken)
            for c in white:
                if _steps(c) > 1 and _broken(c) < _broken(top) - _slack(int(c["n"])):
                    flag(c, f"iterative {c['attack']} breaks {_broken(c)} < single-step {top['attack']}'s {_broken(top)}")
        # more steps or restarts never lower success (same attack, same other parameters)
        same: dict[tuple, list[dict]] = {}
        for c in white:
            same.setdefault((c["attack"], key(c, ("steps", "restarts"))), []).append(c)
        for variants in same.values():
            for c in variants:
                for d in variants:
                    cs, ds = (_steps(c), int(c["params"].get("restarts", 1))), (_steps(d), int(d["params"].get("restarts", 1)))
                    if cs >= ds and cs != ds and _broken(c) < _broken(d) - _slack(int(c["n"])):
                        flag(c, f"more steps/restarts {cs} break {_broken(c)} < {_broken(d)} with {ds}")
        # black-box does not beat white-box
        black = [c for c in group if _is_black_box(c)]
        if black and white:
            bb = max(black, key=_broken)
            wb = max(_broken(c) for c in white)
            if _broken(bb) > wb + _slack(int(bb["n"])):
                for c in white:
                    flag(c, f"black-box {bb['attack']} breaks {_broken(bb)} > best white-box {wb}: gradient masking suspected")
    return reasons
