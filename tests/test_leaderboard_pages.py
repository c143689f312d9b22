"""Extending the leaderboard: a page kind registered for one render, a column added to the goal tables.

Each extension is made in a throwaway way (registered, then the registry restored) so that no other test sees it.
"""
import csv
import re
from dataclasses import dataclass

import numpy as np
import pytest

from bench.leaderboard import write_leaderboard
from bench.leaderboard.pages import PAGES, Board, Options, PageKind, goal_columns, register_page
from bench.leaderboard.pages.columns import Column
from bench.leaderboard.pages.kind import IndexEntry
from bench.report import Cell, Page, Paragraph, Table
from bench.store import CellResult, ResultsStore

SHIPPED = ["fr-verification", "fr-identification", "fas-robustness", "fas-generalization", "attacks"]
N = 8


def _cell_arrays(broken: int) -> dict:
    ok = np.ones(N, dtype=bool)
    return {"sample_id": np.asarray([f"s{i}" for i in range(N)], dtype=object),
            "clean_score": np.linspace(0, 1, N).astype(np.float32), "adv_score": np.linspace(0, 1, N).astype(np.float32),
            "clean_correct": ok, "attacked": ok.copy(), "success": np.arange(N) < broken,
            "linf": np.zeros(N, np.float32), "l2": np.zeros(N, np.float32), "queries": np.ones(N, np.int64)}


@pytest.fixture
def store(tmp_path):
    """Two FR models, each a complete run of dodging at 4/255 and 8/255."""
    path = tmp_path / "s.h5"
    st = ResultsStore(path)
    for model, broken in (("toy-a", 2), ("toy-b", 5)):
        run_id = st.begin_run({"model": model, "task": "fr", "profile": "tiny", "source": "zoo", "protocol": "synth-fr",
                               "suite": "s", "checkpoint": "none", "checkpoint_sha256": f"sha-{model}", "threshold": 0.5,
                               "threshold_rule": "dev FAR=0.001", "command": f"facebench run --model {model}",
                               "config": {"samples": N, "seed": 0}, "device": "cpu"})
        for k, eps in enumerate((4 / 255, 8 / 255)):
            cid = f"{run_id}-{k}"
            config = {"model": model, "goal": "dodging", "attack": "pgd", "norm": "linf", "eps": eps, "params": {}}
            st.write_cell(CellResult(cid, config, _cell_arrays(broken if k else 0), {"n": N, "seconds": 1.0},
                                     {"threshold": 0.5}))
            st.add_cell_to_run(run_id, cid)
        st.finish_run(run_id, "complete")
    return path


@dataclass(frozen=True)
class ToyPage(PageKind):
    """One page listing every model of the board."""

    def build(self, board: Board, options: Options) -> list[Page]:
        models = sorted({r.model for r in board.rows})
        return [Page(self.name, self.title, [Paragraph(f"{len(models)} models."),
                                             Table("toy-models", "", ["model"], [[Cell(m, code=True)] for m in models],
                                                   [{"model": m} for m in models])])]

    def index_entry(self, page: Page, board: Board) -> IndexEntry:
        n = len({r.model for r in board.rows})
        return IndexEntry("fr", "every protocol", str(n), "-", "-", {"models": n})


@pytest.fixture
def toy_page():
    """The toy kind registered after the shipped ones for one test; the registry restored afterwards."""
    saved = dict(PAGES)
    kind = register_page(ToyPage("toy", "A toy page"))
    try:
        yield kind
    finally:
        PAGES.clear()
        PAGES.update(saved)


def test_the_shipped_page_kinds_in_page_order():
    assert list(PAGES) == SHIPPED
    with pytest.raises(ValueError, match="registered twice"):
        register_page(ToyPage("fr-verification", "again"))
    assert list(PAGES) == SHIPPED


def test_a_registered_page_is_written_and_linked_from_the_index(toy_page, store, tmp_path):
    out = tmp_path / "md"
    written = write_leaderboard([store], out, fmt="md", examples=False)
    assert out / "toy.md" in written
    page = (out / "toy.md").read_text()
    assert page.startswith("# A toy page\n") and "2 models." in page and "| `toy-a` |" in page
    index = (out / "README.md").read_text()
    links = re.findall(r"^\| \[([^\]]+)\]\(([^)]+)\)", index, flags=re.M)
    assert links == [("FR verification robustness: synth-fr", "fr-verification-synth-fr.md"), ("A toy page", "toy.md")]
    assert "| [A toy page](toy.md) | fr | every protocol | 2 | - | - |" in index
    write_leaderboard([store], tmp_path / "csv", fmt="csv")
    rows = list(csv.DictReader((tmp_path / "csv" / "index-pages.csv").open()))
    assert rows[-1] == {"page": "toy", "models": "2", "goals": "", "headline": ""}
    assert (tmp_path / "csv" / "toy-models.csv").read_text() == "model\ntoy-a\ntoy-b\n"


def test_the_registry_is_restored_after_the_toy_page(store, tmp_path):
    assert list(PAGES) == SHIPPED
    out = tmp_path / "md"
    write_leaderboard([store], out, fmt="md", examples=False)
    assert not (out / "toy.md").exists() and "toy.md" not in (out / "README.md").read_text()


def test_a_column_is_one_object(monkeypatch, store, tmp_path):
    """A column added to the goal tables shows on their pages and in their csv, where its page kind says."""
    worst = Column("worst budget", lambda t, i, r: Cell(min(r.robust, key=lambda b: r.robust[b].value).label),
                   lambda t, i, r: {"worst budget": min(r.robust, key=lambda b: r.robust[b].value).label},
                   kinds=("fr-verification",))
    cols = list(goal_columns.GOAL_COLUMNS)
    monkeypatch.setattr(goal_columns, "GOAL_COLUMNS", cols[:-1] + [worst] + cols[-1:])
    md = tmp_path / "md"
    write_leaderboard([store], md, fmt="md", examples=False)
    page = (md / "fr-verification-synth-fr.md").read_text()
    assert "| checks | worst budget | run |" in page and "| ok | linf 8/255 |" in page
    write_leaderboard([store], tmp_path / "csv", fmt="csv")
    rows = list(csv.DictReader((tmp_path / "csv" / "fr-verification-synth-fr-dodging.csv").open()))
    assert [r["worst budget"] for r in rows] == ["linf 8/255", "linf 8/255"]
    assert list(rows[0])[-5:] == ["worst budget", "headline budget", "run id", "command", "store"]
