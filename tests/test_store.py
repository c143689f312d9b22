import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import StoreError
from bench.store import SCHEMA_VERSION, TXN_MARK, CellResult, ResultsStore, writer_state
from tests.store_writer import make_cell


def _cell(cid="c1", n=5):
    rng = np.random.default_rng(0)
    arrays = {
        "sample_id": np.asarray([f"s{i}" for i in range(n)], dtype=object),
        "clean_score": rng.normal(size=n).astype(np.float32),
        "adv_score": rng.normal(size=n).astype(np.float32),
        "clean_correct": rng.uniform(size=n) > 0.3,
        "attacked": rng.uniform(size=n) > 0.3,
        "success": rng.uniform(size=n) > 0.5,
        "linf": rng.uniform(size=n).astype(np.float32),
        "l2": rng.uniform(size=n).astype(np.float32),
        "queries": rng.integers(0, 10, size=n),
    }
    config = {"model": "m", "goal": "dodging", "attack": "pgd", "norm": "linf", "eps": 8 / 255, "params": {"steps": 10}}
    return CellResult(cid, config, arrays, {"asr": 0.5, "n": n}, {"run_id": "r"})


def test_round_trip(store_path):
    st = ResultsStore(store_path)
    run_id = st.begin_run({"model": "m", "protocol": "p", "suite": "s", "config": {"a": 1}})
    cell = _cell()
    st.write_cell(cell)
    st.add_cell_to_run(run_id, cell.cell_id)
    st.finish_run(run_id, "complete")
    reopened = ResultsStore(store_path)
    run = reopened.run()
    assert run["run_id"] == run_id and run["status"] == "complete" and run["cell_ids"] == ["c1"]
    back = reopened.read_cells(["c1"])[0]
    for name, arr in cell.arrays.items():
        assert np.array_equal(back.arrays[name], arr), name
    assert back.config == cell.config
    assert back.summary["asr"] == 0.5
    assert reopened.has_cell("c1") and not reopened.has_cell("c2")


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        ResultsStore(tmp_path / "nope" / "x.h5").check_writable()


def test_non_hdf5_file_is_refused_and_untouched(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("not a store")
    with pytest.raises(StoreError, match="not an HDF5 file"):
        ResultsStore(p).check_writable()
    with pytest.raises(StoreError):
        ResultsStore(p).begin_run({"model": "m"})
    assert p.read_text() == "not a store"


def test_newer_schema_is_refused(store_path):
    with h5py.File(store_path, "w") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    before = store_path.read_bytes()
    with pytest.raises(StoreError, match="newer"):
        ResultsStore(store_path).begin_run({"model": "m"})
    assert store_path.read_bytes() == before


def test_foreign_hdf5_is_refused(store_path):
    with h5py.File(store_path, "w") as f:
        f.create_dataset("x", data=[1, 2])
    with pytest.raises(StoreError, match="not a facebench store"):
        ResultsStore(store_path).runs()


# ---------------------------------------------------------------------- transactions
def _snapshot(path):
    st = os.stat(path)
    return path.read_bytes(), st.st_mtime_ns, st.st_ino


def test_transaction_groups_writes_and_rolls_back_on_error(store_path):
    st = ResultsStore(store_path)
    run_id = st.begin_run({"model": "m"})
    a, b = make_cell("t", 0), make_cell("t", 1)
    with st.transaction():
        st.write_cell(a, run_id=run_id)
        assert st.has_cell(a.cell_id) and st.run(run_id)["cell_ids"] == [a.cell_id]  # reads see the transaction
        seen = []
        t = threading.Thread(target=lambda: seen.append(ResultsStore(store_path).has_cell(a.cell_id)))
        t.start()
        t.join()
        assert seen == [False]  # other readers see the store as committed
    assert ResultsStore(store_path).has_cell(a.cell_id)
    before = _snapshot(store_path)
    with pytest.raises(RuntimeError, match="boom"):
        with st.transaction():
            st.write_cell(b, run_id=run_id)
            with st.transaction():  # nested: joins the outer one
                st.finish_run(run_id, "complete")
            raise RuntimeError("boom")
    assert _snapshot(store_path) == before  # nothing of it reached the store
    assert not st.has_cell(b.cell_id) and st.run(run_id)["status"] == "running"
    assert not list(store_path.parent.glob(f".{store_path.name}{TXN_MARK}*"))


def test_invalid_cell_changes_nothing(store_path):
    st = ResultsStore(store_path)
    st.write_cell(make_cell("t", 0))
    before = _snapshot(store_path)
    bad = make_cell("t", 1)
    bad.arrays["linf"] = bad.arrays["linf"][:-1]
    with pytest.raises(ValueError, match="rows"):
        st.write_cell(bad)
    with pytest.raises(StoreError, match="has no run"):
        st.write_cell(make_cell("t", 2), run_id="nope")
    assert _snapshot(store_path) == before


def test_runs_record_their_writer(store_path):
    st = ResultsStore(store_path)
    run = st.run(st.begin_run({"model": "m"}))
    assert run["writer_pid"] == os.getpid() and run["writer_host"] == socket.gethostname()
    assert writer_state(run) == "alive"
    assert writer_state({**run, "writer_pid": 2**22 + 12345}) == "gone"
    assert writer_state({**run, "writer_host": "elsewhere"}) == "unknown"


# ---------------------------------------------------------------------- bad input: one line, file untouched
def _valid_store(path):
    st = ResultsStore(path)
    run_id = st.begin_run({"model": "m"})
    for i in range(3):
        st.write_cell(make_cell("v", i), run_id=run_id)
    return path


def _truncated(path):
    data = _valid_store(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage_after_signature(path):
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + np.random.default_rng(0).bytes(4096))


def _not_hdf5(path):
    path.write_text("sample_id,score\nx,1\n")


def _newer_schema(path):
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
        f.create_group("runs")
        f.create_group("cells")


@pytest.mark.parametrize("make,needle", [
    (_newer_schema, "newer than this facebench"),
    (_not_hdf5, "is not an HDF5 file"),
    (_truncated, "damaged?"),
    (_garbage_after_signature, "damaged?"),
])
def test_bad_store_files_give_one_line_and_stay_untouched(store_path, make, needle):
    make(store_path)
    before = _snapshot(store_path)
    st = ResultsStore(store_path)
    for op in (st.check_writable, st.runs, st.read_cells, lambda: st.has_cell("x"), lambda: st.begin_run({"model": "m"}),
               lambda: st.write_cell(make_cell("t", 0)), lambda: st.finish_run("r", "complete"),
               lambda: st.flag_cell("x", ["r"]), lambda: st.transaction().__enter__()):
        with pytest.raises(StoreError, match=re.escape(needle)) as e:
            op()
        assert "\n" not in str(e.value) and str(store_path) in str(e.value)
    runner = CliRunner()
    for args in (["show", "--store", str(store_path)], ["leaderboard", "--store", str(store_path), "--out", str(store_path.parent / "lb")],
                 ["export", "--store", str(store_path), "--out", str(store_path.parent / "x")]):
        r = runner.invoke(main, args)
        assert r.exit_code == 2 and r.output.count("\n") == 1 and r.output.startswith("facebench: error: "), r.output
        assert needle in r.output
    r = runner.invoke(main, ["store", "verify", "--store", str(store_path)])
    if make is _newer_schema:  # not ours to judge
        assert r.exit_code == 2 and r.output.startswith("facebench: error: ") and needle in r.output
    else:
        assert r.exit_code == 1 and "problem: " in r.output and needle in r.output and "NOT sound" in r.output
    assert _snapshot(store_path) == before
    assert not list(store_path.parent.glob(f".{store_path.name}{TXN_MARK}*"))


# ---------------------------------------------------------------------- verify
def test_verify_a_sound_store(store_path):
    st = ResultsStore(store_path)
    run_id = st.begin_run({"model": "m-v"})
    for i in range(4):
        st.write_cell(make_cell("v", i), run_id=run_id)
    st.finish_run(run_id, "complete")
    open_run = st.begin_run({"model": "m-v"})  # this process is alive: in progress, not stale
    before = _snapshot(store_path)
    rep = st.verify()
    assert rep.sound and not rep.problems and not rep.warnings, (rep.problems, rep.warnings)
    assert rep.schema == "v1.2" and rep.cells == 4 and rep.samples == 800
    assert rep.runs_by_status == {"complete": 1, "running": 1}
    assert rep.cells_by_kind == {("m-v", "dodging", "pgd"): [2, 400], ("m-v", "impersonation", "fgsm"): [2, 400]}
    assert any(open_run in n and "in progress" in n for n in rep.notes)
    r = CliRunner().invoke(main, ["store", "verify", "--store", str(store_path)])
    assert r.exit_code == 0, r.output
    assert "4 cells; 800 samples" in r.output and "is sound" in r.output and "impersonation" in r.output
    assert _snapshot(store_path) == before  # verify changes nothing


def test_verify_reports_what_is_wrong(store_path, tmp_path):
    st = ResultsStore(store_path)
    run_id = st.begin_run({"model": "m-v"})
    cells = [make_cell("v", i) for i in range(6)]
    for c in cells:
        st.write_cell(c, run_id=run_id)
    with h5py.File(store_path, "a") as f:  # damage it the way a buggy or foreign writer could
        g = f["cells"]
        del g[cells[0].cell_id]["linf"]
        del g[cells[1].cell_id]["l2"]
        g[cells[1].cell_id].create_dataset("l2", data=np.zeros(7, np.float32))
        g.move(cells[2].cell_id, "0123456789abcdef0123")
        del g[cells[3].cell_id]["summary"]
        g[cells[4].cell_id]["summary"].attrs["n"] = 5
        g.create_group("_incomplete_feed")
        f["runs"][run_id].attrs["status"] = "paused"
    (store_path.parent / f".{store_path.name}{TXN_MARK}1-deadbeef").write_bytes(b"partial")
    before = _snapshot(store_path)
    rep = st.verify()
    assert not rep.sound
    text = "\n".join(rep.problems)
    assert f"cell {cells[0].cell_id}: missing arrays linf" in text
    assert f"cell {cells[1].cell_id}: arrays of unequal lengths" in text
    assert "cell 0123456789abcdef0123: its config hashes to " + cells[2].cell_id in text
    assert f"cell {cells[3].cell_id}: no summary" in text
    assert f"cell {cells[4].cell_id}: summary n = 5 but 200 samples stored" in text
    assert f"run {run_id}: status 'paused'" in text
    assert f"run {run_id}: lists 1 cell(s) the store lacks" in text  # the renamed one
    assert len(rep.problems) == 7 and rep.cells == 1
    assert any("_incomplete_feed" in w for w in rep.warnings)
    assert any(f"{TXN_MARK}1-deadbeef" in w for w in rep.warnings)
    r = CliRunner().invoke(main, ["store", "verify", "--store", str(store_path)])
    assert r.exit_code == 1 and r.output.count("problem: ") == 7 and "NOT sound: 7 problem(s)" in r.output
    assert _snapshot(store_path) == before
    # the next write cleans the leftovers up
    st.write_cell(make_cell("v", 9))
    rep = st.verify()
    assert not any("leftover" in w for w in rep.warnings)


def test_verify_reports_a_run_whose_writer_is_gone(store_path):
    st = ResultsStore(store_path)
    proc = subprocess.run([sys.executable, "-c", "import sys; from bench.store import ResultsStore; "
                           "ResultsStore(sys.argv[1]).begin_run({'model': 'm'})", str(store_path)],
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    rep = st.verify()
    assert rep.sound and rep.runs_by_status == {"running": 1}
    assert len(rep.warnings) == 1 and "marked running but its writer" in rep.warnings[0] and "is gone" in rep.warnings[0]
    r = CliRunner().invoke(main, ["store", "verify", "--store", str(store_path)])
    assert r.exit_code == 0 and "is gone" in r.output


def test_verify_takes_the_store_as_an_argument(store_path, tmp_path):
    """Issue 20.7: `facebench store verify PATH` (the natural form) checks PATH, as `--store PATH` does."""
    st = ResultsStore(store_path)
    run_id = st.begin_run({"model": "m-v"})
    for i in range(2):
        st.write_cell(make_cell("v", i), run_id=run_id)
    st.finish_run(run_id, "complete")
    runner = CliRunner()
    as_option = runner.invoke(main, ["store", "verify", "--store", str(store_path)])
    as_argument = runner.invoke(main, ["store", "verify", str(store_path)])
    assert as_argument.exit_code == 0, as_argument.output
    assert as_argument.output == as_option.output and "2 cells; 400 samples" in as_argument.output
    both = runner.invoke(main, ["store", "verify", str(store_path), "--store", str(store_path)])
    assert both.exit_code == 0 and both.output == as_option.output
    other = tmp_path / "other.h5"
    r = runner.invoke(main, ["store", "verify", str(store_path), "--store", str(other)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and r.output.startswith("facebench: error: "), r.output
    assert "two stores" in r.output
    r = runner.invoke(main, ["store", "verify", str(tmp_path / "none.h5")])
    assert r.exit_code == 2 and r.output.startswith("facebench: error: ") and "does not exist" in r.output


def test_verify_missing_store_is_an_error(tmp_path):
    r = CliRunner().invoke(main, ["store", "verify", "--store", str(tmp_path / "none.h5")])
    assert r.exit_code == 2 and r.output.startswith("facebench: error: ") and "does not exist" in r.output


def test_damaged_bytes_anywhere_give_store_errors_not_tracebacks(store_path):
    """Garbage over 64 bytes at random places: reading raises StoreError or works; verify reports, never raises."""
    data = _valid_store(store_path).read_bytes()
    rng = np.random.default_rng(1)
    unsound = 0
    for _ in range(60):
        blob = bytearray(data)
        off = int(rng.integers(0, len(data) - 64))
        blob[off:off + 64] = rng.bytes(64)
        store_path.write_bytes(bytes(blob))
        st = ResultsStore(store_path)
        for op in (st.runs, st.read_cells):
            try:
                op()
            except StoreError as e:
                assert "\n" not in str(e)
        unsound += not st.verify().sound
    assert unsound >= 10  # most damage is caught (HDF5 keeps no checksums of raw data, so not all of it)
