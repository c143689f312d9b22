"""The columns of a goal table (one model per line on one goal of one protocol), as a list of `Column`s.

A new column is one more entry in `GOAL_COLUMNS`: its header, its cell, its csv values, its alignment and
the page kinds it applies to. Column order is display order; a line's csv record is the line's identity
(`_head`), each column's values in column order, then provenance (`_tail`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

import numpy as np

from bench.config import format_eps
from bench.leaderboard.catalogue import fmt_params
from bench.leaderboard.pages.columns import Column, ColumnSpec, Each, build_table
from bench.leaderboard.results import Budget, Rate, Row, command_of, curve_tops, flip_tta
from bench.report import Cell, Table


@dataclass
class GoalTable:
    """What the columns of one goal table read: page kind, goal, rows (sorted), budgets, headline, footnotes."""

    kind: str
    goal: str
    rows: list[Row]
    budgets: list[Budget]
    headline: Optional[Budget]
    notes: list[str] = field(default_factory=list)  # unreliability reasons, numbered in order of first mention

    @property
    def main_norm(self) -> str:
        return self.headline.norm if self.headline is not None else "linf"

    @cached_property
    def tops(self) -> dict[str, float]:
        """Per norm, the E of its AUC column."""
        return curve_tops(self.rows, self.headline)

    @cached_property
    def dev_rules(self) -> list[str]:
        """The distinct dev threshold rules of the rows (one: it goes in the dev TAR header)."""
        return sorted({str(r.rec.dev.get("threshold_rule", r.run.get("threshold_rule", ""))) for r in self.rows})


FR_VERIFICATION, FAS_ROBUSTNESS = ("fr-verification",), ("fas-robustness",)


def _pct(v) -> str:
    return f"{100 * float(v):.1f}" if v is not None else "-"


# --------------------------------------------------------------------------- FR verification: dev TAR

def _dev_tar(r: Row) -> Optional[Rate]:
    dev = r.rec.dev
    tar, ng = dev.get("dev_tar"), dev.get("dev_genuine_pairs")
    return Rate(int(round(float(tar) * int(ng))), int(ng)) if tar is not None and ng else None


def _dev_tar_header(t: GoalTable) -> str:
    return "dev TAR" + (f" @ {t.dev_rules[0].replace('dev ', '')}" if len(t.dev_rules) == 1 else "")


def _dev_tar_cell(t: GoalTable, i: int, r: Row) -> Cell:
    dr = _dev_tar(r)
    if dr is None:
        return Cell("-")
    return Cell(dr.pct() + ("" if len(t.dev_rules) == 1 else f" ({r.rec.dev.get('threshold_rule', '')})"))


def _dev_tar_raw(t: GoalTable, i: int, r: Row) -> dict:
    dr = _dev_tar(r)
    return {} if dr is None else {**dr.raw("dev tar"), "dev threshold rule": r.rec.dev.get("threshold_rule", "")}


# --------------------------------------------------------------------------- k-fold protocols (lfw, bin:PATH)

def _kfold(metric: str, header: str) -> Column:
    """A clean k-fold figure of the run (`dev_metrics`: `<metric>_mean` and `_std` over the held-out folds)."""
    def value(r: Row) -> Optional[tuple[float, float]]:
        k = r.kfold_clean()
        return None if k is None or f"{metric}_mean" not in k else (float(k[f"{metric}_mean"]), float(k[f"{metric}_std"]))

    def cell(t: GoalTable, i: int, r: Row) -> Cell:
        v = value(r)
        return Cell("-" if v is None else f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}")

    def raw(t: GoalTable, i: int, r: Row) -> dict:
        v = value(r)
        return {} if v is None else {f"{header} mean": v[0], f"{header} std": v[1]}

    def title(t: GoalTable) -> str:
        fars = sorted({float(r.kfold_clean()["far_target"]) for r in t.rows if r.kfold_clean() is not None})
        return header + (f" @ FAR={fars[0]:g}" if metric == "tar" and len(fars) == 1 else "")

    return Column(title, cell, raw, kinds=FR_VERIFICATION, when=lambda t: any(value(r) is not None for r in t.rows))


def _fold_robust_header(t: GoalTable) -> str:
    return f"robust @ {t.headline.label} per fold" if t.headline is not None else "robust per fold"


def _fold_robust_cell(t: GoalTable, i: int, r: Row) -> Cell:
    spread = r.fold_spread(t.headline)
    return Cell("-" if spread is None else spread.pct())


def _fold_robust_raw(t: GoalTable, i: int, r: Row) -> dict:
    spread = r.fold_spread(t.headline)
    name = _fold_robust_header(t)
    return {} if spread is None else {f"{name} mean": spread.mean, f"{name} std": spread.std, f"{name} folds": spread.folds}


# --------------------------------------------------------------------------- FAS: clean error rates

def _fas_rate(r: Row, name: str) -> Optional[float]:
    return getattr(r.fas, name) if r.fas is not None else None


def _test_frames(r: Row) -> dict:
    f = r.fas
    return {"test spoof frames": f.apcer_pooled.n if f is not None and f.apcer_pooled else None,
            "test live frames": f.bpcer.n if f is not None and f.bpcer else None}


# --------------------------------------------------------------------------- robust accuracy, AUC, minimal eps

def _robust(b: Budget) -> Column:
    def cell(t: GoalTable, i: int, r: Row) -> Cell:
        rate = r.robust.get(b)
        return Cell(rate.pct() if rate is not None else "-")

    def raw(t: GoalTable, i: int, r: Row) -> dict:
        rate = r.robust.get(b)
        return rate.raw(f"robust {b.label}") if rate is not None else {}

    return Column(f"robust @ {b.label}", cell, raw)


def _auc_header(t: GoalTable, norm: str) -> str:
    return f"AUC {norm} [0, {format_eps(norm, t.tops[norm])}]"


def _auc(norm: str) -> Column:
    """The AUC of a norm: shown for the headline's norm always, for another where some row has a value."""
    def cell(t: GoalTable, i: int, r: Row) -> Cell:
        auc = r.auc(norm, t.tops[norm])
        return Cell(f"{auc:.3f}" if auc is not None else "-")

    return Column(lambda t: _auc_header(t, norm), cell,
                  lambda t, i, r: {_auc_header(t, norm): r.auc(norm, t.tops[norm])},
                  when=lambda t: norm == t.main_norm or any(r.auc(norm, t.tops[norm]) is not None for r in t.rows))


def _min_eps_norms(t: GoalTable) -> list[str]:
    return [t.main_norm] + [n for n in ("linf", "l2") if n != t.main_norm]


def _min_eps(norm: str) -> Column:
    """The median minimal eps of a norm: shown for the headline's norm always, for another where some row has one."""
    def cell(t: GoalTable, i: int, r: Row) -> Cell:
        me = r.min_eps.get(norm)
        if me is None:
            return Cell("-")
        med, _, search = me
        return Cell(f"> {format_eps(norm, search, measured=True)}" if not np.isfinite(med)
                    else format_eps(norm, med, measured=True))

    def raw(t: GoalTable, i: int, r: Row) -> dict:
        me = r.min_eps.get(norm)
        return {} if me is None else {f"median min eps {norm}": me[0]}

    return Column(f"median min eps ({norm})", cell, raw,
                  when=lambda t: norm == t.main_norm or any(norm in r.min_eps for r in t.rows))


def _known_text(norm: str, k) -> str:
    """`median [low, high]`, eps formatted as measured; a median of unbroken samples is `> E` (E: the budget every
    unbroken sample was attacked at, at least), or `inf` when there is no such budget."""
    def fmt(v: float) -> str:
        return format_eps(norm, v, measured=True)

    median = fmt(k.median) if np.isfinite(k.median) else (f"> {fmt(k.floor)}" if k.floor > 0 else "inf")
    return f"{median} [{fmt(k.low)}, {fmt(k.high)}]"


def _best_known(norm: str) -> Column:
    """The median best-known minimal eps of a norm with its bootstrap interval: shown for the headline's norm always,
    for another where some row has one."""
    def cell(t: GoalTable, i: int, r: Row) -> Cell:
        k = r.best_known(norm)
        return Cell("-" if k is None else _known_text(norm, k))

    def raw(t: GoalTable, i: int, r: Row) -> dict:
        k = r.best_known(norm)
        name = f"median best-known min eps {norm}"
        return {} if k is None else {name: k.median, f"{name} low": k.low, f"{name} high": k.high, f"{name} n": k.n,
                                     f"{name} exact": k.exact, f"{name} unbroken": k.unbroken}

    return Column(f"median best-known min eps ({norm})", cell, raw,
                  when=lambda t: norm == t.main_norm or any(r.best_known(norm) is not None for r in t.rows))


# --------------------------------------------------------------------------- checks

def _checks_cell(t: GoalTable, i: int, r: Row) -> Cell:
    """`ok`, or `unreliable (note k)` referring to the table's numbered notes (each reason once)."""
    if not r.unreliable:
        return Cell("ok")
    refs = []
    for reason in r.reasons:
        if reason not in t.notes:
            t.notes.append(reason)
        refs.append(str(t.notes.index(reason) + 1))
    return Cell(f"unreliable (note {', '.join(refs)})")


# --------------------------------------------------------------------------- the table


GOAL_COLUMNS: list[ColumnSpec] = [
    Column("#", lambda t, i, r: Cell(str(i))),
    Column("model", lambda t, i, r: Cell(r.model, code=True, suffix=f" ({r.variant})"), align="l"),
    Column("params", lambda t, i, r: Cell(fmt_params(r.info.params))),
    Column("recipe", lambda t, i, r: Cell(r.info.recipe), align="l", latex=False),
    Column("suite", lambda t, i, r: Cell(str(r.run["suite"])), align="l"),
    Column(_dev_tar_header, _dev_tar_cell, _dev_tar_raw, kinds=FR_VERIFICATION,  # k-fold protocols have no dev TAR
           when=lambda t: any(_dev_tar(r) is not None for r in t.rows)),
    Column("dev HTER", lambda t, i, r: Cell(_pct(r.rec.dev.get("dev_hter"))),
           lambda t, i, r: {"dev hter": r.rec.dev.get("dev_hter")}, kinds=FAS_ROBUSTNESS),
    Column("test ACER", lambda t, i, r: Cell(_pct(_fas_rate(r, "acer"))),
           lambda t, i, r: {"test acer": _fas_rate(r, "acer")}, kinds=FAS_ROBUSTNESS),
    Column("test HTER", lambda t, i, r: Cell(_pct(_fas_rate(r, "hter"))),
           lambda t, i, r: {"test hter": _fas_rate(r, "hter"), **_test_frames(r)}, kinds=FAS_ROBUSTNESS),
    _kfold("accuracy", "k-fold acc"),  # k-fold protocols: the clean verification figures, mean ± std over folds
    _kfold("tar", "k-fold TAR"),
    Column("clean acc", lambda t, i, r: Cell(r.clean.pct()), lambda t, i, r: r.clean.raw("clean acc")),
    Column(_fold_robust_header, _fold_robust_cell, _fold_robust_raw,
           when=lambda t: t.headline is not None and any(r.fold_spread(t.headline) is not None for r in t.rows)),
    Each(_min_eps_norms, _best_known),  # the table leads with each goal's robustness per sample (issue 17)
    Each(lambda t: t.budgets, _robust),
    Each(lambda t: list(t.tops), _auc),
    Each(_min_eps_norms, _min_eps),
    Column("n", lambda t, i, r: Cell(str(r.n)), lambda t, i, r: {"n": r.n}),
    Column("time (s)", lambda t, i, r: Cell(f"{r.seconds:.1f}"), lambda t, i, r: {"seconds": r.seconds}),
    Column("checks", _checks_cell,
           lambda t, i, r: {"unreliable": r.unreliable, "unreliable reason": "; ".join(r.reasons)}, align="l"),
    Column("run", lambda t, i, r: Cell(str(r.run["run_id"]), href=f"#run-{r.run['run_id']}", code=True), align="l",
           latex=False),
]
"""The goal table's columns, in display order."""


def _head(t: GoalTable, i: int, r: Row) -> dict:
    return {"rank": i, "model": r.model, "profile": r.run.get("profile", ""), **({"flip tta": True} if flip_tta(r.run) else {}),
            "protocol": r.run["protocol"],
            "goal": t.goal, "suite": r.run["suite"], "params": r.info.params, "recipe": r.info.recipe}


def _tail(t: GoalTable, i: int, r: Row) -> dict:
    return {"headline budget": t.headline.label if t.headline else "", "run id": r.run["run_id"],
            "command": command_of(r.rec)[0], "store": str(r.rec.store)}


def goal_table(table_id: str, table: GoalTable) -> Table:
    """The table of one goal: a line per row (sorted), the columns of `GOAL_COLUMNS` shown for its page kind."""
    caption = (f"{table.goal}: robust accuracy (%) per budget"
               + (f", sorted at {table.headline.label}" if table.headline else ""))
    return build_table(table_id, caption, GOAL_COLUMNS, table, table.rows, head=_head, tail=_tail, notes=table.notes)
