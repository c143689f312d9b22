"""The registry of benchmark cases. A case builds its contenders, times them interleaved and summarises.

Add a case with `@register_case("name", "what it measures")` on a function `(Settings) -> CaseResult`;
`python -m perf --case name` runs just that one. Issue 8's cascade cost, batched budgets and peak
memory are meant to arrive as further cases.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from perf import pgd
from perf.timing import Contender, Timing, interleaved
from perf.workloads import Workload, workload

MAX_RATIO_TO_BARE = 1.15  # issue 5: native PGD costs at most this much of the bare loop


@dataclass
class Settings:
    device: torch.device
    batch: int = 32
    steps: int = 10
    repeats: int = 5
    warmup: int = 1
    seed: int = 0
    libraries: tuple[str, ...] = pgd.LIBRARIES
    adapters: bool = True
    profile: str = "tiny"  # tiny: the shipped weights; paper: the paper profile's network, randomly initialised
    square_queries: Optional[int] = None  # cascade-cost, square-queries: Square's queries (None: perf.grid.SQUARE_QUERIES)


@dataclass
class CaseResult:
    name: str
    description: str
    workload: dict
    attack: dict
    contenders: list[dict]
    summary: dict
    notes: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    description: str
    run: Callable[[Settings], CaseResult]
    by_default: bool = True  # False: long cases that run only when named with --case


CASES: dict[str, Case] = {}


def register_case(name: str, description: str, by_default: bool = True):
    def deco(fn: Callable[[Settings], CaseResult]) -> Callable[[Settings], CaseResult]:
        if name in CASES:
            raise ValueError(f"benchmark case {name!r} registered twice")
        CASES[name] = Case(name, description, fn, by_default)
        return fn
    return deco


def paired(a: Timing, b: Timing) -> float:
    """Median over rounds of a's time / b's time in the same round (robust to load that drifts between rounds)."""
    return statistics.median(x / y for x, y in zip(a.seconds, b.seconds))


def contender_rows(contenders: list[Contender], timings: dict[str, Timing], baseline: Optional[str]) -> list[dict]:
    """One row per contender; `ratio_to_bare` and its paired form are against `baseline` (None: no ratios)."""
    base = timings[baseline].median if baseline else None
    return [{
        "name": c.name, "kind": c.kind, "library": c.library, "note": c.note, "samples": c.samples,
        "seconds": [round(s, 6) for s in timings[c.name].seconds], "median_s": round(timings[c.name].median, 6),
        "samples_per_s": round(c.samples / timings[c.name].median, 3),
        "ratio_to_bare": round(timings[c.name].median / base, 4) if baseline else None,
        "paired_ratio_to_bare": round(paired(timings[c.name], timings[baseline]), 4) if baseline else None,
    } for c in contenders]


def native_summary(rows: list[dict], timings: dict[str, Timing], native: str = "native pgd") -> dict:
    """Native's cost relative to the bare loop and to each library (time ratios: < 1 means native is faster).

    `ratio_to_bare` and `time_ratio_vs` are ratios of medians; the `paired_` ones are medians of the
    per-round ratios.
    """
    by = {r["name"]: r for r in rows}
    t = by[native]["median_s"]
    vs: dict[str, dict[str, float]] = {}
    vs_paired: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["kind"] in ("library", "adapter"):
            how = "direct" if r["kind"] == "library" else "adapter"
            vs.setdefault(r["library"], {})[how] = round(t / r["median_s"], 4)
            vs_paired.setdefault(r["library"], {})[how] = round(paired(timings[native], timings[r["name"]]), 4)
    out = {"ratio_to_bare": by[native]["ratio_to_bare"], "paired_ratio_to_bare": by[native]["paired_ratio_to_bare"],
           "time_ratio_vs": vs, "paired_time_ratio_vs": vs_paired,
           "faster_than_every_library": all(v < 1 for lib in vs.values() for v in lib.values())}
    if pgd.BARE_FOLDED in by:  # the engine's own overhead: native over the bare loop on the same (folded) forward
        out["engine_overhead"] = round(t / by[pgd.BARE_FOLDED]["median_s"], 4)
        out["paired_engine_overhead"] = round(paired(timings[native], timings[pgd.BARE_FOLDED]), 4)
    if pgd.NATIVE_LOADED in by:  # what the engine alone does against each library on the same forward
        t0 = by[pgd.NATIVE_LOADED]["median_s"]
        out["unfolded_time_ratio_vs"] = {r["library"]: round(t0 / r["median_s"], 4) for r in rows if r["kind"] == "library"}
    if pgd.TA_FOLDED in by:
        out["time_ratio_vs_torchattacks_folded"] = round(t / by[pgd.TA_FOLDED]["median_s"], 4)
    return out


def stopped_early(w: Workload, eps: float, settings: Settings) -> tuple[int, int]:
    """(samples native pgd broke, samples it stopped before the last step) on this workload, same seed as timed."""
    out = pgd.native(w, eps, settings.steps, STEP_SIZE, settings.seed)()
    return int(out.success.sum()), int((out.queries < settings.steps + 1).sum())


STEP_SIZE = 0.25  # relative to eps, the registry's default for pgd and the library adapters
MODEL, GOAL = "facenet-baseline", "dodging"


def pgd_case(name: str, description: str, settings: Settings, w: Workload, eps: float, notes: list[str],
             check_target: bool) -> CaseResult:
    broken, early = stopped_early(w, eps, settings)
    cs = pgd.contenders(w, eps, settings.steps, STEP_SIZE, settings.libraries, settings.adapters)
    timings = interleaved(cs, settings.repeats, settings.device, settings.warmup)
    rows = contender_rows(cs, timings, "bare torch loop")
    summary = native_summary(rows, timings)
    summary.update({"native_broken": broken, "native_stopped_early": early})
    if check_target:  # both against the loop on the model as loaded and (the engine's own overhead) on the same forward
        summary["max_ratio_to_bare"] = MAX_RATIO_TO_BARE
        summary["within_max_ratio"] = max(summary["ratio_to_bare"], summary.get("engine_overhead", 0)) <= MAX_RATIO_TO_BARE
    attack = {"attack": "pgd", "norm": "linf", "eps": eps, "eps_255": round(eps * 255, 4), "steps": settings.steps,
              "step_size": STEP_SIZE, "random_start": True, "seed": settings.seed}
    return CaseResult(name, description, w.describe(), attack, rows, summary, notes)


@register_case("pgd-full-steps", "native PGD vs the bare loop and the libraries at a budget where no sample breaks "
               "(every sample runs every step: the ratio is the engine's overhead)")
def pgd_full_steps(settings: Settings) -> CaseResult:
    eps = 0.1 / 255
    w = workload(MODEL, GOAL, settings.batch, settings.device, settings.profile, settings.seed)
    notes = []
    # keep the samples native pgd does not break at this budget; the random start depends on the batch, so re-check
    for _ in range(3):
        out = pgd.native(w, eps, settings.steps, STEP_SIZE, settings.seed)()
        if not bool(out.success.any()):
            break
        keep = (~out.success).nonzero().squeeze(1)
        if keep.numel() == 0:
            notes.append("every sample broke at this budget; timed on the full batch instead")
            break
        w = w.subset(keep)
    return pgd_case("pgd-full-steps", CASES["pgd-full-steps"].description, settings, w, eps, notes, check_target=True)


@register_case("pgd-early-stop", "native PGD (samples leave the batch once broken) vs the bare loop and the "
               "libraries at Linf 4/255, a budget of the standard suite")
def pgd_early_stop(settings: Settings) -> CaseResult:
    w = workload(MODEL, GOAL, settings.batch, settings.device, settings.profile, settings.seed)
    return pgd_case("pgd-early-stop", CASES["pgd-early-stop"].description, settings, w, 4 / 255, [], check_target=False)


def run_cases(names: Optional[list[str]], settings: Settings, log: Callable[[str], None] = print) -> list[CaseResult]:
    results = []
    for name in names or [n for n, c in CASES.items() if c.by_default]:
        log(f"perf: {name} ...")
        results.append(CASES[name].run(settings))
    return results
