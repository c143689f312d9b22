"""The CI regression gate (`facebench check`): a store's headline metrics against a committed baseline.

A baseline (JSON, `leaderboards/baseline.json` by default) lists metrics per (model, profile,
protocol, suite, goal): the clean accuracy and the worst-case robust accuracy at each budget of the
suite, each with its counts (k of n), exactly as the leaderboard computes them
(`bench.leaderboard.results.leaderboard_rows`). Every metric is "higher is better". A metric regresses when
it is lower than the baseline's by more than the tolerance AND below the baseline's 95 % Wilson
interval (so sampling noise on a small sample does not fail CI, and a large real drop does).
A baseline entry with no matching complete run in the store is reported as missing and fails the
gate too: a model that silently stopped being evaluated is not a pass.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from bench import __version__
from bench.errors import BadInputError
from bench.leaderboard.results import leaderboard_rows
from bench.metrics import wilson_interval
from bench.store import ResultsStore

BASELINE_SCHEMA = 1
KEY_FIELDS = ("model", "profile", "protocol", "suite", "goal", "metric")


@dataclass
class Metric:
    """One headline metric of one model: a rate k / n."""

    model: str
    profile: str
    protocol: str
    suite: str
    goal: str
    metric: str  # "clean accuracy" or "robust accuracy @ <budget>"
    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def key(self) -> tuple:
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    def label(self) -> str:
        return f"{self.model} ({self.profile}) {self.protocol} {self.suite} {self.goal}: {self.metric}"


@dataclass
class Comparison:
    baseline: Metric
    current: Optional[Metric]
    status: str  # ok, improved, REGRESSED, MISSING

    @property
    def delta(self) -> Optional[float]:
        return None if self.current is None else self.current.value - self.baseline.value


def store_metrics(stores: Iterable[ResultsStore]) -> list[Metric]:
    """The headline metrics of the newest complete run of each model, protocol and suite in the stores."""
    out = []
    for r in leaderboard_rows(list(stores))[0]:
        base = dict(model=r["model"], profile=str(r.get("profile") or ""), protocol=r["protocol"], suite=r["suite"],
                    goal=r["goal"])
        out.append(Metric(**base, metric="clean accuracy", k=r["clean"][0], n=r["clean"][1]))
        for budget, (k, n) in r["robust"].items():
            out.append(Metric(**base, metric=f"robust accuracy @ {budget}", k=k, n=n))
    return out


def read_baseline(path: Path) -> list[Metric]:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"baseline {path} does not exist (create it with `facebench check --update --baseline {path}`)")
    try:
        data = json.loads(path.read_text())
        if int(data.get("schema", 0)) > BASELINE_SCHEMA:
            raise BadInputError(f"baseline {path} has schema {data['schema']}, newer than this facebench's {BASELINE_SCHEMA}")
        metrics = [Metric(**{f: e[f] for f in KEY_FIELDS}, k=int(e["k"]), n=int(e["n"])) for e in data["metrics"]]
    except BadInputError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadInputError(f"baseline {path} is not a facebench baseline ({type(e).__name__}: {e})") from None
    for m in metrics:
        if not 0 <= m.k <= m.n:
            raise BadInputError(f"baseline {path}: {m.model} {m.metric} has k = {m.k} of n = {m.n} "
                                "(k must be between 0 and n); rewrite it with `facebench check --update`")
    return metrics


def write_baseline(path: Path, metrics: list[Metric], stores: list[str]) -> None:
    """Write the baseline atomically (a temp file renamed into place)."""
    path = Path(path)
    data = {
        "schema": BASELINE_SCHEMA,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "facebench_version": __version__,
        "stores": [str(s) for s in stores],
        "metrics": [{**{f: getattr(m, f) for f in KEY_FIELDS}, "value": round(m.value, 6), "k": m.k, "n": m.n}
                    for m in sorted(metrics, key=Metric.key)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def compare(baseline: list[Metric], current: list[Metric], tolerance: float) -> list[Comparison]:
    """Each baseline metric against the store's (None when the store has no such metric)."""
    if not 0 <= tolerance < 1:
        raise BadInputError(f"--tolerance must be in [0, 1), got {tolerance}")
    now = {m.key(): m for m in current}
    out = []
    for b in baseline:
        c = now.get(b.key())
        if c is None:
            out.append(Comparison(b, None, "MISSING"))
            continue
        low, _ = wilson_interval(b.k, b.n)
        if b.value - c.value > tolerance and c.value < low:
            status = "REGRESSED"
        elif c.value - b.value > tolerance:
            status = "improved"
        else:
            status = "ok"
        out.append(Comparison(b, c, status))
    return out


def failed(comparisons: list[Comparison]) -> list[Comparison]:
    return [c for c in comparisons if c.status in ("REGRESSED", "MISSING")]


def _pct(v: Optional[float]) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def table_rows(comparisons: list[Comparison]) -> list[list]:
    rows = []
    for c in comparisons:
        b = c.baseline
        low, high = wilson_interval(b.k, b.n)
        rows.append([b.model, b.protocol, b.suite, b.goal, b.metric, f"{_pct(b.value)} [{_pct(low)}, {_pct(high)}]",
                     _pct(c.current.value if c.current else None),
                     "-" if c.delta is None else f"{100 * c.delta:+.1f}", c.status])
    return rows


TABLE_HEADERS = ["model", "protocol", "suite", "goal", "metric", "baseline % [95% CI]", "now %", "delta pts", "status"]


def github_annotations(comparisons: list[Comparison], tolerance: float, baseline_path: str) -> list[str]:
    """Workflow commands a CI service (GitHub Actions) shows inline: an error per failed metric."""
    lines = []
    for c in failed(comparisons):
        b = c.baseline
        if c.status == "MISSING":
            msg = f"{b.label()}: no complete run in the store (the baseline expects {_pct(b.value)} %)"
        else:
            msg = (f"{b.label()}: {_pct(c.current.value)} % against the baseline's {_pct(b.value)} % "
                   f"({100 * c.delta:+.1f} points, tolerance {100 * tolerance:.1f})")
        lines.append(f"::error file={baseline_path},title=facebench {c.status.lower()}::{msg}")
    return lines
