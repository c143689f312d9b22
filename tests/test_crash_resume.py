"""A `facebench run` killed with SIGKILL between cells and inside a cell, then resumed: the store
always opens, no completed cell is lost, and the resumed results equal an uninterrupted run's."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore

MODEL = ["--model", "facenet-baseline", "--attack-suite", "quick", "--samples", "16", "--device", "cpu"]
CELLS = 12  # quick suite, FR: 2 goals x 2 attacks x 3 budgets


def start_run(store, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.cli", "run", *MODEL, "--store", str(store), "--json", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def kill_when(proc, event: str, count: int, delay: float = 0.0) -> list[dict]:
    """Read the run's JSON events until the `count`-th `event`, wait `delay` s, SIGKILL it; the events seen."""
    seen, n = [], 0
    for line in proc.stderr:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        seen.append(e)
        if e.get("event") == event:
            n += 1
            if n == count:
                time.sleep(delay)
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return seen


def stored(store) -> dict:
    return {c.cell_id: c for c in ResultsStore(store).read_cells()}


def assert_cells_equal(cell, ref):
    for name, values in ref.arrays.items():
        assert np.array_equal(cell.arrays[name], values), (cell.config["attack"], cell.config["eps"], name)


@pytest.mark.slow
def test_sigkill_between_and_inside_cells_then_resume(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = run_benchmark(RunConfig(model="facenet-baseline", suite="quick", samples=16, device="cpu",
                                      store=str(tmp_path / "ref.h5")), progress=False)
    finally:
        torch.set_num_threads(before)
    reference = stored(tmp_path / "ref.h5")
    assert len(reference) == CELLS and ref.computed == CELLS

    store = tmp_path / "killed.h5"
    kills = [("cell_done", 2, 0.0),      # right after a cell was written: between cells
             ("cell_started", 2, 0.3),   # inside a cell (the third of the run)
             ("cell_started", 3, 0.05)]  # inside a cell, early
    done_before: set = set()
    for event, count, delay in kills:
        seen = kill_when(start_run(store, "--resume"), event, count, delay)
        cells = stored(store)  # opens after every kill
        reported = {e["cell"] for e in seen if e.get("event") == "cell_done"}
        assert len(cells) >= len(done_before) + len([e for e in seen if e.get("event") == "cell_done" and e["status"] == "computed"])
        assert set(cells) <= set(reference)
        for cid, cell in cells.items():  # every stored cell is whole and equals the uninterrupted run's
            assert_cells_equal(cell, reference[cid])
        assert done_before <= set(cells), "a completed cell was lost"
        done_before = set(cells)
        assert reported or event == "cell_started"
    assert 0 < len(done_before) < CELLS
    runs = ResultsStore(store).runs()
    assert len(runs) == 1 and runs[0]["status"] == "running"  # killed: no one could mark it

    proc = start_run(store, "--resume")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out)
    assert summary["reused"] == len(done_before) and summary["computed"] == CELLS - len(done_before)
    runs = ResultsStore(store).runs()
    assert len(runs) == 1 and runs[0]["status"] == "complete" and int(runs[0]["resumed"]) == len(kills)
    assert sorted(runs[0]["cell_ids"]) == sorted(reference)
    final = stored(store)
    assert set(final) == set(reference)
    for cid, cell in final.items():
        assert_cells_equal(cell, reference[cid])
