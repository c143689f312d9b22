"""The leaderboard's pages: the registered page kinds, in page order, and `build_pages`.

A new kind of page is one module here (a `PageKind`: its pages from the runs, its line in the index) and one
`register_page` call below; its place in the list is its pages' place after the index.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from bench.leaderboard.pages.attacks import AttackPages
from bench.leaderboard.pages.generalization import GeneralizationPage
from bench.leaderboard.pages.goal import FAS_TEST_RATES, GoalPages
from bench.leaderboard.pages.index import index_page
from bench.leaderboard.pages.kind import PAGES, Board, Options, PageKind, register_page
from bench.leaderboard.results import RunRecord, rows_of_run
from bench.report import Page

__all__ = ["PAGES", "Board", "Options", "PageKind", "build_pages", "register_page"]

register_page(GoalPages("fr-verification", "FR verification robustness"))
register_page(GoalPages("fr-identification", "FR identification robustness"))
register_page(GoalPages("fas-robustness", "FAS robustness", definitions=(FAS_TEST_RATES,)))
register_page(GeneralizationPage("fas-generalization", "FAS cross-domain generalization"))
register_page(AttackPages("attacks", "Attack optimality"))


def build_pages(records: list[RunRecord], stores: list[Path], options: Optional[Options] = None) -> list[Page]:
    """The index page first, then the pages of each registered kind, kind by kind in registration order."""
    options = options or Options()
    board = Board(records, [r for rec in records for r in rows_of_run(rec)], stores)
    built = [(kind, page) for kind in PAGES.values() for page in kind.build(board, options)]
    return [index_page(board, built)] + [page for _, page in built]
