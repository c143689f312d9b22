"""The CI regression gate (`facebench check`): a store's headline metrics against a committed baseline.

A baseline (JSON, `leaderboards/baseline.json` by default) lists metrics per (model, profile,
protocol, suite, goal): the clean accuracy and the worst-case robust accuracy at each budget of the
suite, each with its counts (k of n), exactly as the leaderboard computes them
(`bench.leaderboard.results.leaderboard_rows`). Every metric is "higher is better". A metric regresses when
it is lower than the baseline's by more than the tolerance AND below the baseline's 95 % Wilson
interval (so sampling noise on a small sample does not fail CI, and a large real drop does).
A baseline entry with no matching complete run in the store is reported as missing and fails the
gate too: a model that silently stopped being evaluated is not a pass.

A zoo variant is identified by its registry name. A user model, or a zoo variant's weights of the user's own run
under a name of their own (`--checkpoint` with `--name`), is identified by its name (`facebench run --name`, for a
user model default `models_zoo.factory.default_model_name` of the factory string, so the same file named from
another directory is the same model) and its weights' sha256: a run under the baseline's name with other
weights is a different model ("OTHER MODEL", a failure), not a regression or a missing one. A metric read from
cells the integrity checks marked unreliable carries their reasons, in the baseline and in the report.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from bench import __version__
from bench.config import write_atomic
from bench.errors import BadInputError
from bench.leaderboard.results import leaderboard_rows
from bench.metrics import wilson_interval
from bench.store import ResultsStore

BASELINE_SCHEMA = 2  # 2: user models keyed by name with sha256 and factory, unreliable marks; schema 1 is still read
KEY_FIELDS = ("model", "profile", "protocol", "suite", "goal", "metric")
STATUSES = ("ok", "improved", "REGRESSED", "OTHER MODEL", "MISSING")
FAILING = ("REGRESSED", "OTHER MODEL", "MISSING")


@dataclass
class Metric:
    """One headline metric of one model: a rate k / n."""

    model: str  # a zoo variant's name, or a user model's name (`--name`; models_zoo.factory.default_model_name)
    profile: str
    protocol: str
    suite: str
    goal: str
    metric: str  # "clean accuracy" or "robust accuracy @ <budget>"
    k: int
    n: int
    sha256: str = ""  # a user model's weights (with the name, what makes it the same model); "" for a zoo variant
    factory: str = ""  # a user model's --model as given (a schema-1 baseline keyed it by this)
    unreliable: list[str] = field(default_factory=list)  # why the cells it is read from are unreliable; [] if they are not

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
    current: Optional[Metric]  # for OTHER MODEL: the metric of the other weights, shown, not compared
    status: str  # one of STATUSES

    @property
    def delta(self) -> Optional[float]:
        return None if self.current is None else self.current.value - self.baseline.value


def _by_weights(row: dict) -> bool:
    """Whether a leaderboard row's model is identified by its name and its weights' sha256: a user model, or a zoo
    variant's weights of the user's own run under a `--name`; a zoo variant's shipped weights go by its name."""
    return row["source"] == "user" or row["name"] != row["model"]


def store_metrics(stores: Iterable[ResultsStore]) -> list[Metric]:
    """The headline metrics of the newest complete run of each model, protocol and suite in the stores.

    A user model run under two factory strings that share a name (the same file from two paths) counts once, the
    newest run; two different weights under one name are refused (which one the baseline means is unknowable).
    """
    chosen: dict[tuple, dict] = {}
    for r in leaderboard_rows(list(stores))[0]:
        profile = str(r.get("profile") or "") + ("+flip-tta" if r.get("flip_tta") else "")  # --flip-tta: its own metric
        key = (r["name"], profile, r["protocol"], r["suite"], r["goal"])
        old = chosen.get(key)
        if old is not None and _by_weights(old) and old["checkpoint_sha256"] != r["checkpoint_sha256"]:
            raise BadInputError(
                f"two different models are named {r['name']!r} in the store: {old['model']} (weights sha256 "
                f"{old['checkpoint_sha256'][:12]}) and {r['model']} (sha256 {r['checkpoint_sha256'][:12]}); give each "
                "its own name with `facebench run --name`")
        if old is None or tuple(r["started"]) >= tuple(old["started"]):
            chosen[key] = r
    out = []
    for r in chosen.values():
        user = _by_weights(r)
        base = dict(model=r["name"], profile=str(r.get("profile") or "") + ("+flip-tta" if r.get("flip_tta") else ""),
                    protocol=r["protocol"], suite=r["suite"], goal=r["goal"])
        ident = dict(sha256=r["checkpoint_sha256"], factory=r["model"]) if user else {}
        out.append(Metric(**base, metric="clean accuracy", k=r["clean"][0], n=r["clean"][1], **ident,
                          unreliable=list(r["clean_reasons"])))
        for budget, (k, n) in r["robust"].items():
            out.append(Metric(**base, metric=f"robust accuracy @ {budget}", k=k, n=n, **ident,
                              unreliable=list(r["robust_reasons"].get(budget, []))))
    return out


def read_baseline(path: Path) -> list[Metric]:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"baseline {path} does not exist (create it with `facebench check --update --baseline {path}`)")
    try:
        data = json.loads(path.read_text())
        if int(data.get("schema", 0)) > BASELINE_SCHEMA:
            raise BadInputError(f"baseline {path} has schema {data['schema']}, newer than this facebench's {BASELINE_SCHEMA}")
        metrics = [Metric(**{f: e[f] for f in KEY_FIELDS}, k=int(e["k"]), n=int(e["n"]), sha256=str(e.get("sha256", "")),
                          factory=str(e.get("factory", "")), unreliable=[str(r) for r in e.get("unreliable", [])])
                   for e in data["metrics"]]
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
        "metrics": [_entry(m) for m in sorted(metrics, key=Metric.key)],
    }
    write_atomic(path, json.dumps(data, indent=1) + "\n")


def _entry(m: Metric) -> dict:
    """A metric as the baseline writes it: a user model's weights and factory string, reasons only when unreliable."""
    entry = {**{f: getattr(m, f) for f in KEY_FIELDS}, "value": round(m.value, 6), "k": m.k, "n": m.n}
    if m.sha256:
        entry.update(sha256=m.sha256, factory=m.factory)
    if m.unreliable:
        entry["unreliable"] = list(m.unreliable)
    return entry


def compare(baseline: list[Metric], current: list[Metric], tolerance: float) -> list[Comparison]:
    """Each baseline metric against the store's (None when the store has no such metric).

    A user model's metric is found by its name; a baseline entry without a sha256 (schema 1) by its factory string
    as given, as before. Found with other weights, it is OTHER MODEL: a different model, not compared.
    """
    if not 0 <= tolerance < 1:
        raise BadInputError(f"--tolerance must be in [0, 1), got {tolerance}")
    now = {m.key(): m for m in current}
    by_factory = {(m.factory, *m.key()[1:]): m for m in current if m.factory}
    out = []
    for b in baseline:
        c = now.get(b.key())
        if c is None and not b.sha256:
            c = by_factory.get(b.key())
        if c is None:
            out.append(Comparison(b, None, "MISSING"))
            continue
        if b.sha256 and c.sha256 != b.sha256:
            out.append(Comparison(b, c, "OTHER MODEL"))
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
    return [c for c in comparisons if c.status in FAILING]


def not_in_baseline(comparisons: list[Comparison], current: list[Metric]) -> list[Metric]:
    """The store's metrics that no baseline entry was compared with."""
    seen = {id(c.current) for c in comparisons if c.current is not None}
    return [m for m in current if id(m) not in seen]


def _unreliable(c: Comparison) -> str:
    """Which side of a comparison comes from unreliable cells: baseline, now, both, or -."""
    sides = [s for s, m in (("baseline", c.baseline), ("now", c.current)) if m is not None and m.unreliable]
    return "both" if len(sides) == 2 else (sides[0] if sides else "-")


def _other_weights(c: Comparison) -> str:
    b = c.baseline
    return (f"{b.model} was run with other weights (sha256 {c.current.sha256[:12]}, {c.current.factory}) than the "
            f"baseline's (sha256 {b.sha256[:12]}): a different model, not compared; if it is the one to gate now, "
            "accept it with --update")


def _pct(v: Optional[float]) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def table_rows(comparisons: list[Comparison]) -> list[list]:
    rows = []
    for c in comparisons:
        b = c.baseline
        low, high = wilson_interval(b.k, b.n)
        rows.append([b.model, b.protocol, b.suite, b.goal, b.metric, f"{_pct(b.value)} [{_pct(low)}, {_pct(high)}]",
                     _pct(c.current.value if c.current else None),
                     "-" if c.delta is None else f"{100 * c.delta:+.1f}", _unreliable(c), c.status])
    return rows


TABLE_HEADERS = ["model", "protocol", "suite", "goal", "metric", "baseline % [95% CI]", "now %", "delta pts", "unreliable",
                 "status"]


def summary_lines(comparisons: list[Comparison], new: list[Metric], tolerance: float) -> list[str]:
    """What the table format prints under the table: the counts, the models found with other weights, the
    metrics read from unreliable cells (and why), the store's metrics the baseline does not know."""
    counts = {s: sum(c.status == s for c in comparisons) for s in STATUSES}
    other = f", {counts['OTHER MODEL']} of another model" if counts["OTHER MODEL"] else ""
    lines = [f"{len(comparisons)} metrics: {counts['ok']} ok, {counts['improved']} improved, {counts['REGRESSED']} "
             f"regressed, {counts['MISSING']} missing{other} (tolerance {100 * tolerance:.1f} points)"]
    lines += sorted({f"OTHER MODEL: {_other_weights(c)}" for c in comparisons if c.status == "OTHER MODEL"})
    marked = [c for c in comparisons if _unreliable(c) != "-"]
    if marked:
        reasons = sorted({r for c in marked for m in (c.baseline, c.current) if m is not None for r in m.unreliable})
        lines.append(f"{len(marked)} metrics come from cells the integrity checks marked unreliable (column unreliable: "
                     f"in the baseline, now or both): {'; '.join(reasons)}")
    if new:
        lines.append(f"{len(new)} metrics in the store are not in the baseline (add them with --update), e.g. {new[0].label()}")
    return lines


def json_report(comparisons: list[Comparison], new: list[Metric], tolerance: float) -> dict:
    """`facebench check --format json`."""
    def side(m: Optional[Metric]) -> dict:
        return {} if m is None else {"value": m.value, "sha256": m.sha256, "factory": m.factory, "unreliable": m.unreliable}

    return {"passed": not failed(comparisons), "tolerance": tolerance, "comparisons": [
        {**{f: getattr(c.baseline, f) for f in KEY_FIELDS}, "baseline": c.baseline.value,
         "current": None if c.current is None else c.current.value, "delta": c.delta, "status": c.status,
         "baseline_detail": side(c.baseline), "current_detail": side(c.current) or None} for c in comparisons],
        "not_in_baseline": [m.label() for m in new]}


def github_annotations(comparisons: list[Comparison], tolerance: float, baseline_path: str) -> list[str]:
    """Workflow commands a CI service (GitHub Actions) shows inline: an error per failed metric."""
    lines = []
    for c in failed(comparisons):
        b = c.baseline
        if c.status == "MISSING":
            msg = f"{b.label()}: no complete run in the store (the baseline expects {_pct(b.value)} %)"
        elif c.status == "OTHER MODEL":
            msg = f"{b.label()}: {_other_weights(c)}"
        else:
            msg = (f"{b.label()}: {_pct(c.current.value)} % against the baseline's {_pct(b.value)} % "
                   f"({100 * c.delta:+.1f} points, tolerance {100 * tolerance:.1f})")
            if _unreliable(c) != "-":
                msg += f" (from cells marked unreliable: {_unreliable(c)})"
        lines.append(f"::error file={baseline_path},title=facebench {c.status.lower()}::{msg}")
    return lines
