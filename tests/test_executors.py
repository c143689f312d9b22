"""Executors: a Ray run (local Ray, 2 CPUs) stores exactly the local executor's per-sample results;
failed tasks are retried, then reported; shards merge into one cell; runs resume."""
import json
import os
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench import executors as executors_mod
from bench.cli import main
from bench.errors import BadInputError, CellFailedError
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore

ray = pytest.importorskip("ray")


def arrays_by_cell(path):
    return {c.cell_id: c for c in ResultsStore(path).read_cells()}


def assert_same_results(a_path, b_path):
    a, b = arrays_by_cell(a_path), arrays_by_cell(b_path)
    assert a and set(a) == set(b)
    for cid, cell in a.items():
        assert set(cell.arrays) == set(b[cid].arrays)
        for name, values in cell.arrays.items():
            assert np.array_equal(values, b[cid].arrays[name]), (cell.config["attack"], cell.config["eps"], name)
        assert cell.summary["robust_accuracy"] == b[cid].summary["robust_accuracy"]


@pytest.fixture
def one_thread():
    """Ray workers run one thread per CPU asked for; the local reference must too (the float reductions
    of a convolution depend on the thread count, see docs/scaling.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_ray_run_with_shards_stores_the_local_per_sample_results(tmp_path, one_thread):
    local, remote = tmp_path / "local.h5", tmp_path / "ray.h5"
    common = ["run", "--model", "depth-gan-spoof", "--samples", "24", "--shard-size", "10", "--device", "cpu", "-q"]
    out = CliRunner().invoke(main, common + ["--store", str(local)])
    assert out.exit_code == 0, out.output
    assert not ray.is_initialized()
    out = CliRunner().invoke(main, common + ["--store", str(remote), "--executor", "ray"])
    assert out.exit_code == 0, out.output
    assert not ray.is_initialized()  # the Ray it started is shut down
    assert_same_results(local, remote)
    run = ResultsStore(remote).run()
    assert run["status"] == "complete" and run["executor"] == "ray" and int(run["cells_computed"]) == 8
    for cell in ResultsStore(remote).read_cells():
        assert cell.config["shard_size"] == 10 and len(cell.arrays["sample_id"]) == 24  # 3 shards, one cell


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs whose workers (only they) see FACEBENCH_TEST_WORKER."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2, log_to_driver=False,
             runtime_env={"env_vars": {"FACEBENCH_CACHE": os.environ["FACEBENCH_CACHE"], "TQDM_DISABLE": "1",
                                       "FACEBENCH_TEST_WORKER": "1"}})
    yield
    ray.shutdown()


def test_ray_cells_as_tasks_match_local_on_a_zoo_fr_model(tmp_path, local_ray, one_thread):
    cfg = dict(model="facenet-baseline", suite="quick", samples=12, device="cpu")
    run_benchmark(RunConfig(**cfg, store=str(tmp_path / "local.h5")), progress=False)
    out = run_benchmark(RunConfig(**cfg, store=str(tmp_path / "ray.h5"), executor="ray"), progress=False)
    assert out.computed == 14 and ray.is_initialized()  # a Ray it did not start is left running
    assert_same_results(tmp_path / "local.h5", tmp_path / "ray.h5")


FLAKY_MODEL = """
import os
import torch
from torch import nn

STATE = {state!r}


class Liveness(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 5, stride=4)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        if os.environ.get("FACEBENCH_TEST_WORKER"):  # only inside Ray tasks
            once, always = os.path.join(STATE, "fail-once"), os.path.join(STATE, "fail-always")
            if os.path.exists(always):
                with open(os.path.join(STATE, "attempts"), "a") as f:
                    f.write("attempt\\n")
                raise RuntimeError("injected failure")
            if os.path.exists(once):
                os.remove(once)
                raise RuntimeError("injected failure, once")
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3))).squeeze(1)


def build():
    return Liveness()
"""


@pytest.fixture
def flaky(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    path = tmp_path / "flaky.py"
    path.write_text(textwrap.dedent(FLAKY_MODEL.format(state=str(state))))
    suite = tmp_path / "one.yaml"
    suite.write_text("attacks:\n  - attack: pgd\n    params: {steps: 3}\n    eps: [4/255]\n")
    return dict(model=f"{path}:build", task="fas", suite=str(suite), samples=8, device="cpu", executor="ray"), state


def test_a_failed_task_is_retried(tmp_path, local_ray, flaky):
    cfg, state = flaky
    (state / "fail-once").write_text("")
    out = run_benchmark(RunConfig(**cfg, store=str(tmp_path / "r.h5")), progress=False)
    assert out.computed == 1 and not (state / "fail-once").exists()  # the first try failed, the retry stored it
    assert ResultsStore(tmp_path / "r.h5").run()["status"] == "complete"


def test_a_task_that_keeps_failing_is_reported_not_dropped(tmp_path, local_ray, flaky):
    cfg, state = flaky
    (state / "fail-always").write_text("")
    store = tmp_path / "r.h5"
    with pytest.raises(CellFailedError, match=r"1 cell\(s\) failed.*spoof-to-live pgd linf 4/255.*injected failure.*3 tries"):
        run_benchmark(RunConfig(**cfg, store=str(store)), progress=False)
    assert len((state / "attempts").read_text().splitlines()) == 3  # 1 try + 2 retries
    run = ResultsStore(store).run()
    assert run["status"] == "failed" and "CellFailedError" in run["error"]
    assert ResultsStore(store).read_cells() == []


def test_resume_continues_the_interrupted_run_and_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    cfg = dict(model="depth-gan-spoof", samples=16, device="cpu")
    run_benchmark(RunConfig(**cfg, store=str(tmp_path / "whole.h5")), progress=False)
    store = tmp_path / "r.h5"
    real, calls = executors_mod.compute_job, []

    def interrupted(state, job, meter=None):
        calls.append(job.cell_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(state, job, meter)

    monkeypatch.setattr(executors_mod, "compute_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(RunConfig(**cfg, store=str(store)), progress=False)
    first = ResultsStore(store).run()
    assert first["status"] == "interrupted" and len(first["cell_ids"]) == 2
    monkeypatch.setattr(executors_mod, "compute_job", real)
    out = run_benchmark(RunConfig(**cfg, store=str(store), resume=True), progress=False)
    assert out.run_id == first["run_id"] and (out.reused, out.computed) == (2, 6)
    runs = ResultsStore(store).runs()
    assert len(runs) == 1 and runs[0]["status"] == "complete" and int(runs[0]["resumed"]) == 1
    assert len(runs[0]["cell_ids"]) == 8
    assert_same_results(tmp_path / "whole.h5", store)
    # nothing left to resume: a new run, every cell reused
    again = run_benchmark(RunConfig(**cfg, store=str(store), resume=True), progress=False)
    assert again.run_id != first["run_id"] and (again.reused, again.computed) == (8, 0)


def test_json_progress_lines_and_summary(tmp_path):
    out = CliRunner().invoke(main, ["run", "--model", "depth-gan-spoof", "--samples", "8", "--device", "cpu",
                                                    "--store", str(tmp_path / "r.h5"), "--json"])
    assert out.exit_code == 0, out.stderr
    events = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    done = [e for e in events if e["event"] == "cell_done"]
    assert [e["done"] for e in done] == list(range(1, 9)) and all(e["total"] == 8 for e in done)
    assert all(e["eta_s"] is not None and e["samples_per_s"] > 0 for e in done)
    assert done[-1]["eta_s"] == 0
    assert any(e["event"] == "log" and "threshold" in e["message"] for e in events)
    assert events[-1]["event"] == "run_done"
    summary = json.loads(out.stdout)
    assert summary["computed"] == 8 and len(summary["cells"]) == 8


@pytest.mark.parametrize("options, message", [
    (dict(shard_size=0), "--shard-size must be at least 1"),
    (dict(address="auto"), "--address applies to --executor ray only"),
    (dict(executor="dask"), "unknown executor 'dask'"),
    (dict(executor="ray", cpus_per_cell=0), "--cpus-per-cell must be positive"),
])
def test_bad_execution_options_are_refused_before_any_work(tmp_path, options, message):
    store = tmp_path / "r.h5"
    with pytest.raises(BadInputError, match=message):
        run_benchmark(RunConfig(model="depth-gan-spoof", samples=4, store=str(store), **options), progress=False)
    assert not store.exists()


def test_if_needed_records_nothing_when_a_complete_run_holds_every_cell(tmp_path):
    import hashlib

    store = tmp_path / "r.h5"
    first = run_benchmark(RunConfig(model="depth-gan-spoof", samples=8, device="cpu", store=str(store)), progress=False)
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    again = run_benchmark(RunConfig(model="depth-gan-spoof", samples=8, device="cpu", store=str(store), if_needed=True,
                                    command="facebench run ... --if-needed"), progress=False)
    assert again.run_id == first.run_id and (again.computed, again.reused) == (0, 8)
    assert [s["cell_id"] for s in again.summaries] == [s["cell_id"] for s in first.summaries]
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest  # not even a run record was added
    other = run_benchmark(RunConfig(model="depth-gan-spoof", samples=9, device="cpu", store=str(store), if_needed=True),
                          progress=False)
    assert other.run_id != first.run_id and other.computed == 8  # another configuration is computed as usual
