"""Executors: where a run's cells are computed (`facebench run --executor local|ray`).

The driver (the `facebench run` process) plans the grid, runs the integrity checks, and is the only
process that writes the store. An executor takes the cells still to compute (`CellJob`s: whole
cells, or shards of a cell's samples with `--shard-size`) and gives back their per-sample arrays:

- `local` computes each job in the driver, in plan order, as soon as it is submitted;
- `ray` turns each job into a Ray task with its resource needs (CPUs, and a GPU per task on a
  cluster that has GPUs). Workers rebuild the run's state (model, data, goal items) from the
  `RunSetup` themselves and keep it for their next job of the same run. A task that raises or whose
  worker dies is retried (`RAY_RETRIES` times), then reported; the run fails with the list of the
  cells it could not compute, after storing every other cell.

A job's result is a pure function of the run setup and the job, so both executors store the same
per-sample results (tests/test_executors.py checks it).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
from typing import Callable

import torch

from bench.compute import CellJob, RunSetup, RunState, ShardOutput, compute_job
from bench.config import resolve_device, seed_everything
from bench.progress import SampleMeter
from bench.runconfig import RunConfig

RAY_RETRIES = 2  # a failed or lost task runs at most 1 + RAY_RETRIES times
LOCAL_RAY_OBJECT_STORE = 512 * 1024**2  # bytes; jobs send back per-sample arrays only, not images


def make_executor(cfg: RunConfig, state: RunState, meter: SampleMeter, log: Callable[[str], None]):
    """The executor `cfg.executor` names (its options were checked by `bench.runconfig.check_executor`)."""
    if cfg.executor == "ray":
        return RayExecutor(cfg, state.setup, log)
    return LocalExecutor(state, meter)


class LocalExecutor:
    """Computes each job in this process when it is submitted (errors propagate: the run fails)."""

    def __init__(self, state: RunState, meter: SampleMeter | None = None) -> None:
        self.state = state
        self.meter = meter
        self._done: list = []

    def submit(self, job: CellJob) -> None:
        self._done.append(compute_job(self.state, job, self.meter))

    def ready(self, block: bool = False) -> list[ShardOutput]:
        out, self._done = self._done, []
        return out

    def pending(self) -> int:
        return len(self._done)

    def failures(self) -> list[str]:
        return []

    def close(self) -> None:
        self._done = []


# ---------------------------------------------------------------------------------------------- ray

_WORKER_STATE: dict[str, object] = {}  # in a Ray worker: the state of the run it last computed for


def _compute_in_worker(key: str, setup: RunSetup, job: CellJob, cwd: str, threads: int) -> ShardOutput:
    """A Ray task: compute one job, building (or reusing) this worker's state of the run."""
    state = _WORKER_STATE.get(key)
    if state is None:
        _WORKER_STATE.clear()  # one run's state per worker keeps its memory bounded
        if os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths of the command line (user models, checkpoints) as in the driver
        torch.set_num_threads(max(1, threads))
        seed_everything(setup.cfg.seed)
        state = RunState(setup, resolve_device(setup.cfg.device))
        _WORKER_STATE[key] = state
    return compute_job(state, job)


class RayExecutor:
    """Jobs as Ray tasks; joins the cluster at `cfg.address` or starts a local Ray."""

    def __init__(self, cfg: RunConfig, setup: RunSetup, log: Callable[[str], None]) -> None:
        import ray

        self.ray = ray
        self.owns = False
        if not ray.is_initialized():
            env = {"TQDM_DISABLE": "1"}  # workers' own bars would interleave with the driver's
            if os.environ.get("FACEBENCH_CACHE"):
                env["FACEBENCH_CACHE"] = os.environ["FACEBENCH_CACHE"]
            quiet = {"runtime_env": {"env_vars": env}, "log_to_driver": False, "logging_level": logging.WARNING}
            if cfg.address:
                ray.init(address=cfg.address, **quiet)
            else:
                ray.init(object_store_memory=LOCAL_RAY_OBJECT_STORE, include_dashboard=False, **quiet)
            self.owns = True
        resources = ray.cluster_resources()
        gpus = cfg.gpus_per_cell if cfg.gpus_per_cell is not None else (1.0 if resources.get("GPU", 0) > 0 else 0.0)
        log(f"ray: {int(resources.get('CPU', 0))} CPUs, {int(resources.get('GPU', 0))} GPUs; "
            f"each task asks for {cfg.cpus_per_cell:g} CPU and {gpus:g} GPU")
        self.remote = ray.remote(_compute_in_worker).options(num_cpus=cfg.cpus_per_cell, num_gpus=gpus,
                                                            max_retries=RAY_RETRIES, retry_exceptions=True)
        blob = pickle.dumps(setup)
        self.key = hashlib.sha256(blob).hexdigest()[:16] + f"-{os.getpid()}"
        self.setup_ref = ray.put(setup)
        self.cwd = os.getcwd()
        self.threads = max(1, int(cfg.cpus_per_cell))
        self.refs: dict = {}
        self._failures: list[str] = []

    def submit(self, job: CellJob) -> None:
        ref = self.remote.remote(self.key, self.setup_ref, job, self.cwd, self.threads)
        self.refs[ref] = job

    def ready(self, block: bool = False) -> list:
        if not self.refs:
            return []
        refs = list(self.refs)
        done, _ = self.ray.wait(refs, num_returns=1, timeout=None if block else 0)
        rest = [r for r in refs if r not in done]
        if done and rest:  # and whatever else has finished meanwhile
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            done = done + more
        out = []
        for ref in done:
            job = self.refs.pop(ref)
            try:
                out.append(self.ray.get(ref))
            except Exception as e:  # the task failed on every try, or its worker was lost each time
                first = str(e).strip().splitlines()
                why = next((line for line in reversed(first) if line.strip()), type(e).__name__)
                shard = f" shard {job.shard + 1}/{job.shards}" if job.shards > 1 else ""
                self._failures.append(f"{job.label}{shard}: {why.strip()} (after {1 + RAY_RETRIES} tries)")
        return out

    def pending(self) -> int:
        return len(self.refs)

    def failures(self) -> list[str]:
        return list(self._failures)

    def close(self) -> None:
        for ref in list(self.refs):
            self.ray.cancel(ref, force=True)
        self.refs.clear()
        if self.owns:
            self.ray.shutdown()

