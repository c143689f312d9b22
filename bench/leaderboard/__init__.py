"""Leaderboards rendered from one or more stores: an index page and one page per task and protocol.

Pages: FR verification robustness (per FR protocol), FR identification robustness (when identification
goals were run), FAS robustness (per FAS protocol), FAS cross-domain generalization (the protocols
named `A->B`) and attack optimality (per protocol: how close each attack comes to the best-known envelope). Robust accuracy at a budget is the per-sample worst case over every attack (every
cascade stage, every transfer source) stored at that budget. Everything is computed from the stores'
per-sample arrays and run metadata; nothing is fitted on test data.

Modules: `results` (stores -> runs -> rows: the numbers, read by the gate and the plots), `catalogue`
(each model's parameters and recipe), `cells` (what is read from a cell's kind), `pages` (the registry of
page kinds and the pages themselves, tables built from column objects), `plots` and `examples` (figures),
`write` (output formats and files).
"""
from bench.leaderboard.results import collect_runs, leaderboard_rows
from bench.leaderboard.write import write_leaderboard

__all__ = ["collect_runs", "leaderboard_rows", "write_leaderboard"]
