"""The store as pandas tables: open_results and `facebench export` (csv, parquet, JSON Lines)."""
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.store import OPTIONAL_ARRAYS, SAMPLE_ARRAYS, ResultsStore
from bench.tables import open_results
from tests.store_writer import make_cell

ID_COLUMNS = ["cell_id", "run_id", "model", "profile", "protocol", "goal", "attack", "backend", "norm", "eps", "unreliable"]


@pytest.fixture
def store(store_path):
    st = ResultsStore(store_path)
    first = st.begin_run({"model": "m-e", "protocol": "synth-fr", "suite": "quick", "status_note": "x"})
    cells = [make_cell("e", i, n=20 + i) for i in range(3)]
    cells[1].arrays["min_eps"] = np.array([0.0, np.inf] + [0.01 * k for k in range(19)], dtype=np.float32)
    cells[2].arrays["stage"] = np.arange(22, dtype=np.int16) % 3
    cells[2].unreliable, cells[2].unreliable_reason = True, "gradient masking"
    for c in cells:
        c.attrs["run_id"] = first
        st.write_cell(c, run_id=first)
    st.finish_run(first, "complete", {"cells_computed": 3})
    second = st.begin_run({"model": "../mine/tinyfr.py:build", "source": "user", "protocol": "synth-fr", "suite": "quick",
                           "parameters": 1234})
    st.add_cell_to_run(second, cells[0].cell_id)  # reused by a later run
    return store_path, cells, first, second


def test_open_results_tables(store):
    path, cells, first, second = store
    res = open_results(path)
    s = res.samples
    assert list(s.columns) == ID_COLUMNS + list(SAMPLE_ARRAYS) + list(OPTIONAL_ARRAYS)
    assert len(s) == 20 + 21 + 22
    for c in cells:
        rows = s[s.cell_id == c.cell_id]
        assert len(rows) == len(c.arrays["sample_id"])
        assert (rows.run_id == first).all() and (rows.goal == c.config["goal"]).all()
        assert np.allclose(rows.eps, c.config["eps"]) and (rows.unreliable == c.unreliable).all()
        for name in SAMPLE_ARRAYS:
            assert np.array_equal(rows[name].to_numpy(), np.asarray(c.arrays[name]).astype(rows[name].dtype)), name
    m = s[s.cell_id == cells[1].cell_id].min_eps.to_numpy()
    assert m[0] == 0 and np.isinf(m[1])
    assert s[s.cell_id == cells[0].cell_id].min_eps.isna().all()  # a cell without the array: NaN
    assert s[s.cell_id == cells[2].cell_id].stage.tolist() == [k % 3 for k in range(22)]
    assert s[s.cell_id == cells[0].cell_id].stage.isna().all() and str(s.stage.dtype) == "Int16"
    assert s.clean_score.dtype == np.float32 and s.success.dtype == bool and s.queries.dtype == np.int64

    summ = res.summary.set_index("cell_id")
    assert len(summ) == 3 and summ.loc[cells[2].cell_id, "unreliable_reason"] == "gradient masking"
    assert summ.loc[cells[1].cell_id, "n"] == 21 and json.loads(summ.loc[cells[0].cell_id, "params"]) == {"steps": 10}
    runs = res.runs.set_index("run_id")
    assert runs.loc[first, "status"] == "complete" and runs.loc[first, "cells"] == 3
    assert runs.loc[second, "status"] == "running" and runs.loc[second, "cells"] == 1
    # the name `facebench check` knows a model by (derived for a run stored without one) and its parameters
    assert (runs.loc[first, "model_name"], runs.loc[second, "model_name"]) == ("m-e", "tinyfr:build")
    assert runs.loc[second, "parameters"] == 1234 and np.isnan(runs.loc[first, "parameters"])

    only = open_results(path, run=second)
    assert set(only.samples.cell_id) == {cells[0].cell_id} and len(only.summary) == 1 and len(only.runs) == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_round_trip(store, tmp_path, fmt):
    path, cells, first, _ = store
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["export", "--store", str(path), "--format", fmt, "--out", str(out)])
    assert r.exit_code == 0, r.output
    ext = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}[fmt]
    tables = ("samples", "summary", "runs", "best_known")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.{ext}" for t in tables)
    assert "samples" in r.output and "63 rows" in r.output
    text = {"cell_id": str, "sample_id": str, "run_id": str}
    want = open_results(path)
    for table in tables:
        f = out / f"{table}.{ext}"
        if fmt == "csv":
            back = pd.read_csv(f, dtype=text)
        elif fmt == "parquet":
            back = pd.read_parquet(f)
        else:
            back = pd.read_json(f, lines=True, dtype=text)
        expected = getattr(want, table)
        assert list(back.columns) == list(expected.columns) and len(back) == len(expected)
        for col in expected.columns:
            e, b = expected[col], back[col]
            if pd.api.types.is_numeric_dtype(e) and not pd.api.types.is_bool_dtype(e):
                ev = e.astype("float64").to_numpy()
                bv = pd.to_numeric(b, errors="coerce").astype("float64").to_numpy()
                if fmt == "json":  # JSON has no infinity: it becomes null, as NaN does
                    ev = np.where(np.isinf(ev), np.nan, ev)
                assert np.allclose(ev, bv, equal_nan=True, rtol=1e-6), (table, col)
            elif pd.api.types.is_bool_dtype(e):
                assert b.astype(bool).tolist() == e.tolist(), (table, col)
            else:  # text: csv and json read an empty string back as missing
                assert [("" if v is None or v != v else str(v)) for v in b] == e.astype(str).tolist(), (table, col)
    if fmt == "parquet":  # parquet keeps the dtypes
        back = pd.read_parquet(out / "samples.parquet")
        assert back.clean_score.dtype == np.float32 and str(back.stage.dtype) == "Int16" and np.isinf(back.min_eps).sum() == 1


def test_export_errors_are_one_line(store, tmp_path):
    path, *_ = store
    r = CliRunner().invoke(main, ["export", "--store", str(tmp_path / "none.h5"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.startswith("facebench: error: ") and r.output.count("\n") == 1
    assert "does not exist" in r.output and not (tmp_path / "o").exists()
    r = CliRunner().invoke(main, ["export", "--store", str(path), "--out", str(tmp_path / "o"), "--run", "nope"])
    assert r.exit_code == 2 and "has no run 'nope'" in r.output


def test_open_results_of_an_empty_store(store_path):
    ResultsStore(store_path).begin_run({"model": "m"})
    res = open_results(store_path)
    assert len(res.samples) == 0 and len(res.summary) == 0 and len(res.runs) == 1
    assert "cell_id" in res.samples.columns and "cell_id" in res.summary.columns
