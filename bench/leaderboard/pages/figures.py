"""The figures of a goal section: success rate vs eps, robust vs clean accuracy, the transfer matrix, FAS scores
and regenerated examples.

`plots` (matplotlib) is imported where a figure is drawn: csv and latex renders, and the gate, never load it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from bench.leaderboard.examples import regenerate_examples
from bench.leaderboard.pages.kind import Options
from bench.leaderboard.results import Budget, Row, budget_of
from bench.report import Figure, Paragraph
from bench.store import CellResult


def goal_figures(base: str, goal: str, protocol: str, rows: list[Row], headline: Optional[Budget],
                 transfer: Optional[tuple], options: Options) -> list:
    """The figures of one goal's section (`base`: the section's anchor, the figures' file stem); `transfer` is the
    section's `transfer_matrix` (or None)."""
    from bench.leaderboard import plots

    blocks: list = []
    curves = [r for r in rows if r.breaking]
    if curves:
        png = plots.success_vs_eps(rows, title=f"{goal} on {protocol}")
        blocks.append(Figure(f"{base}-success-vs-eps.png",
                             f"Success rate vs eps, {goal} on {protocol}: the fraction of samples broken at a budget <= eps "
                             "(step line; clean-wrong samples count at eps 0) and, as markers with 95 % Wilson "
                             "intervals, the worst case at each stored budget (1 - robust accuracy).", png))
    if headline is not None and any(headline in r.robust for r in rows):
        png = plots.robust_vs_clean(rows, headline, title=f"{goal} on {protocol}")
        blocks.append(Figure(f"{base}-robust-vs-clean.png",
                             f"Robust accuracy at {headline.label} vs clean accuracy, {goal} on {protocol} "
                             "(95 % Wilson intervals).", png))
    if transfer is not None:
        budget, sources, targets, values = transfer
        png = plots.transfer_heatmap(sources, targets, values, title=f"Transfer success rate, {goal}, {budget.label}")
        blocks.append(Figure(f"{base}-transfer.png",
                             f"Transfer matrix at {budget.label}, {goal} on {protocol}: success rate (%) over the "
                             "target's clean-correct samples of examples crafted on the source (row) and scored on the "
                             "target (column); the diagonal is the target's own white-box worst case at that budget.",
                             png))
    if goal == "spoof-to-live":
        blocks += _fas_score_figure(base, protocol, rows, headline)
    if options.examples and headline is not None:
        blocks += _examples_figure(base, goal, protocol, rows, headline, options)
    return blocks


def _fas_score_figure(base: str, protocol: str, rows: list[Row], headline: Optional[Budget]) -> list:
    """FAS scores at the headline budget: ROC curves clean vs attacked, or the spoof-score shift without live scores."""
    from bench.leaderboard import plots

    if headline is None:
        return []
    data = []
    for r in rows:
        if r.fas is None or r.fas.spoof_scores is None:
            continue
        spoof_adv = _worst_adv(r.cells, headline, "spoof-to-live")
        live_row = [c for c in r.rec.cells if c.config["goal"] == "live-to-spoof"]
        live_adv = _worst_adv(live_row, headline, "live-to-spoof") if live_row else None
        data.append(plots.ScoreSet(r.model, r.fas.threshold, r.fas.spoof_scores, spoof_adv, r.fas.live_scores, live_adv))
    if not data:
        return []
    png, kinds = plots.fas_roc(data, headline.label, title=f"FAS scores on {protocol}")
    roc = [d.label for d, k in zip(data, kinds) if k == "roc"]
    hist = [d.label for d, k in zip(data, kinds) if k == "hist"]
    parts = []
    if roc:
        parts.append(f"ROC curves ({', '.join(roc)}): x = APCER (spoof frames accepted as live), y = 1 - BPCER (live "
                     "frames accepted), over every threshold, for clean spoof vs clean live scores, attacked spoofs "
                     f"(worst case over the spoof-to-live attacks at {headline.label}) vs clean live scores, and, where "
                     "live-to-spoof cells exist, attacked spoofs vs attacked live frames; the dot is the stored dev "
                     "threshold. Scores are those of the evaluated test frames only.")
    if hist:
        parts.append(f"No live frames are stored for {', '.join(hist)} (the suite ran spoof-to-live only), so no ROC "
                     "can be drawn: their panels show the distribution of the spoof frames' liveness scores before "
                     f"and after the worst-case attack at {headline.label}, with the dev threshold (right of it = "
                     "accepted as live). This is a score shift, not a ROC.")
    return [Figure(f"{base}-scores.png", " ".join(parts), png)]


def _worst_adv(cells: list[CellResult], budget: Budget, goal: str) -> Optional[np.ndarray]:
    """Per sample, the attacker's best stored score over the cells at `budget` (spoof-to-live: highest)."""
    at = [c for c in cells if c.config["goal"] == goal and budget_of(c.config) == budget]
    if not at:
        return None
    scores = np.stack([c.arrays["adv_score"].astype(np.float64) for c in at])
    return scores.max(axis=0) if goal == "spoof-to-live" else scores.min(axis=0)


def _examples_figure(base: str, goal: str, protocol: str, rows: list[Row], headline: Budget, options: Options) -> list:
    """Adversarial examples regenerated per model (the store holds no images), and why any could not be."""
    from bench.leaderboard import plots

    sets, notes = [], []
    for r in rows:
        options.log(f"examples: {r.model} {goal} at {headline.label}")
        ex = regenerate_examples(r.rec, goal, headline, options.examples_per_model)
        if ex.error:
            notes.append(f"`{r.model}`: {ex.error}")
        else:
            sets.append(ex)
    blocks: list = []
    if sets:
        png = plots.examples_grid(sets, title=f"{goal} on {protocol}")
        blocks.append(Figure(
            f"{base}-examples.png",
            f"Example adversarial inputs, {goal} on {protocol}, regenerated for this page (the store holds no "
            f"images): per model, the first {options.examples_per_model} clean-correct samples of the run's items, "
            f"attacked again with the run's strongest attack at {headline.label} (the cell of lowest robust "
            "accuracy; a cascade's first stage), named in each row's label. "
            "Per sample: clean input, adversarial input, and the perturbation magnified (mid-grey = 0, the factor "
            "is in the title). The titles give the decision scores and whether the goal was reached; these are "
            "fresh runs of the attack, so they need not match the stored per-sample results exactly.", png))
    if notes:
        blocks.append(Paragraph("Examples not regenerated for: " + "; ".join(notes) + "."))
    return blocks
