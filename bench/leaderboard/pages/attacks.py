"""The attack pages: how close each attack comes to the best-known envelope (AttackBench's optimality), per protocol
and goal, and at what cost.

The numbers are `bench.tables.attack_optimality` (read once per render through the board's `KnownMinima`), for
the models (weights, protocol, goal, threshold) the goal pages show. A page per protocol where some attack broke a
clean-correct sample at a positive norm; nothing here is fitted on test data.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from bench.cells.base import BUDGET_TOLERANCE
from bench.config import format_eps
from bench.tables import key_part
from bench.goals import GOALS, goal_order
from bench.leaderboard.pages.columns import Column, ColumnSpec, Each, build_table
from bench.leaderboard.pages.common import page_slug, protocol_text
from bench.leaderboard.pages.kind import Board, IndexEntry, Options, PageKind
from bench.leaderboard.results import KnownMinima, Row
from bench.report import Cell, Heading, Page, Paragraph, Table, anchor_of

INTRO = [
    "How close each stored attack comes to the **best-known envelope** of each model, in the form of AttackBench "
    "(Cinà et al. 2024, *AttackBench: Evaluating Gradient-based Attacks for Adversarial Examples*: local optimality). "
    "Per sample, an attack's distance is the smallest perturbation norm its cells show to reach the goal (a "
    "success's measured norm, a minimal-norm attack's `min_eps`; 0 when wrong on clean input, infinite when none of "
    "its cells broke it) and the envelope's is the sample's best-known minimal perturbation (over every attack of "
    "every run of the stores read, for the same weights, protocol, goal and threshold). Robust accuracy at eps is "
    "the share of samples whose distance exceeds eps.",
    "**optimality** = 1 - (A - A_best) / (A_clean - A_best): A is the area under the attack's robust-accuracy "
    "curve over [0, E], A_best the envelope's, A_clean = clean accuracy x E (an attack that breaks nothing), E the "
    "largest finite best-known distance of the model's clean-correct samples in the norm (the envelope table "
    "below); equivalently, the sum over clean-correct samples of (E - min(attack distance, E)) divided by the same "
    "sum for the envelope. 1: the attack's curve is the envelope's; 0: it broke no clean-correct sample below E "
    "(the lowest value). Samples the envelope breaks only at E add nothing to either area (with fixed budgets: "
    "every sample first broken at the largest budget), so an attack that misses them can still score 1; the gap "
    "column shows such misses. `-` where the envelope broke none of the model's clean-correct samples below E "
    "(with fixed budgets only, typically when every break is at one budget), `n/a` where the attack did not run "
    "on the model. The mean is over the models with a value.",
    "A **fixed-budget attack** is credited, at every eps, with exactly the adversarial examples it found of "
    "measured norm <= eps: nothing is assumed between or beyond the budgets it ran (AttackBench searches each "
    "attack's budget per sample instead), so its curve stays at clean accuracy below its smallest budget and flat "
    "after its largest, and its optimality depends on its grid. **gap @ budgets** reads the curves only where it "
    "ran: the largest, over its budgets and the models, of its robust accuracy minus the envelope's, in percentage "
    "points (0: at every budget it ran it left no more samples robust than the best known).",
    "An attack is every cell of one attack with the same parameters and norm (all its budgets, every run; the same "
    "attack with other parameters is another row, its differing parameters in brackets); a cascade "
    "is one attack, and also a row per prefix of its stages (`first k stages`: exact, from the stored stage that "
    "broke each sample, since each stage ran only on what the earlier ones left). Transfer cells and mask-confined "
    "attacks feed the envelope but get no row. **queries / sample**: mean over the clean-correct samples of their "
    "queries summed over the attack's cells, `-` for a prefix (queries are stored per sample for the whole "
    "cascade only); **s / sample**: the cells' stored compute seconds (a prefix: its stages' seconds) over the "
    "clean-correct samples, device-dependent; both averaged over the models.",
]


@dataclass(frozen=True)
class Model:
    """One model shown on the goal pages: its key (`bench.tables.best_known_key`) and how the tables name it."""

    key: tuple
    label: str


def shown_models(rows: list[Row]) -> dict[tuple, Model]:
    """The models of the goal pages' rows by key, each named `model (profile)` (with its weights' sha256 prefix
    where two keys of a protocol and goal would share the name)."""
    from bench.tables import best_known_key

    keys = sorted({best_known_key(r.cells[0], r.run) for r in rows})
    names = {k: f"{k[0]} ({k[1]})" for k in keys}
    shown = {k: (key_part(k, "protocol"), key_part(k, "goal")) for k in keys}
    clash = {k for k in keys if sum(names[j] == names[k] and shown[j] == shown[k] for j in keys) > 1}
    return {k: Model(k, names[k] + (f" {key_part(k, 'checkpoint_sha256')[:8]} @ {key_part(k, 'threshold')}" if k in clash else ""))
            for k in keys}


def _key_of(line) -> tuple:
    from bench.tables import BEST_KNOWN_KEY, threshold_key

    return tuple(str(getattr(line, c)) for c in BEST_KNOWN_KEY[:-1]) + (threshold_key(line.threshold),)


@dataclass
class Line:
    """One attack (or cascade prefix) in one norm, with its row of `attack_optimality` per model."""

    norm: str
    label: str
    attack: str
    params: str
    prefix: int
    minimal: bool
    per: dict  # Model -> its row (a pandas Series)

    def values(self, column: str) -> list[float]:
        return [float(r[column]) for r in self.per.values() if np.isfinite(float(r[column]))]

    @property
    def optimality(self) -> Optional[float]:
        v = self.values("optimality")
        return float(np.mean(v)) if v else None

    @property
    def gap(self) -> Optional[float]:
        v = self.values("budget_gap")
        return max(v) if v else None

    @property
    def samples(self) -> int:
        return int(sum(int(r["clean_correct"]) for r in self.per.values()))

    @property
    def queries(self) -> Optional[float]:
        v = self.values("queries")
        return float(np.mean(v)) if v else None

    @property
    def seconds(self) -> Optional[float]:
        v = [float(r["seconds"]) / int(r["clean_correct"]) for r in self.per.values()
             if int(r["clean_correct"]) and np.isfinite(float(r["seconds"]))]
        return float(np.mean(v)) if v else None

    @property
    def budgets(self) -> str:
        """The budgets it ran, over the models (a minimal-norm attack's: its ceilings)."""
        found = {b.strip() for r in self.per.values() for b in str(r["budgets"]).split(",") if b.strip()}
        return ", ".join(sorted(found, key=_budget_value)) + (" (min-norm)" if self.minimal else "")


def _budget_value(text: str) -> float:
    """A budget as `bench.config.format_eps` wrote it, as a number (n/255 or a decimal)."""
    return float(text[:-4]) / 255 if text.endswith("/255") else float(text)


@dataclass
class GoalAttacks:
    """What the columns of one goal's attack table read."""

    kind: str
    goal: str
    models: list[Model]


def _fmt(v: Optional[float], spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _model_column(m: Model) -> Column:
    """A model's own optimality: `n/a` where the attack did not run on it, `-` where it has no value."""
    def value(e: Line) -> Optional[float]:
        r = e.per.get(m)
        return float(r["optimality"]) if r is not None and np.isfinite(float(r["optimality"])) else None

    return Column(f"optimality {m.label}", lambda t, i, e: Cell("n/a" if m not in e.per else _fmt(value(e), ".3f")),
                  lambda t, i, e: {f"optimality {m.label}": value(e)})


ATTACK_COLUMNS: list[ColumnSpec] = [
    Column("#", lambda t, i, e: Cell(str(i))),
    Column("attack", lambda t, i, e: Cell(e.label, code=True), align="l"),
    Column("norm", lambda t, i, e: Cell(e.norm), align="l"),
    Column("budgets", lambda t, i, e: Cell(e.budgets), lambda t, i, e: {"budgets": e.budgets}, align="l"),
    Column("optimality (mean)", lambda t, i, e: Cell(_fmt(e.optimality, ".3f")),
           lambda t, i, e: {"optimality": e.optimality}),
    Each(lambda t: t.models, _model_column),
    Column("gap @ budgets (pp)", lambda t, i, e: Cell(_fmt(None if e.gap is None else 100 * e.gap, ".1f")),
           lambda t, i, e: {"budget gap": e.gap}),
    Column("models", lambda t, i, e: Cell(str(len(e.per))), lambda t, i, e: {"models": len(e.per)}),
    Column("samples", lambda t, i, e: Cell(str(e.samples)), lambda t, i, e: {"samples": e.samples}),
    Column("queries / sample", lambda t, i, e: Cell(_fmt(e.queries, ".0f")), lambda t, i, e: {"queries": e.queries}),
    Column("s / sample", lambda t, i, e: Cell(_fmt(e.seconds, ".3g")), lambda t, i, e: {"seconds per sample": e.seconds}),
]
"""The columns of a goal's attack table, in display order."""


def _flat_params(params, path: str = "") -> dict[str, str]:
    """An attack's parameters as `key=value` leaves; a cascade's stages are named by their attacks (`apgd-t.steps`)."""
    if isinstance(params, dict):
        if "attack" in params and "params" in params:
            return _flat_params(params["params"], f"{path}{params['attack']}.")
        out: dict[str, str] = {}
        for k, v in params.items():
            out.update(_flat_params(v, path if k == "stages" else f"{path}{k}."))
        return out
    if isinstance(params, list):
        out = {}
        for i, v in enumerate(params):
            out.update(_flat_params(v, path if isinstance(v, dict) and "attack" in v else f"{path}{i}."))
        return out
    return {path.rstrip("."): str(params)}


def _lines(part: pd.DataFrame, models: dict[tuple, Model]) -> list[Line]:
    """The attack table's lines of one goal: one per (norm, attack, parameters, prefix), best first per norm."""
    lines: dict[tuple, Line] = {}
    for r in part.itertuples(index=False):
        m = models[_key_of(r)]
        ident = (r.norm, r.attack, r.params, int(r.prefix))
        if ident not in lines:
            lines[ident] = Line(r.norm, str(r.label), str(r.attack), str(r.params), int(r.prefix), bool(r.minimal), {})
        lines[ident].per[m] = pd.Series(r._asdict())
        lines[ident].minimal |= bool(r.minimal)
    out = list(lines.values())
    groups: dict[tuple, list[Line]] = defaultdict(list)
    for e in out:
        groups[(e.label, e.norm)].append(e)
    for group in groups.values():
        if len(group) > 1:  # the same attack with other parameters (e.g. an earlier version's, kept in the store)
            flat = [_flat_params(json.loads(e.params)) for e in group]
            differ = sorted({k for f in flat for k in f if any(g.get(k) != f.get(k) for g in flat)})
            for e, f in zip(group, flat):
                shown = ", ".join(f"{k}={f.get(k, '-')}" for k in differ)
                e.label = f"{e.label} [{shown or e.params}]"
    out.sort(key=lambda e: (e.norm != "linf", e.norm, e.optimality is None, -(e.optimality or 0.0),
                            e.gap if e.gap is not None else 1.0, e.seconds if e.seconds is not None else np.inf, e.label))
    return out


def _envelope_table(table_id: str, goal: str, models: list[Model], tops: dict[tuple, float],
                    known: KnownMinima) -> Table:
    """A line per (model, norm) of a goal (`tops`: E per (model, norm)): the envelope's E and how many clean-correct
    samples it broke, below E, and exactly (by a minimal-norm attack)."""
    rows, raw = [], []
    for m in models:
        for norm in ("linf", "l2"):
            part = known.rows(m.key, norm)
            if part is None or (m, norm) not in tops:
                continue
            top = tops[(m, norm)]
            clean = part["clean_correct"].to_numpy(bool)
            eps = part["best_eps"].to_numpy(np.float64)[clean]
            exact = part["exact"].to_numpy(bool)[clean]
            broken, below = int(np.isfinite(eps).sum()), int((eps < top - BUDGET_TOLERANCE).sum())
            rows.append([Cell(m.label), Cell(norm), Cell(format_eps(norm, top, measured=True) if top > 0 else "-"),
                         Cell(str(int(clean.sum()))), Cell(str(broken)), Cell(str(below)), Cell(str(int(exact.sum())))])
            raw.append({"protocol": key_part(m.key, "protocol"), "goal": goal, "model": key_part(m.key, "model"),
                        "profile": key_part(m.key, "profile"), "checkpoint sha256": key_part(m.key, "checkpoint_sha256"),
                        "threshold": key_part(m.key, "threshold"), "norm": norm, "E": top, "clean-correct": int(clean.sum()),
                        "broken": broken, "broken below E": below, "exact": int(exact.sum())})
    return Table(table_id, f"{goal}: the best-known envelope per model and norm",
                 ["model", "norm", "E", "clean-correct", "broken", "broken below E", "exact"], rows, raw, [],
                 ["l", "l", "r", "r", "r", "r", "r"])


@dataclass(frozen=True)
class AttackPages(PageKind):
    """A page per protocol: a section per goal with the attacks' optimality and the envelope behind it."""

    def build(self, board: Board, options: Options) -> list[Page]:
        table = self.table(board)
        return [self.page(protocol, table[table["protocol"] == protocol], board)
                for protocol in sorted(set(table["protocol"]))]

    def table(self, board: Board) -> pd.DataFrame:
        """The `attack_optimality` rows of the models the goal pages show, on protocols where some attack broke a
        clean-correct sample at a positive norm."""
        models = shown_models(board.rows)
        if not models:
            return pd.DataFrame({"protocol": pd.Series(dtype=object)})
        table = board.known().optimality()
        table = table[np.array([_key_of(r) in models for r in table.itertuples(index=False)], dtype=bool)]
        shown = {p for p, g in table.groupby("protocol") if (g["eps_range"] > 0).any()}
        return table[table["protocol"].isin(shown)]

    def index_entry(self, page: Page, board: Board) -> IndexEntry:
        raw = [r for t in page.tables() if t.id.endswith("-envelope") for r in t.raw]
        goals = sorted({r["goal"] for r in raw}, key=goal_order)
        models = {(r["model"], r["profile"], r["checkpoint sha256"]) for r in raw}
        task = ", ".join(sorted({GOALS[g].task for g in goals if g in GOALS})) or "-"
        protocol = ", ".join(sorted({r["protocol"] for r in raw})) or "-"
        return IndexEntry(task, protocol, str(len(models)), "attack optimality: " + ", ".join(goals), "-",
                          {"models": len(models), "goals": ", ".join(goals), "headline": ""})

    def page(self, protocol: str, part: pd.DataFrame, board: Board) -> Page:
        """The page of one protocol: read-me, then per goal the attack table and the envelope table."""
        slug = page_slug(self.name, protocol)
        page = Page(slug, f"{self.title}: {protocol}")
        page.blocks += [Paragraph(protocol_text(protocol)), Paragraph("[Back to the index](README.md)"),
                        Heading("How to read these tables", 2)] + [Paragraph(p) for p in INTRO]
        models = shown_models(board.rows)
        for goal in sorted(set(part["goal"]), key=goal_order):
            rows = part[part["goal"] == goal]
            tops = {(models[_key_of(r)], r.norm): float(r.eps_range) for r in rows.itertuples(index=False)}
            present = sorted({m for m, _ in tops}, key=lambda m: m.label)
            base = f"{slug}-{anchor_of(goal)}"
            page.blocks += [
                Heading(goal, 2, anchor=base),
                build_table(base, f"{protocol}, {goal}: attack optimality against the best-known envelope",
                            ATTACK_COLUMNS, GoalAttacks(self.name, goal, present), _lines(rows, models),
                            head=lambda t, i, e: {"rank": i, "goal": t.goal, "attack": e.label, "norm": e.norm,
                                                  "params": e.params, "prefix": e.prefix}),
                _envelope_table(f"{base}-envelope", goal, present, tops, board.known())]
        return page
