"""Writing a leaderboard: the pages rendered in one output format (md, html, csv, latex), then written atomically."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.errors import BadInputError
from bench.leaderboard.pages import Options, build_pages
from bench.leaderboard.results import collect_runs
from bench.config import write_atomic
from bench.report import FORMATS, Page, page_markdown, site_html, table_csv, table_latex

HTML_FILE = "leaderboard.html"


@dataclass
class Output:
    """One file of a rendered leaderboard: its path under the output directory and its text or bytes."""

    path: Path
    data: object


def render(pages: list[Page], fmt: str) -> list[Output]:
    """The files of one output format, in memory (paths relative to the output directory)."""
    if fmt == "md":
        out = [Output(Path(f"{p.slug}.md"), page_markdown(p)) for p in pages]
        out += [Output(Path("plots") / f.name, f.png) for p in pages for f in p.figures()]
        return out
    if fmt == "html":
        return [Output(Path(HTML_FILE), site_html("facebench leaderboards", pages))]
    if fmt == "csv":
        return [Output(Path(f"{t.id}.csv"), table_csv(t)) for p in pages for t in p.tables()]
    if fmt == "latex":
        return [Output(Path(f"{t.id}.tex"), table_latex(t)) for p in pages for t in p.tables() if t.rows]
    raise BadInputError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")


def write_leaderboard(store_paths: list[Path], out_dir: Path, fmt: str = "md", examples: bool = False,
                      log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Render the leaderboards of `store_paths` into `out_dir` in format `fmt`; returns the files written.

    Every store is read and every file rendered in memory first: a bad store (or a bad output directory)
    raises before anything is written. Each file is then written atomically (temporary name + rename).
    """
    if fmt not in FORMATS:
        raise BadInputError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"--out {out_dir} exists and is not a directory")
    if not store_paths:
        raise BadInputError("no store given")
    records = collect_runs([Path(p) for p in store_paths], log=log)
    figures = fmt in ("md", "html")
    pages = build_pages(records, [Path(p) for p in store_paths], Options(figures=figures, examples=examples and figures, log=log))
    outputs = render(pages, fmt)
    written = []
    for o in outputs:
        path = out_dir / o.path
        write_atomic(path, o.data)
        written.append(path)
    return written
