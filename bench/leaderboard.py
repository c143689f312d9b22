"""Leaderboards rendered from stores: per-sample worst case over the attacks at each budget."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np
from tabulate import tabulate

from bench.config import format_eps
from bench.errors import StoreError
from bench.metrics import wilson_interval
from bench.store import ResultsStore


def latest_complete_runs(store: ResultsStore) -> list[dict]:
    """The newest complete run of each (model, profile, protocol, suite) in a store."""
    latest: dict[tuple, dict] = {}
    for run in store.runs():
        if run.get("status") != "complete":
            continue
        latest[(run["model"], run.get("profile"), run["protocol"], run["suite"])] = run
    return list(latest.values())


def worst_case(cells: list) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample clean correctness and 'broken by any attack', aligned on sample ids."""
    ids = cells[0].arrays["sample_id"]
    broken = np.zeros(len(ids), dtype=bool)
    clean = cells[0].arrays["clean_correct"].astype(bool)
    for c in cells:
        if not np.array_equal(c.arrays["sample_id"], ids):
            raise StoreError(f"cell {c.cell_id} does not cover the same samples as its peers")
        broken |= c.arrays["success"].astype(bool)
    return clean, broken


def leaderboard_rows(stores: Iterable[ResultsStore]) -> tuple[list[dict], list[str]]:
    """One row per (model, protocol, goal) with clean and worst-case robust accuracy per budget."""
    rows, budgets = [], []
    for store in stores:
        for run in latest_complete_runs(store):
            cells = store.read_cells(run["cell_ids"])
            by_goal: dict[str, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
            for c in cells:
                by_goal[c.config["goal"]][(c.config["norm"], float(c.config["eps"]))].append(c)
            for goal, by_budget in by_goal.items():
                row = {
                    "model": run["model"],
                    "profile": run.get("profile", ""),
                    "protocol": run["protocol"],
                    "suite": run["suite"],
                    "goal": goal,
                    "run_id": run["run_id"],
                    "command": json.loads(run["config"]).get("command", "") if run.get("config") else "",
                    "threshold_rule": run.get("threshold_rule", ""),
                    "robust": {},
                }
                for (norm, eps), group in sorted(by_budget.items()):
                    clean, broken = worst_case(group)
                    label = f"{norm} {format_eps(norm, eps)}"
                    if label not in budgets:
                        budgets.append(label)
                    n = len(clean)
                    row["n"] = n
                    row["clean"] = (int(clean.sum()), n)
                    row["robust"][label] = (int((~broken).sum()), n)
                    row["attacks"] = sorted({c.config["attack"] for c in group})
                rows.append(row)
    headline = budgets[-1] if budgets else None
    rows.sort(key=lambda r: (r["protocol"], r["goal"], -(r["robust"].get(headline, (0, 1))[0] / max(1, r["robust"].get(headline, (0, 1))[1]))))
    return rows, budgets


def fmt_rate(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" if n else "n/a"


def render_markdown(rows: list[dict], budgets: list[str]) -> str:
    lines = [
        "# facebench leaderboard",
        "",
        "Robust accuracy (%) is the per-sample worst case over every attack of the suite at that budget:",
        "a sample counts as correct only if no attack broke it; samples already wrong on clean input count",
        "as broken. Brackets are 95 % Wilson intervals; n is the number of evaluated pairs / frames.",
        "Thresholds are fitted on the protocol's dev split, never on test.",
        "",
    ]
    if not rows:
        return "\n".join(lines + ["No complete runs in the store yet: run `facebench run --model ...` first.", ""])
    headers = ["model", "protocol", "goal", "suite", "clean acc"] + [f"robust @ {b}" for b in budgets] + ["n", "run"]
    table = []
    for r in rows:
        table.append(
            [f"`{r['model']}` ({r['profile']})", r["protocol"], r["goal"], r["suite"], fmt_rate(*r["clean"])]
            + [fmt_rate(*r["robust"][b]) if b in r["robust"] else "" for b in budgets]
            + [r["n"], f"`{r['run_id']}`"]
        )
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += ["", "## Reproduce", ""]
    seen = set()
    for r in rows:
        if r["run_id"] in seen:
            continue
        seen.add(r["run_id"])
        lines.append(f"- `{r['run_id']}`: `{r['command'] or 'facebench run --model ' + r['model']}`")
    lines.append("")
    return "\n".join(lines)


def write_leaderboard(store_paths: list[Path], out_dir: Path) -> Path:
    stores = [ResultsStore(p) for p in store_paths]
    rows, budgets = leaderboard_rows(stores)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "README.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(rows, budgets))
    tmp.replace(path)
    return path
