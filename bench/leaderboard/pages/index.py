"""The index page (README): what was rendered from which stores, a line per page, a line per model.

The table of pages asks each page's kind for its line (`PageKind.index_entry`); nothing here knows the kinds.
"""
from __future__ import annotations

from collections import defaultdict

from bench.leaderboard.catalogue import fmt_params
from bench.leaderboard.pages.common import row_page
from bench.leaderboard.pages.kind import Board, PageKind
from bench.leaderboard.results import Row, headline_budget
from bench.report import Cell, Heading, Page, Paragraph, Table

INDEX = "README"


def index_page(board: Board, built: list[tuple[PageKind, Page]]) -> Page:
    """The index of the `built` pages (each with the kind that built it), in their order."""
    records = board.records
    page = Page(INDEX, "facebench leaderboards")
    ended = max((str(rec.run.get("ended", "")) for rec in records), default="")
    page.blocks.append(Paragraph(
        f"Rendered by `facebench leaderboard` from {len(records)} complete run(s)"
        + (f" (the newest ended {ended})" if ended else "") + " in " + ", ".join(f"`{s}`" for s in board.stores)
        + ". For each (model, profile, protocol, suite) the newest complete run is shown. Robust accuracy is the "
        "per-sample worst case over every attack at a budget; thresholds come from the dev split, never from test; "
        "rates carry 95 % Wilson intervals. The columns and plots are described in `docs/leaderboards.md` of the "
        "facebench repository."))
    if not records:
        page.blocks.append(Paragraph("No complete runs in the store yet: run `facebench run --model ...` first."))
        return page
    page.blocks += [Heading("Pages", 2), _pages_table(board, built), Heading("Models", 2), _models_table(board.rows)]
    return page


def _pages_table(board: Board, built: list[tuple[PageKind, Page]]) -> Table:
    """A line per page: its link, then what its kind says about it."""
    prows, praw = [], []
    for kind, p in built:
        e = kind.index_entry(p, board)
        prows.append([Cell(p.title, href=f"{p.slug}.md"), Cell(e.task), Cell(e.protocol), Cell(e.models), Cell(e.goals),
                      Cell(e.headline)])
        praw.append({"page": p.slug, **e.raw})
    return Table("index-pages", "", ["page", "task", "protocol", "models", "goals", "headline budget"], prows, praw)


def _models_table(rows: list[Row]) -> Table:
    """A line per model: where it appears and its robust accuracy at each goal page's headline budget."""
    by_page: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_page[row_page(r)].append(r)
    mrows, mraw = [], []
    seen: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        seen[(r.model, str(r.run.get("profile", "")))].append(r)
    for (m, prof), rs in sorted(seen.items()):
        links = sorted({(row_page(r), str(r.run['protocol'])) for r in rs})
        heads = []
        several = len({str(r.run.get("suite")) for r in rs}) > 1  # then each figure names its suite
        for r in rs:
            peers = by_page[row_page(r)]
            h = headline_budget([x for x in peers if x.goal == r.goal])
            if h is not None and h in r.robust:
                suite = f" ({r.run.get('suite')})" if several else ""
                heads.append(f"{r.goal} @ {h.label} on {r.run['protocol']}{suite}: {100 * r.robust[h].value:.1f}")
        info = rs[0].info
        flag = " (unreliable cells)" if any(r.unreliable for r in rs) else ""
        mrows.append([Cell(m, code=True, suffix=f" ({prof})"), Cell(str(rs[0].run.get("task", ""))), Cell(fmt_params(info.params)),
                      Cell(info.recipe), Cell("; ".join(heads) + flag or "-"),
                      Cell(", ".join(p for _, p in links))])
        mraw.append({"model": m, "profile": prof, "params": info.params, "recipe": info.recipe,
                     "headline robust": "; ".join(heads), "protocols": ", ".join(p for _, p in links)})
    return Table("index-models", "", ["model", "task", "params", "recipe", "headline robust acc (%)", "protocols"],
                 mrows, mraw)
