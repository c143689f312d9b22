"""The per-sample best-known minimal perturbation: derived from every cell of every run of a store (never stored),
in `open_results`, in `facebench export` and in the leaderboard's goal tables (median with a bootstrap interval)."""
import csv

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.metrics import median_interval
from bench.store import CellResult, ResultsStore
from bench.tables import BEST_KNOWN_COLUMNS, open_results
from tests.test_leaderboard import col, md_tables, render, table_under

U = 1 / 255
IDS = [f"g:p{i}|r{i}" for i in range(6)]
SHA = "sha-m"


def _cell(run_id, k, ids, goal, attack, norm, eps, clean, success, linf, l2, min_eps=None, sha=SHA, threshold=0.5,
          model="m", unreliable=""):
    """A cell of hand-written per-sample arrays (clean-wrong samples count as broken and are not attacked)."""
    clean = np.asarray(clean, bool)
    n = len(ids)
    arrays = {"sample_id": np.asarray(ids, dtype=object), "clean_score": np.zeros(n, np.float32),
              "adv_score": np.zeros(n, np.float32), "clean_correct": clean, "attacked": clean.copy(),
              "success": np.asarray(success, bool) | ~clean, "linf": np.asarray(linf, np.float32) * clean,
              "l2": np.asarray(l2, np.float32) * clean, "queries": np.ones(n, np.int64)}
    if min_eps is not None:
        arrays["min_eps"] = np.asarray(min_eps, np.float32)
    config = {"model": model, "profile": "tiny", "checkpoint_sha256": sha, "protocol": "synth-fr", "goal": goal,
              "attack": attack, "backend": "native", "params": {}, "norm": norm, "eps": eps, "samples": n, "seed": k,
              "threshold_rule": "dev FAR=0.001"}
    return CellResult(f"{run_id}-{k}", config, arrays, {"n": n, "seconds": 1.0},
                      {"run_id": run_id, "threshold": threshold}, bool(unreliable), unreliable)


def _run(st, suite, cells_of, sha=SHA, model="m", threshold=0.5):
    run_id = st.begin_run({"model": model, "task": "fr", "profile": "tiny", "source": "zoo", "protocol": "synth-fr",
                           "suite": suite, "checkpoint": "none", "checkpoint_sha256": sha, "threshold": threshold,
                           "threshold_rule": "dev FAR=0.001", "config": {"samples": 6, "seed": 0},
                           "dev_metrics": {"dev_tar": 0.5, "dev_genuine_pairs": 100}, "command": "facebench run"})
    for cell in cells_of(run_id):
        st.write_cell(cell, run_id=run_id)
    st.finish_run(run_id, "complete")
    return run_id


def fixed_budget(run_id):
    """Run 1: PGD at Linf 4/255 and 8/255 on samples 0..5 (sample 5 wrong on clean input)."""
    clean = [True] * 5 + [False]
    return [
        _cell(run_id, 0, IDS, "dodging", "pgd", "linf", 8 * U, clean, [1, 1, 0, 0, 0, 0],
              linf=np.array([8, 7, 8, 8, 8, 0]) * U, l2=[1.0, 0.9, 1.1, 1.2, 1.3, 0]),
        _cell(run_id, 1, IDS, "dodging", "pgd", "linf", 4 * U, clean, [0, 1, 0, 0, 0, 0],
              linf=np.array([4, 3.5, 4, 4, 4, 0]) * U, l2=[0.5, 0.45, 0.5, 0.5, 0.5, 0],
              unreliable="gradients are zero"),
    ]


def minimal(run_id):
    """Run 2 (another `--samples` draw: samples 4, 0, 2, 3, 5, in another order): a min-eps search up to 16/255."""
    ids = [IDS[i] for i in (4, 0, 2, 3, 5)]
    m = np.array([12, 5, 6, np.inf, 0]) * U
    return [_cell(run_id, 0, ids, "dodging", "min-eps", "linf", 16 * U, [1, 1, 1, 1, 0], np.isfinite(m),
                  linf=np.where(np.isfinite(m), m, 16 * U), l2=[1.5, 0.6, 0.7, 2.0, 0], min_eps=m)]


def other_checkpoint(run_id):
    """The same model name and sample ids, other weights: sample 3 broken at 1/255 (must not be combined)."""
    return [_cell(run_id, 0, IDS, "dodging", "pgd", "linf", 1 * U, [True] * 6, [0, 0, 0, 1, 0, 0],
                  linf=np.ones(6) * U, l2=np.ones(6) * 0.1, sha="sha-other")]


def other_threshold(run_id):
    """The same weights at another threshold (another dev split): sample 3 broken, never combined with the others."""
    return [_cell(run_id, 0, IDS, "dodging", "pgd", "linf", 2 * U, [True] * 6, [0, 0, 0, 1, 0, 0],
                  linf=np.ones(6) * 2 * U, l2=np.ones(6) * 0.2, threshold=0.6)]


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "s.h5"
    st = ResultsStore(path)
    first = _run(st, "fixed", fixed_budget)
    second = _run(st, "minimal", minimal)
    _run(st, "retrained", other_checkpoint, sha="sha-other", model="m")
    _run(st, "other-threshold", other_threshold, threshold=0.6)
    return path, first, second


def _of(table, norm, sha=SHA, threshold=0.5):
    t = table[(table.norm == norm) & (table.checkpoint_sha256 == sha) & np.isclose(table.threshold, threshold)]
    return t.set_index("sample_id").loc[IDS]


def test_per_sample_minimum_over_runs_and_its_provenance(store):
    path, first, second = store
    table = open_results(path).best_known
    assert list(table.columns) == BEST_KNOWN_COLUMNS
    linf = _of(table, "linf")
    # s0: PGD-8 measured 8/255, the search 5/255 (exact); s1: PGD-4 measured 3.5/255 (run 1 only, an upper bound);
    # s2: the search 6/255; s3: never broken (searched up to 16/255); s4: 12/255; s5: wrong on clean input (0)
    assert np.allclose(linf.best_eps, np.array([5, 3.5, 6, np.inf, 12, 0]) * U)
    assert linf.exact.tolist() == [True, False, True, False, True, True]
    assert linf.broken.tolist() == [True, True, True, False, True, True]
    assert linf.clean_correct.tolist() == [True] * 5 + [False]
    assert linf.attack.tolist() == ["min-eps", "pgd", "min-eps", "", "min-eps", ""]  # s5: no attack needed
    assert linf.run_id.tolist() == [second, first, second, "", second, ""]
    assert linf.cell_id.iloc[1] == f"{first}-1" and np.isclose(linf.cell_eps.iloc[1], 4 * U)
    assert linf.unreliable.tolist()[:3] == [False, True, False]  # s1's value came from the flagged cell
    assert np.allclose(linf.largest_eps_tried, np.array([16, 8, 16, 16, 16, 0]) * U)  # s5 was never attacked
    assert linf.cells.tolist() == [3, 2, 3, 3, 3, 3]  # s1 is not among the search's samples
    # L2: every success bounds it (measured L2 of the successful perturbation), none is exact: no L2 search
    l2 = _of(table, "l2")
    assert np.allclose(l2.best_eps, [0.6, 0.45, 0.7, np.inf, 1.5, 0])
    assert l2.exact.tolist() == [False, False, False, False, False, True]
    assert (l2.largest_eps_tried == 0).all()
    # other weights and another threshold are separate keys: their sample 3 does not leak into these rows
    assert np.isclose(_of(table, "linf", sha="sha-other").best_eps.loc[IDS[3]], U)
    assert np.isclose(_of(table, "linf", threshold=0.6).best_eps.loc[IDS[3]], 2 * U)
    assert len(table) == 3 * 6 * 2  # 3 keys (weights sha-m at 0.5 and at 0.6, sha-other) x 6 samples x 2 norms


def test_a_run_filter_keeps_that_runs_samples_derived_from_every_run(store):
    path, first, second = store
    table = open_results(path, run=second).best_known
    assert set(table.sample_id) == {IDS[i] for i in (0, 2, 3, 4, 5)} and set(table.checkpoint_sha256) == {SHA}
    s0 = table[(table.norm == "linf") & (table.sample_id == IDS[0])].iloc[0]
    assert np.isclose(s0.best_eps, 5 * U) and s0.cells == 3  # still counts run 1's cells
    only_first = open_results(path, run=first).best_known
    assert np.isclose(only_first[(only_first.norm == "linf") & (only_first.sample_id == IDS[0])].best_eps.iloc[0], 5 * U)


def test_nothing_is_written_into_the_store(store):
    import h5py

    path, *_ = store
    before = path.read_bytes()
    open_results(path)
    assert path.read_bytes() == before
    with h5py.File(path) as f:
        assert all(set(f["cells"][c]) <= {"sample_id", "clean_score", "adv_score", "clean_correct", "attacked",
                                          "success", "linf", "l2", "queries", "min_eps", "summary"} for c in f["cells"])


def test_an_empty_store_has_an_empty_table(tmp_path):
    path = tmp_path / "e.h5"
    ResultsStore(path).begin_run({"model": "m"})
    assert list(open_results(path).best_known.columns) == BEST_KNOWN_COLUMNS and open_results(path).best_known.empty


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_writes_the_best_known_table(store, tmp_path, fmt):
    path, *_ = store
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["export", "--store", str(path), "--format", fmt, "--out", str(out)])
    assert r.exit_code == 0, r.output
    ext = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}[fmt]
    assert f"best_known.{ext} (36 rows)" in r.output
    f = out / f"best_known.{ext}"
    text = {"sample_id": str, "run_id": str, "cell_id": str, "checkpoint_sha256": str}
    back = (pd.read_csv(f, dtype=text) if fmt == "csv" else pd.read_parquet(f) if fmt == "parquet"
            else pd.read_json(f, lines=True, dtype=text))
    assert list(back.columns) == BEST_KNOWN_COLUMNS and len(back) == 36
    linf = _of(back, "linf")
    want = np.array([5, 3.5, 6, np.inf, 12, 0]) * U
    got = pd.to_numeric(linf.best_eps).astype(float).to_numpy()
    if fmt == "json":  # JSON has no infinity: null
        want = np.where(np.isinf(want), np.nan, want)
    assert np.allclose(got, want, equal_nan=True)
    assert linf.exact.astype(bool).tolist() == [True, False, True, False, True, True]


# --------------------------------------------------------------------------- the leaderboard column

def test_metrics_median_interval_is_seeded_and_honest():
    v = np.array([1, 2, 3, 4, np.inf])
    assert median_interval(v) == median_interval(v)  # deterministic
    med, lo, hi = median_interval(v)
    assert med == 3 and 1 <= lo <= med <= hi and hi == np.inf  # resamples with 3 or more infinities
    assert median_interval(np.full(7, 0.25)) == (0.25, 0.25, 0.25)
    med, lo, hi = median_interval(np.arange(1001.0))
    assert med == 500 and 440 < lo < 490 and 510 < hi < 560  # ~ 500 -+ 1.96 * 1.2533 * 289 / sqrt(1001)
    assert all(np.isnan(median_interval([])))


def test_leaderboard_column_median_and_interval(store, tmp_path):
    path, first, second = store
    page = (render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()
    t = table_under(md_tables(page), "dodging")
    rows = {(m, s): dict(zip(t["headers"], r)) for m, s, r in zip(col(t, "model"), col(t, "suite"), t["rows"])}
    assert "median best-known min eps (l2)" not in t["headers"]  # no cell searched or attacked in L2
    h = t["headers"]
    assert h.index("median best-known min eps (linf)") == h.index("clean acc") + 1  # the table leads with it
    # run 1 (fixed budgets): clean-correct s0..s4 -> 5, 3.5, 6, inf, 12 (x 1/255): median 6/255, though run 1 alone
    # only knows PGD's upper bounds (its own min eps column has no search: '-')
    fixed = rows[("m (tiny)", "fixed")]
    med, lo, hi = median_interval(np.array([5, 3.5, 6, np.inf, 12]) * U)
    assert med == pytest.approx(6 * U)
    assert fixed["median best-known min eps (linf)"] == f"6/255 [{lo * 255:.2g}/255, inf]" and hi == np.inf
    assert fixed["median min eps (linf)"] == "-"
    # run 2 (the search): clean-correct s4, s0, s2, s3 -> 12, 5, 6, inf: median 9/255
    searched = rows[("m (tiny)", "minimal")]
    med, lo, hi = median_interval(np.array([12, 5, 6, np.inf]) * U)
    assert searched["median best-known min eps (linf)"] == f"9/255 [{lo * 255:.2g}/255, inf]" and med == pytest.approx(9 * U)
    csv_rows = list(csv.DictReader(open(render(tmp_path, [path], "csv", name="c") / "fr-verification-synth-fr-dodging.csv")))
    r = next(x for x in csv_rows if x["suite"] == "minimal")
    assert float(r["median best-known min eps linf"]) == pytest.approx(9 * U)
    assert float(r["median best-known min eps linf low"]) == pytest.approx(lo) and r["median best-known min eps linf high"] == "inf"
    assert (r["median best-known min eps linf n"], r["median best-known min eps linf exact"],
            r["median best-known min eps linf unbroken"]) == ("4", "3", "1")


def test_an_unbroken_median_says_how_far_it_was_tried(tmp_path):
    path = tmp_path / "s.h5"
    st = ResultsStore(path)
    never = np.array([np.inf, np.inf, np.inf, 2]) * U
    _run(st, "minimal", lambda r: [_cell(r, 0, IDS[:4], "dodging", "min-eps", "linf", 16 * U, [True] * 4,
                                         np.isfinite(never), linf=np.where(np.isfinite(never), never, 0), l2=np.zeros(4),
                                         min_eps=never)])
    t = table_under(md_tables((render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()), "dodging")
    assert col(t, "median best-known min eps (linf)") == ["> 16/255 [2/255, inf]"]


def test_stores_combine_in_the_leaderboard(tmp_path):
    """A search stored in another store of the same weights lowers the first store's row."""
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    _run(ResultsStore(a), "fixed", fixed_budget)
    _run(ResultsStore(b), "minimal", minimal)
    alone = table_under(md_tables((render(tmp_path, [a], name="alone") / "fr-verification-synth-fr.md").read_text()), "dodging")
    both = table_under(md_tables((render(tmp_path, [a, b], name="both") / "fr-verification-synth-fr.md").read_text()), "dodging")
    # alone: 8, 3.5, inf, inf, inf (PGD-8 broke s0, PGD-4 s1): median inf, attacked up to 8/255
    assert col(alone, "median best-known min eps (linf)")[0].startswith("> 8/255 [")
    fixed = dict(zip(col(both, "suite"), col(both, "median best-known min eps (linf)")))["fixed"]
    assert fixed.startswith("6/255 [")
