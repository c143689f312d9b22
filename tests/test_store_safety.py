"""The store under SIGKILL, concurrent writers and concurrent readers (writers are subprocesses: tests/store_writer.py)."""
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.store import TXN_MARK, ResultsStore
from tests.store_writer import make_cell

ROOT = Path(__file__).resolve().parent.parent
WRITER = ROOT / "tests" / "store_writer.py"


def _spawn(store, tag, cells=50, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WRITER), str(store), "--tag", tag, "--cells", str(cells), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _committed(stdout: str) -> list[str]:
    """Cells the writer reported as committed (complete lines only)."""
    return [line.split()[1] for line in stdout.splitlines(keepends=True) if line.startswith("cell ") and line.endswith("\n")]


def _leftovers(store: Path) -> list[Path]:
    return sorted(store.parent.glob(f".{store.name}{TXN_MARK}*"))


def _check_after_kill(store: Path, tag: str, cells: int, reported: list[str]) -> None:
    """The store opens and verifies; every reported cell is there and whole; the run lists exactly its stored cells."""
    st = ResultsStore(store)
    rep = st.verify()
    assert rep.sound, rep.problems
    expected = [make_cell(tag, i) for i in range(cells)]
    stored = [c.cell_id for c in expected if st.has_cell(c.cell_id)]
    # cells are written in order: the stored ones are the reported ones, plus at most the one in flight
    assert stored[:len(reported)] == reported
    assert len(stored) in (len(reported), len(reported) + 1)
    for back, want in zip(st.read_cells(stored), expected):
        assert back.cell_id == want.cell_id
        for name, arr in want.arrays.items():
            assert np.array_equal(back.arrays[name], arr), name
        assert back.summary["n"] == len(want.arrays["sample_id"])
    (run,) = [r for r in st.runs() if r["model"] == f"m-{tag}"]
    assert run["cell_ids"] == stored  # cell and run entry were one transaction


def test_sigkill_at_random_moments_leaves_a_sound_store(tmp_path):
    store = tmp_path / "s.h5"
    full = _spawn(store, "full", 50)
    assert full.stdout.readline() == "ready\n"
    t0 = time.perf_counter()
    out, err = full.communicate(timeout=120)
    duration = time.perf_counter() - t0  # of the writes alone; later writers are slower (a bigger store)
    assert full.returncode == 0, err
    _check_after_kill(store, "full", 50, _committed(out))
    rng = random.Random(0)
    killed_mid_run = killed_mid_transaction = 0
    for rep in range(10):
        tag = f"k{rep}"
        proc = _spawn(store, tag, 50)
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.9 * duration))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        killed_mid_run += "done" not in out
        killed_mid_transaction += bool(_leftovers(store))
        _check_after_kill(store, tag, 50, _committed(out))
    assert killed_mid_run >= 8, f"only {killed_mid_run} of 10 writers were killed before the end"
    # the next writer removes the working copies of killed ones
    st = ResultsStore(store)
    st.write_cell(make_cell("after", 0))
    assert _leftovers(store) == []
    rep = st.verify()
    assert rep.sound and not any("leftover" in w for w in rep.warnings)
    print(f"killed mid-run {killed_mid_run}/10, mid-transaction {killed_mid_transaction}/10")


@pytest.mark.parametrize("phase,committed,leftover", [("dataset", False, False), ("write", False, True),
                                                       ("replace", False, True), ("renamed", True, False)])
def test_sigkill_at_each_phase_of_a_transaction(tmp_path, phase, committed, leftover):
    """Killed in the 3rd cell's h5py writes (in memory), its file half written, complete but not renamed, renamed:
    that cell is wholly there or wholly absent."""
    store = tmp_path / "s.h5"
    k = {"dataset": 2 * 9 + 4, "write": 3, "replace": 3, "renamed": 3}[phase]  # 9 datasets per cell: the 3rd cell's 4th
    proc = _spawn(store, "p", 10, "--kill-at", f"{phase}:{k}")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    reported = _committed(out)
    assert len(reported) == 2
    _check_after_kill(store, "p", 10, reported)
    third = make_cell("p", 2).cell_id
    assert ResultsStore(store).has_cell(third) is committed
    assert bool(_leftovers(store)) is leftover  # an unfinished new file stays behind, ignored by readers
    before = store.read_bytes()
    assert ResultsStore(store).read_cells() and store.read_bytes() == before  # readers change nothing


def test_two_writers_at_once_both_complete(tmp_path):
    store = tmp_path / "s.h5"
    procs = [_spawn(store, tag, 30) for tag in ("a", "b")]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.rstrip().endswith("done") and len(_committed(out)) == 30
    st = ResultsStore(store)
    runs = st.runs()
    assert sorted(r["status"] for r in runs) == ["complete", "complete"]
    for tag in ("a", "b"):
        (run,) = [r for r in runs if r["model"] == f"m-{tag}"]
        assert run["cell_ids"] == [make_cell(tag, i).cell_id for i in range(30)]
    rep = st.verify()
    assert rep.sound and rep.cells == 60 and not rep.warnings


def test_waiting_writer_says_so_once_and_then_writes(tmp_path):
    store = tmp_path / "s.h5"
    st = ResultsStore(store)
    with st.transaction():
        st.begin_run({"model": "holder"})
        proc = _spawn(store, "w", 3, "--notice", "0.3")
        assert proc.stdout.readline() == "ready\n"
        time.sleep(1.5)  # the writer is blocked on the lock meanwhile
        assert proc.poll() is None
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.rstrip().endswith("done"), err
    notices = [line for line in err.splitlines() if "waiting for the lock" in line]
    assert len(notices) == 1, err
    assert f"waiting for the lock on {store} held by pid {os.getpid()}" in notices[0]
    assert len(st.runs()) == 2


def test_threads_of_one_process_serialise(tmp_path):
    store = tmp_path / "s.h5"
    errors = []

    def write(tag):
        try:
            st = ResultsStore(store)  # one store object per thread
            run_id = st.begin_run({"model": tag})
            for i in range(10):
                st.write_cell(make_cell(tag, i), run_id=run_id)
            st.finish_run(run_id, "complete")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("x", "y", "z")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    rep = ResultsStore(store).verify()
    assert rep.sound and rep.cells == 30 and rep.runs_by_status == {"complete": 3}


def test_readers_work_while_a_run_writes(tmp_path):
    store = tmp_path / "s.h5"
    ResultsStore(store).begin_run({"model": "seed", "protocol": "p", "suite": "s"})
    proc = _spawn(store, "r", 60, "--pause", "0.03")  # a run's pace, so that the reads overlap its writes
    assert proc.stdout.readline() == "ready\n"
    runner = CliRunner()
    seen, reads, partial_views = 0, 0, 0
    st = ResultsStore(store)
    while proc.poll() is None:
        runs = st.runs()  # read before the cells: every cell a run listed then is stored by the time they are read
        cells = st.read_cells()
        assert len(cells) >= seen  # never goes back
        seen = len(cells)
        for c in cells:
            lengths = {len(v) for v in c.arrays.values()}
            assert lengths == {200}, c.cell_id
        for r in runs:
            assert set(r["cell_ids"]) <= {c.cell_id for c in cells}
        partial_views += 0 < seen < 60
        reads += 1
        if reads % 5 == 1:
            for args in (["show", "--all", "--store", str(store)], ["leaderboard", "--store", str(store), "--out", str(tmp_path / "lb")],
                         ["store", "verify", "--store", str(store)]):
                r = runner.invoke(main, args)
                assert r.exit_code == 0, (args, r.output)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert partial_views >= 3, f"only {partial_views} reads happened while the run was writing"
    assert len(ResultsStore(store).read_cells()) == 60
    r = runner.invoke(main, ["leaderboard", "--store", str(store), "--out", str(tmp_path / "lb")])
    assert r.exit_code == 0 and "`m-r`" in (tmp_path / "lb" / "README.md").read_text(), r.output


def test_a_full_disk_fails_one_line_and_leaves_the_store_unchanged(tmp_path):
    """A file size limit stands in for a full disk: the write fails with StoreError, the store and the process stay sound."""
    store = tmp_path / "s.h5"
    script = f"""
import os, resource, signal, sys
from bench.errors import StoreError
from bench.store import ResultsStore
from tests.store_writer import make_cell
st = ResultsStore({str(store)!r})
st.write_cell(make_cell("f", 0))
before = open({str(store)!r}, "rb").read()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 2000, resource.RLIM_INFINITY))
try:
    st.write_cell(make_cell("f", 1, 5000))
except StoreError as e:
    print("error:", e)
assert open({str(store)!r}, "rb").read() == before
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
st.write_cell(make_cell("f", 2))
print("cells", len(st.read_cells()), "sound", st.verify().sound)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"error: cannot update store {store}: ") and "File too large" in lines[0]
    assert "the store is unchanged" in lines[0] and lines[1] == "cells 2 sound True"
    assert _leftovers(store) == []
