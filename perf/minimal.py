"""Minimal-norm cases: FMN against the `min-eps` bisection, both as the `full` suite runs them (time and norms)."""
from __future__ import annotations

import statistics

import torch

from attacks import make_attack
from bench.suites import load_suite
from perf.cases import CASES, GOAL, MODEL, CaseResult, Settings, contender_rows, paired, register_case
from perf.timing import Contender, interleaved
from perf.workloads import workload

QUICK = {"fmn": {"steps": 10}, "min-eps": {"attack": "pgd", "attack_steps": 5, "search_steps": 3}}  # --quick


def full_suite_entry(attack: str, norm: str):
    """The `full` suite's entry of `attack` in `norm` (its parameters and its ceiling)."""
    return next(e for e in load_suite("full").entries if getattr(e, "attack", None) == attack and e.norm == norm)


@register_case("fmn-vs-bisection", "the minimal Linf perturbation per sample by FMN vs by the min-eps bisection of "
               "PGD, both with the full suite's parameters and ceiling: time and the norms found")
def fmn_vs_bisection(settings: Settings) -> CaseResult:
    w = workload(MODEL, GOAL, settings.batch, settings.device, settings.profile, settings.seed)
    quick = settings.steps < 10  # --quick: a smoke run with a few steps
    out: dict[str, object] = {}
    attacks = {}
    for name in ("fmn", "min-eps"):
        entry = full_suite_entry(name, "linf")
        attacks[name] = (make_attack(name, QUICK[name] if quick else entry.params), entry.eps[0])

    def runner(name: str):
        attack, ceiling = attacks[name]

        def run():
            out[name] = attack.run(w.view, w.x, "linf", ceiling,
                                   torch.Generator(device=w.x.device).manual_seed(settings.seed))
        return run

    cs = [Contender("fmn", runner("fmn"), w.batch, "native", "facebench", f"fmn {attacks['fmn'][0].params()}"),
          Contender("min-eps bisection", runner("min-eps"), w.batch, "native", "facebench",
                    f"min-eps {attacks['min-eps'][0].params()}")]
    timings = interleaved(cs, settings.repeats, settings.device, settings.warmup)
    rows = contender_rows(cs, timings, None)
    f, b = out["fmn"], out["min-eps"]
    both = f.success & b.success
    ratio = (f.min_eps[both] / b.min_eps[both]).tolist()
    summary = {
        "fmn_over_bisection_time": round(timings["fmn"].median / timings["min-eps bisection"].median, 4),
        "paired_fmn_over_bisection_time": round(paired(timings["fmn"], timings["min-eps bisection"]), 4),
        "median_min_eps_255": {"fmn": round(float(f.min_eps.median()) * 255, 4),
                               "bisection": round(float(b.min_eps.median()) * 255, 4)},
        "broken": {"fmn": int(f.success.sum()), "bisection": int(b.success.sum())},
        "both_broken": int(both.sum()),
        "fmn_at_or_below": sum(r <= 1 for r in ratio),
        "min_eps_ratio": {"median": round(statistics.median(ratio), 4), "max": round(max(ratio), 4)} if ratio else {},
        "fmn_successes_adversarial_when_rechecked": bool(w.task.success(f.x_adv)[f.success].all()),
        "median_queries": {"fmn": int(f.queries.median()), "bisection": int(b.queries.median())},
    }
    notes = ["min_eps_ratio is FMN's minimal norm over the bisection's, per sample both broke (< 1: FMN found a "
             "smaller perturbation); the bisection's values are upper bounds at its resolution, ceiling / 2**search_steps",
             "both attack the task as the runner's attacks see it (BatchNorm folded); FMN's successes are re-checked "
             "with the model as loaded"]
    attack = {name: {"attack": name, "params": a.params(), "norm": "linf", "ceiling_255": round(c * 255, 4)}
              for name, (a, c) in attacks.items()}
    return CaseResult("fmn-vs-bisection", CASES["fmn-vs-bisection"].description, w.describe(), attack, rows, summary,
                      notes)
