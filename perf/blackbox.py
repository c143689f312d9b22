"""The `square-queries` case: what a score-based attack's query costs, against the same attack as it was.

Square spends its queries one forward pass of the surviving samples at a time, without gradient, so its cost is the
network's forward pass plus the attack's own work between two queries. Two changes of 2026-12-06 cut both, each
leaving every result identical: the zoo's max pooling pools a batch that needs no gradient in channels_last
(`models_zoo.backbones.max_pool2d`), and the Linf proposal stops building the redraws no sample needs, drawing them
all the same (`attacks.native.square._linf_proposal`). The references are the attack before them, run in the same
rounds: PyTorch's `nn.MaxPool2d` put back in the network, and every redraw built (`every_redraw_built`).
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from perf.cases import CASES, CaseResult, Settings, contender_rows, paired, register_case
from perf.grid import square_budget
from perf.timing import Contender, interleaved
from perf.workloads import runner_view, workload

MODEL, GOAL = "facenet-baseline", "dodging"
EPS = 0.1 / 255  # no pair breaks there: every sample spends every query


def every_redraw_built(x0: torch.Tensor, delta: torch.Tensor, eps: torch.Tensor, s: int, generator) -> torch.Tensor:
    """The Linf proposal building every redraw (Square as it was before 2026-12-06): the reference, same draws."""
    from attacks.native import square as sq

    k, ch, h, w = delta.shape
    cur, cand = x0 + delta, None
    for _ in range(sq.RETRIES + 1):
        step = sq._windows(k, s, h, w, x0.device, generator) * sq._signs((k, ch, 1, 1), x0.device, x0.dtype,
                                                                        generator) * (2 * eps)
        prop = sq.project(delta + step, x0, "linf", eps)
        same = None if cand is None else ((x0 + cand) == cur).flatten(1).all(1).view(-1, 1, 1, 1)
        cand = prop if cand is None else torch.where(same, prop, cand)
    return cand


@contextlib.contextmanager
def _proposal(fn):
    from attacks.native import square as sq

    kept = sq._linf_proposal
    sq._linf_proposal = fn or kept
    try:
        yield
    finally:
        sq._linf_proposal = kept


def pytorch_pooling(model: nn.Module) -> nn.Module:
    """A copy of `model` with PyTorch's `nn.MaxPool2d` in place of the zoo's `MaxPool2d`."""
    from models_zoo.backbones import swap_max_pooling

    return swap_max_pooling(copy.deepcopy(model), nn.MaxPool2d)


@register_case("square-queries", "native Square (Linf, no pair breaks: every sample spends every query) as it is, "
               "against PyTorch's max pooling and every Linf redraw built (the attack before 2026-12-06), same draws; "
               "opt-in (minutes)", by_default=False)
def square_queries(settings: Settings) -> CaseResult:
    from attacks.native.square import square_attack

    w = workload(MODEL, GOAL, settings.batch, settings.device, settings.profile, settings.seed)
    queries = square_budget(settings)
    before_view, _ = runner_view(w.task, pytorch_pooling(w.task.model), w.x[:4], settings.device)
    variants = {"square (PyTorch pooling, every redraw built)": (before_view, every_redraw_built),
                "square (PyTorch pooling)": (before_view, None),
                "square": (w.view, None)}
    outputs: dict[str, object] = {}

    def run(name: str):
        view, proposal = variants[name]
        with _proposal(proposal):
            out = square_attack(view, w.x, "linf", EPS, max_queries=queries,
                                generator=torch.Generator(device=w.x.device).manual_seed(settings.seed))
        outputs[name] = out
        return out

    cs = [Contender(name, (lambda n=name: run(n)), w.batch, "native") for name in variants]
    timings = interleaved(cs, settings.repeats, settings.device, settings.warmup)
    rows = contender_rows(cs, timings, "square (PyTorch pooling, every redraw built)")
    before = outputs["square (PyTorch pooling, every redraw built)"]
    identical = all(torch.equal(getattr(before, f), getattr(out, f)) for out in outputs.values()
                    for f in ("x_adv", "success", "queries"))
    summary = {"time_ratio_to_before": {r["name"]: r["ratio_to_bare"] for r in rows},
               "paired_time_ratio_to_before": {n: round(paired(timings[n], timings[cs[0].name]), 4) for n in variants},
               "identical_results": identical, "queries": queries,
               "broken": int(outputs["square"].success.sum())}
    notes = ["ratios are to the attack as it was (PyTorch's pooling, every redraw built), not to a bare loop; "
             "identical_results: every contender's adversarial inputs, successes and query counts are the same"]
    return CaseResult("square-queries", CASES["square-queries"].description, w.describe(),
                      {"attack": "square", "norm": "linf", "eps_255": round(EPS * 255, 3), "max_queries": queries,
                       "seed": settings.seed}, rows, summary, notes)
