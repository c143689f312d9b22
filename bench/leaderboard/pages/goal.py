"""The goal pages: one page per (kind, protocol), with a section per goal (table, attacks, transfer matrix, figures).

One implementation, `GoalPages`, serves the kinds fr-verification, fr-identification and fas-robustness; a
kind's page shows the goals whose record names it (`bench.goals.GOALS[goal].page`) and, after them, any
goal no record names whose rows fall on it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bench.goals import GOALS
from bench.leaderboard.pages.common import (goal_page_kind, models_section, page_slug, protocol_text,
                                            reproduce_section, row_page)
from bench.leaderboard.pages.figures import goal_figures
from bench.leaderboard.pages.goal_columns import GoalTable, goal_table
from bench.leaderboard.pages.kind import Board, IndexEntry, Options, PageKind
from bench.leaderboard.results import (Budget, Row, budget_order, headline_budget, sort_rows, table_budgets,
                                      transfer_matrix)
from bench.report import Cell, Heading, Page, Paragraph, Table, anchor_of

DEFINITIONS = [
    "**Robust accuracy** at a budget is the per-sample worst case over every attack stored at that budget "
    "(every attack, every cascade stage, every transfer source): a sample counts as correct only if no attack broke "
    "it; samples already wrong on clean input count as broken. Brackets are 95 % Wilson intervals; **n** is the "
    "number of evaluated pairs / probes / frames of the goal.",
    "Decision thresholds are the ones stored with the run, fitted on the protocol's dev split (FR: at the stated "
    "FAR on dev impostor pairs; FAS: the dev EER threshold), never on test.",
    "**AUC** is the normalised area under the robust-accuracy-vs-eps curve over [0, E], E = the table's headline "
    "budget: (1/E) times the integral of robust accuracy from 0 to E. Robust accuracy at eps is the fraction of "
    "samples for which no stored attack found a successful perturbation of norm <= eps (a sample broken at budget b "
    "counts as broken for every eps >= b; a minimal-eps search gives each sample's breaking budget exactly; "
    "clean-wrong samples count as broken at 0). Equivalently, the mean over samples of min(breaking budget, E) / E. "
    "1 = nothing broken up to E, 0 = everything wrong on clean input. Given only where the row has a minimal-eps "
    "search or at least two budgets of the norm; between budgets the curve is a step, so AUCs compare best between "
    "rows of the same suite.",
    "**median min eps** is the median, over the clean-correct samples, of the smallest perturbation norm at which "
    "a minimal-perturbation attack (`fmn`, `min-eps` bisection, `cw-l2`) reached the goal (`> E` when more than half were "
    "never broken up to the search ceiling E); '-' when the suite has no such attack. Linf in units of 1/255.",
    "**median best-known min eps** is the median, over the row's clean-correct samples, of each sample's best-known "
    "minimal perturbation: the smallest perturbation norm at which any attack stored for the same weights, protocol, "
    "goal and threshold reached the goal, in any run of the stores read (not only this row's run). A minimal-"
    "perturbation attack gives it exactly; a fixed-budget attack's success gives the measured norm of its "
    "perturbation, an upper bound (a success of a Linf attack also bounds L2). Samples no attack broke count as "
    "infinite; `> E` when more than half were never broken (every one of them attacked up to E at least). Brackets: "
    "a 95 % percentile-bootstrap interval (1000 resamples of the samples, seeded); `inf` where the resampled median "
    "is infinite. Shown for a norm some stored cell attacked these samples in; '-' where none did.",
    "**Budgets.** The built-in suites attack at the face budgets, fixed before any model ran on them and the same "
    "for every model: Linf 0.5, 1, 2 and 4/255 for evasion goals (dodging, spoof-to-live: the sample must merely "
    "leave its decision at a threshold) and 2, 4 and 8/255 for targeted goals (impersonation), with L2 0.5 for all "
    "(docs/leaderboards.md says why). A table has a robust-accuracy column per budget its rows were attacked at, "
    "except the ceiling of a minimal-perturbation search (`fmn` up to Linf 16/255 and L2 2): that ceiling is the `> E` "
    "of the min eps columns and the right end of the success-vs-eps plot.",
    "**time** is the sum of the stored compute seconds of the row's cells (cells reused from earlier runs count "
    "with their own time). **checks**: `ok`, or `unreliable` when an integrity check failed for a contributing "
    "cell (reason in the numbered note under the table).",
]


FAS_TEST_RATES = (
    "**test ACER / HTER** are clean error rates on the protocol's whole test split at the stored dev EER "
    "threshold, measured by the run and stored with it (`test_metrics`). HTER = (pooled APCER + BPCER) / 2; "
    "ACER = (worst-species APCER + BPCER) / 2. Runs stored before facebench measured them fall back to the "
    "run's evaluated test frames (APCER from `spoof-to-live` cells, BPCER from `live-to-spoof` cells; '-' "
    "where there are none). **dev HTER** is the run's own dev-split figure.")


@dataclass(frozen=True)
class GoalPages(PageKind):
    """The goal pages of one kind: a page per protocol its rows were evaluated on, in protocol order."""

    definitions: tuple[str, ...] = ()  # read-me paragraphs of this kind, after the common `DEFINITIONS`

    def build(self, board: Board, options: Options) -> list[Page]:
        by_protocol: dict[str, list[Row]] = defaultdict(list)
        for r in board.rows:
            if goal_page_kind(r.goal, str(r.run.get("task", ""))) == self.name:
                by_protocol[str(r.run["protocol"])].append(r)
        return [self.page(protocol, by_protocol[protocol], options) for protocol in sorted(by_protocol)]

    def index_entry(self, page: Page, board: Board) -> IndexEntry:
        rs = [r for r in board.rows if row_page(r) == page.slug]
        goals = [g for g in GOALS if any(r.goal == g for r in rs)]
        heads = sorted({headline_budget([r for r in rs if r.goal == g]).label for g in goals
                        if headline_budget([r for r in rs if r.goal == g]) is not None})
        return IndexEntry(str(rs[0].run.get("task", "")) if rs else "-", str(rs[0].run["protocol"]) if rs else "-",
                          str(len({(r.model, r.run.get('profile')) for r in rs})), ", ".join(goals),
                          ", ".join(heads) or "-",
                          {"models": len({r.model for r in rs}), "goals": ", ".join(goals),
                           "headline": ", ".join(heads)})

    def page(self, protocol: str, rows: list[Row], options: Options) -> Page:
        """The page of this kind for `protocol`: read-me, a section per goal, the models, how to reproduce."""
        goals = tuple(g for g in GOALS if GOALS[g].page == self.name)
        slug = page_slug(self.name, protocol)
        page = Page(slug, f"{self.title}: {protocol}")
        page.blocks += [Paragraph(protocol_text(protocol)), Paragraph("[Back to the index](README.md)")]
        page.blocks += [Heading("How to read these tables", 2)] + [Paragraph(d) for d in DEFINITIONS]
        page.blocks += [Paragraph(d) for d in self.definitions]
        by_goal: dict[str, list[Row]] = defaultdict(list)
        for r in rows:
            by_goal[r.goal].append(r)
        order = [g for g in goals if g in by_goal] + sorted(g for g in by_goal if g not in goals)
        for goal in order:
            page.blocks += self.goal_section(protocol, slug, goal, by_goal[goal], options)
        page.blocks += models_section(rows) + reproduce_section(rows)
        return page

    def goal_section(self, protocol: str, slug: str, goal: str, rows: list[Row], options: Options) -> list:
        """One goal's section: headline, table, attacks per budget, transfer matrix, figures."""
        headline = headline_budget(rows)
        rows = sort_rows(rows, headline)
        budgets = sorted({b for r in rows for b in r.robust}, key=budget_order)
        blocks: list = [Heading(f"{goal}", 2, anchor=f"{slug}-{anchor_of(goal)}")]
        if headline is not None:
            blocks.append(Paragraph(
                f"Headline budget: **{headline.label}**, the largest "
                f"{'Linf' if headline.norm == 'linf' else 'L2'} budget of the suites on this table; rows are sorted by "
                f"robust accuracy there (best first); ties by robust accuracy at the next smaller budgets in turn, then by "
                f"clean accuracy."))
        blocks.append(goal_table(f"{slug}-{anchor_of(goal)}", GoalTable(self.name, goal, rows, table_budgets(rows), headline)))
        attacks_at = []
        for b in budgets:
            names = sorted({a for r in rows for a in r.attacks.get(b, [])})
            attacks_at.append(f"{b.label}: {', '.join(names)}")
        blocks.append(Paragraph("Attacks per budget (union over the rows): " + "; ".join(attacks_at) + "."))
        base = f"{slug}-{anchor_of(goal)}"
        transfer = transfer_matrix(rows, headline)
        if transfer is not None:
            budget, sources, targets, values = transfer
            blocks.append(_transfer_table(base, goal, budget, sources, targets, values))
        if not options.figures:
            return blocks
        return blocks + goal_figures(base, goal, protocol, rows, headline, transfer, options)


def _transfer_table(base: str, goal: str, budget: Budget, sources: list[str], targets: list[str], values: np.ndarray) -> Table:
    """The transfer matrix as a table: a line per source model, a column per target (diagonal: white-box)."""
    headers = ["source / target"] + targets
    rows, raw = [], []
    for i, s in enumerate(sources):
        rows.append([Cell(s, code=True)] + [Cell("-" if np.isnan(v) else f"{v:.1f}") for v in values[i]])
        raw.append({"source": s, **{t: (None if np.isnan(v) else float(v)) for t, v in zip(targets, values[i])}})
    return Table(f"{base}-transfer", f"Transfer success rate (%) at {budget.label}, {goal} (diagonal: white-box)",
                 headers, rows, raw, [], ["l"] + ["r"] * len(targets))

