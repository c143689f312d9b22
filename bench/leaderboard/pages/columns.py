"""Tables built from column objects: a new column of a table is one `Column` in its list.

A column says its header, the cell it shows for a row, the raw values it adds to the row's csv record, its
alignment, whether the LaTeX table prints it, and where it is shown: the page kinds it applies to and a test
on the whole table. `Each` repeats a column per key of the table (each budget, each norm).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Optional, Sequence, TypeVar, Union

from bench.report import Cell, Table

T = TypeVar("T")  # what the whole table knows (its page kind, rows, budgets...); has a `kind`
E = TypeVar("E")  # what one line of the table shows (a leaderboard row, a run)

CellOf = Callable[[T, int, E], Cell]  # (table, rank from 1, line) -> the cell shown
RawOf = Callable[[T, int, E], dict]  # (table, rank from 1, line) -> values added to the line's csv record


@dataclass(frozen=True)
class Column(Generic[T, E]):
    """One column: header (text, or computed from the table), cell, csv values, alignment, where shown."""

    header: Union[str, Callable[[T], str]]
    cell: CellOf
    raw: Optional[RawOf] = None  # None: the column adds nothing to the csv record
    align: str = "r"  # "l" or "r"
    latex: bool = True  # printed in the LaTeX table (long text and links are not)
    kinds: tuple[str, ...] = ()  # the page kinds it applies to; () for every kind
    when: Optional[Callable[[T], bool]] = None  # shown only where this holds for the table

    def title(self, table: T) -> str:
        return self.header if isinstance(self.header, str) else self.header(table)

    def expand(self, table: T) -> list["Column"]:
        """The column itself where it is shown on `table`, else nothing."""
        if self.kinds and table.kind not in self.kinds:
            return []
        if self.when is not None and not self.when(table):
            return []
        return [self]


@dataclass(frozen=True)
class Each(Generic[T, E]):
    """One column per key of the table, in the keys' order: `column(key)` builds the column of a key."""

    keys: Callable[[T], Iterable[Any]]
    column: Callable[[Any], Column]

    def expand(self, table: T) -> list[Column]:
        return [c for key in self.keys(table) for c in self.column(key).expand(table)]


ColumnSpec = Union[Column, Each]
"""An entry of a table's column list: a column, or a column per key."""


def build_table(table_id: str, caption: str, columns: Sequence[ColumnSpec], table: T, lines: Sequence[E], *,
                head: Optional[RawOf] = None, tail: Optional[RawOf] = None, notes: Optional[list[str]] = None) -> Table:
    """The `Table` of `lines` under the columns shown on `table`.

    A line's csv record is `head` (what the line is), then each column's raw values in column order, then
    `tail` (provenance); `notes` are the footnotes the cells refer to (filled while the cells are made).
    """
    shown = [c for spec in columns for c in spec.expand(table)]
    headers = [c.title(table) for c in shown]
    rows, raw = [], []
    for i, line in enumerate(lines, 1):
        rows.append([c.cell(table, i, line) for c in shown])
        record = dict(head(table, i, line)) if head is not None else {}
        for c in shown:
            if c.raw is not None:
                record.update(c.raw(table, i, line))
        if tail is not None:
            record.update(tail(table, i, line))
        raw.append(record)
    return Table(table_id, caption, headers, rows, raw, notes if notes is not None else [], [c.align for c in shown],
                 print_skip=tuple(h for h, c in zip(headers, shown) if not c.latex))
