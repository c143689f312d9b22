"""Page kinds and their registry: a kind builds its pages from the runs and gives each one its line in the index.

`PAGES` holds the registered kinds in page order (an ordered registry: the order is the pages' order after
the index); `bench.leaderboard.pages` registers today's kinds. A new kind of page is one module with a
`PageKind` and one `register_page` call there.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bench.leaderboard.results import KnownMinima, Row, RunRecord
from bench.report import Page

EXAMPLES_PER_MODEL = 4


@dataclass
class Options:
    """How pages are built: figures (md and html; csv and latex need only the tables) and regenerated examples."""

    figures: bool = True
    examples: bool = True
    examples_per_model: int = EXAMPLES_PER_MODEL
    log: Callable[[str], None] = lambda s: None


@dataclass
class Board:
    """What every page is built from: the runs shown, their rows (each goal of each run), the stores read."""

    records: list[RunRecord]
    rows: list[Row]
    stores: list[Path]

    _known: Optional[KnownMinima] = field(default=None, repr=False)

    def known(self) -> KnownMinima:
        """The best-known minimal perturbations of the stores read, derived once (the records' own when they
        were read with them)."""
        if self._known is None:
            self._known = next((rec.known for rec in self.records if rec.known is not None), None) or KnownMinima(self.stores)
        return self._known


@dataclass
class IndexEntry:
    """A page's line in the index's table of pages (display texts) and its csv values after `page`."""

    task: str
    protocol: str
    models: str
    goals: str
    headline: str
    raw: dict


@dataclass(frozen=True)
class PageKind(ABC):
    """A kind of leaderboard page. `name` is its registry name (and its slug, or its slugs' prefix)."""

    name: str
    title: str

    @abstractmethod
    def build(self, board: Board, options: Options) -> list[Page]:
        """The pages of this kind the board gives, in order (none when it has nothing to show)."""

    @abstractmethod
    def index_entry(self, page: Page, board: Board) -> IndexEntry:
        """The index's line for `page`, one of the pages `build` returned."""


PAGES: dict[str, PageKind] = {}
"""The registered page kinds by name, in page order."""


def register_page(kind: PageKind) -> PageKind:
    """Add a page kind after those registered so far; a name registered twice is an error."""
    if kind.name in PAGES:
        raise ValueError(f"page kind {kind.name!r} is registered twice")
    PAGES[kind.name] = kind
    return kind
