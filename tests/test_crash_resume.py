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
CELLS = 14  # quick suite, FR: 2 attacks x (4 dodging + 3 impersonation budgets)


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


# ---------------------------------------------------------------------------- SIGTERM and Ctrl-C: marked interrupted

SMALL = "name: small\ngoals: [dodging]\nattacks:\n  - {attack: pgd, norm: linf, eps: [2/255, 4/255, 6/255, 8/255], params: {steps: 20}}\n"


def _interrupt_after_first_cell(monkeypatch, signum):
    """The process receives `signum` right after the run records its first cell (in the main thread, as from outside)."""
    from bench.runner import Run

    record = Run.record
    sent = []

    def record_then_signal(self, *args, **kwargs):
        record(self, *args, **kwargs)
        if not sent:
            sent.append(signum)
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(Run, "record", record_then_signal)


@pytest.mark.parametrize("signum,why,status", [(signal.SIGTERM, "terminated (SIGTERM)", 143),
                                               (signal.SIGINT, "interrupted", 130)])
def test_sigterm_and_ctrl_c_mark_the_run_interrupted_and_say_how_to_resume(tmp_path, monkeypatch, signum, why, status):
    from click.testing import CliRunner

    from bench.cli import main

    from tests.helpers import SMALL_USER_EMBEDDER

    (tmp_path / "small_model.py").write_text(SMALL_USER_EMBEDDER)
    suite = tmp_path / "small.yaml"
    suite.write_text(SMALL)
    store = tmp_path / "r.h5"
    args = ["run", "--model", f"{tmp_path / 'small_model.py'}:build", "--task", "fr", "--attack-suite", str(suite),
            "--samples", "4", "--store", str(store), "-q"]
    def fallback(signum, frame):  # without a handler of the run's own, SIGTERM would end pytest itself
        raise RuntimeError("SIGTERM reached the test's fallback handler: the run installed none")

    original = signal.signal(signal.SIGTERM, fallback)
    # Ctrl-C as at a terminal, even where this process inherited SIGINT ignored (a job started with `&` by a shell
    # without job control), as Python then leaves it ignored
    original_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with monkeypatch.context() as m:
            _interrupt_after_first_cell(m, signum)
            result = CliRunner().invoke(main, args)
        assert signal.getsignal(signal.SIGTERM) is fallback  # the run's SIGTERM handler is gone with the run
    finally:
        signal.signal(signal.SIGTERM, original)
        signal.signal(signal.SIGINT, original_int)
    run = ResultsStore(store).run()
    assert result.exit_code == status, (result.output, result.exception)
    assert result.output.strip().splitlines()[-1] == (
        f"facebench: {why}: run {run['run_id']} is marked interrupted with 1 of 4 cells stored; the same command with "
        "--resume continues it")
    assert run["status"] == "interrupted" and len(run["cell_ids"]) == 1
    resumed = CliRunner().invoke(main, args + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "3 cells computed, 1 reused" in resumed.output
    runs = ResultsStore(store).runs()
    assert len(runs) == 1 and runs[0]["status"] == "complete" and int(runs[0]["resumed"]) == 1


def test_sigterm_handler_is_put_back_after_a_library_replaced_it_and_restored_after():
    """`ray.init` installs its own SIGTERM handler (an exit): the run installs its own again after starting the
    executor, and a SIGTERM then raises `Interrupted` (exit status 143); the previous handler is back afterwards."""
    import time

    from bench.errors import Interrupted
    from bench.runner import StopSignalsAsInterrupt

    before = signal.getsignal(signal.SIGTERM)
    guard = StopSignalsAsInterrupt()
    with pytest.raises(Interrupted) as e:
        with guard:
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # what ray.init does
            guard.install()
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the handler runs in this (the main) thread between two bytecodes
                time.sleep(0.01)
    assert isinstance(e.value, KeyboardInterrupt) and e.value.exit_status == 143
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("signum,message,status", [(signal.SIGTERM, "terminated (SIGTERM)", 143), (signal.SIGINT, "", 130)])
def test_a_signal_dropped_inside_a_finalizer_is_raised_at_the_next_check(monkeypatch, signum, message, status):
    """Python runs the handler between two bytecodes of whatever runs, a garbage collector's finalizer included,
    where the `Interrupted` is printed and dropped ("Exception ignored in ..."): a real run then went on to its end
    and exited 0 (seen once in CI with SIGTERM; Ctrl-C is dropped the same way). `check()`, which the run calls
    between cells, raises it there."""
    import time

    from bench.errors import Interrupted
    from bench.runner import StopSignalsAsInterrupt

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signum)
            for _ in range(100):  # the handler runs here, inside the finalizer
                time.sleep(0.01)

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)  # what prints "Exception ignored in ..."
    original_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal (see above)
    try:
        guard = StopSignalsAsInterrupt()
        with guard:
            guard.check()  # nothing arrived: nothing raised
            Finalized()  # dropped at once: its __del__ runs, and the handler's exception is dropped with it
            assert [type(d.exc_value) for d in dropped] == [Interrupted] and guard.fired == signum
            with pytest.raises(Interrupted) as e:
                guard.check()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, original_int)
    assert e.value.exit_status == status and str(e.value) == message


def test_ctrl_c_is_left_alone_where_it_is_ignored():
    """A job started with `&` by a shell without job control inherits SIGINT ignored: the run keeps it ignored."""
    from bench.runner import StopSignalsAsInterrupt

    original_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignalsAsInterrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, original_int)


@pytest.mark.slow
def test_kill_term_on_a_real_process_then_resume(tmp_path):
    """`kill -TERM` on a running `facebench run`: one line that says how to resume, exit 143, the run marked
    interrupted with its cells kept; `--resume` finishes it under the same run id."""
    suite = tmp_path / "small.yaml"
    suite.write_text(SMALL)
    store = tmp_path / "r.h5"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.cli", "run", "--model", "facenet-baseline", "--attack-suite", str(suite),
           "--samples", "8", "--device", "cpu", "--store", str(store), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        if '"cell_done"' in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 143, rest[-2000:]
    run = ResultsStore(store).run()
    assert run["status"] == "interrupted" and 1 <= len(run["cell_ids"]) < 4
    assert rest.strip().splitlines()[-1] == (
        f"facebench: terminated (SIGTERM): run {run['run_id']} is marked interrupted with {len(run['cell_ids'])} of 4 "
        "cells stored; the same command with --resume continues it")
    assert "Traceback" not in rest
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["run_id"] == run["run_id"] and summary["reused"] == len(run["cell_ids"])
    assert summary["computed"] == 4 - len(run["cell_ids"])
    runs = ResultsStore(store).runs()
    assert len(runs) == 1 and runs[0]["status"] == "complete" and int(runs[0]["resumed"]) == 1
