"""`python -m perf`: run the benchmark cases, print a table, write perf/results.json."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from bench.goals import PROFILES

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"
SCHEMA = "facebench-perf/1"


def parse(argv: Optional[list[str]]) -> argparse.Namespace:
    from perf import blackbox, grid, minimal, parity, render  # noqa: F401  (each registers its cases)
    from perf.cases import CASES

    p = argparse.ArgumentParser(prog="python -m perf", description=__doc__)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--profile", choices=PROFILES, default=None,
                   help="the model's profile: tiny (shipped weights; the default on CPU) or paper (ResNet50 at 160 px, "
                        "randomly initialised for timing; the default with --device cuda)")
    p.add_argument("--square-queries", type=int, default=None,
                   help="cascade-cost, square-queries: Square's queries (default 500 to stay within minutes; the standard "
                        "suite's is 5000)")
    p.add_argument("--case", action="append", choices=sorted(CASES), help="run only this case (repeatable)")
    p.add_argument("--batch", type=int, default=32, help="samples per attack call (default 32)")
    p.add_argument("--steps", type=int, default=10, help="PGD steps (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per case; medians are reported (default 5)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    p.add_argument("--no-adapters", action="store_true", help="time the libraries directly only, not through our adapters")
    p.add_argument("--quick", action="store_true", help="a smoke run: batch 4, 2 steps, 1 round, no warm-up")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results file (default {DEFAULT_OUT})")
    return p.parse_args(argv)


def machine(device: torch.device) -> dict:
    out = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def table(results) -> str:
    from tabulate import tabulate

    rows = []
    for r in results:
        native_t = next((c["median_s"] for c in r.contenders if c["name"] == "native pgd"), None)
        for c in r.contenders:
            vs = f"{native_t / c['median_s']:.3f}" if native_t and c["kind"] in ("library", "adapter", "reference") else ""
            ratio = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
            extra = f"{c['peak_gib']:.2f} GiB peak" if "peak_gib" in c else ""
            rows.append([r.name, c["name"], f"{c['median_s']:.3f}", f"{c['samples_per_s']:.1f}", ratio(c["ratio_to_bare"]),
                         ratio(c["paired_ratio_to_bare"]), vs or extra])
    return tabulate(rows, headers=["case", "contender", "median s", "samples/s", "time / bare", "paired", "native time / this"])


def summary_line(r) -> str:
    s = r.summary
    if r.name == "cascade-cost":
        return (f"cascade-cost: cascade = {s['cascade_over_independent']:.3f} x its attacks run independently (target <= "
                f"{s['target']}: {'met' if s['within_target'] else 'NOT met'}); broken {s['broken_cascade']} vs "
                f"{s['broken_independent']} of {r.workload['batch']}, {s['samples_differing']} samples differ")
    if r.name == "budgets-together":
        return (f"budgets-together: one stacked batch = {s['together_over_apart']:.3f} x one pass per budget (paired "
                f"{s['paired_together_over_apart']:.3f}); {s['samples_differing']} sample decisions differ; broken per "
                f"budget {s['broken_per_budget']}")
    if r.name == "forward-options":
        return "forward-options: time / default forward: " + ", ".join(
            f"{k} {v:.3f}" for k, v in s["time_ratio_to_default"].items())
    if r.name == "square-queries":
        return (f"square-queries ({s['queries']} queries): time / the attack as it was: " + ", ".join(
            f"{k} {v:.3f} (paired {s['paired_time_ratio_to_before'][k]:.3f})" for k, v in s["time_ratio_to_before"].items())
            + f"; identical results: {'yes' if s['identical_results'] else 'NO'}")
    if r.name == "render-jobs":
        return (f"render-jobs ({s['faces']} faces, {s['chunks']} chunks): {s['processes']} processes = "
                f"{s['time_ratio_to_one_process']:.3f} x one process (paired {s['paired_time_ratio_to_one_process']:.3f}); "
                f"identical files: {'yes' if s['identical_files'] else 'NO'}")
    if r.name == "fmn-vs-bisection":
        m, q = s["median_min_eps_255"], s["min_eps_ratio"]
        return (f"fmn-vs-bisection: FMN time = {s['fmn_over_bisection_time']:.3f} x the bisection's (paired "
                f"{s['paired_fmn_over_bisection_time']:.3f}); median min Linf FMN {m['fmn']:.3f}/255 vs bisection "
                f"{m['bisection']:.3f}/255; FMN at or below on {s['fmn_at_or_below']} of {s['both_broken']} broken by "
                f"both (max ratio {q.get('max', float('nan')):.3f})")
    if r.name == "library-parity":
        return (f"library-parity: robust of {s['n']}: " + ", ".join(f"{k} {v}" for k, v in s["robust"].items())
                + f"; standard <= the strongest: {'yes' if s['standard_robust_at_most_strongest'] else 'NO'}; broken by a "
                f"reference but not by standard: {s['broken_by_a_reference_not_by_standard']} (allowed "
                f"{s['allowed_misses']}); by standard only: {s['broken_by_standard_not_by_any_reference']}")
    if r.name == "standard-cost":
        return "standard-cost: " + "; ".join(f"{m} {v['standard_s']:.0f} s vs {v['before_s']:.0f} s before issue 17 "
                                            f"({v['ratio']:.2f}x)" for m, v in s.items())
    if r.name == "peak-memory":
        peaks = ", ".join(f"{m} {g:.2f} GiB" for m, g in s["peak_gib"].items())
        return f"peak-memory: {peaks} (limit {s['limit_gib']} GiB: {'met' if s['within_limit'] else 'NOT met'})"
    vs = ", ".join(f"{lib} {'/'.join(f'{k} {v:.2f}' for k, v in d.items())}" for lib, d in s["time_ratio_vs"].items())
    line = f"{r.name}: native pgd = {s['ratio_to_bare']:.3f} x bare loop (paired {s['paired_ratio_to_bare']:.3f})"
    if "engine_overhead" in s:
        line += f", {s['engine_overhead']:.3f} x the bare loop on the same folded forward (paired {s['paired_engine_overhead']:.3f})"
    if "within_max_ratio" in s:
        line += f" (target <= {s['max_ratio_to_bare']}: {'met' if s['within_max_ratio'] else 'NOT met'})"
    return (f"{line}; native time / library time: {vs}; broken {s['native_broken']}, stopped early "
            f"{s['native_stopped_early']} of {r.workload['batch']}")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"perf: --device cuda asked for, but this torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("TQDM_DISABLE", "1")
    from perf.cases import Settings, run_cases

    device = torch.device(args.device)
    settings = Settings(device=device, batch=args.batch, steps=args.steps, repeats=args.repeats,
                        adapters=not args.no_adapters,
                        profile=args.profile or ("paper" if device.type == "cuda" else "tiny"),
                        square_queries=args.square_queries)
    if args.quick:
        settings.batch, settings.steps, settings.repeats, settings.warmup = 4, 2, 1, 0
    for name in ("batch", "steps", "repeats", "square_queries"):
        if getattr(settings, name) is not None and getattr(settings, name) < 1:
            print(f"perf: --{name.replace('_', '-')} must be at least 1, got {getattr(settings, name)}", file=sys.stderr)
            return 2
    from bench.runner import versions

    started = datetime.datetime.now(datetime.timezone.utc)
    results = run_cases(args.case, settings, log=lambda s: print(s, file=sys.stderr, flush=True))
    doc = {
        "schema": SCHEMA,
        "date": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1),
        "command": "python -m perf " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "machine": machine(device),
        "torch": torch.__version__,
        "versions": versions(),
        "settings": {"profile": settings.profile, "square_queries": settings.square_queries,
                     "batch": settings.batch, "steps": settings.steps, "repeats": settings.repeats,
                     "warmup": settings.warmup, "seed": settings.seed, "quick": args.quick,
                     "timing": "interleaved rounds in one process; medians over repeats"},
        "cases": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(results))
    for r in results:
        print(summary_line(r))
    print(f"wrote {args.out}")
    return 0
