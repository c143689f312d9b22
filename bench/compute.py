"""Computing cells: the loaded state of a run, the per-goal preparation (clean scores, integrity checks) and the
jobs (a cell, or a shard of one) that the executors run. The run orchestration (bench/runner.py) and the
executors (bench/executors.py) both import this module; it imports neither."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np
import torch

from bench import checks
from bench.batching import BatchSize, auto_batch_size, batched_scores
from bench.cells import CellInputs, CellKind, PlannedCell
from bench.protocols import get_protocol
from bench.metrics import wilson_interval
from bench.planning import shard_seed
from bench.precision import attack_model, fast_view, prepare_model, resolve_forward
from bench.progress import SampleMeter
from bench.runconfig import RunConfig
from bench.tasks import Task
from bench.tasks.items import GoalItems
from models_zoo.factory import DEFAULT_PROFILE, LoadedModel, create_model, load_model, resolve_model

CHECK_SAMPLES = 128  # at most this many clean-correct items (one batch) go through the per-goal integrity checks


def summarise(arrays: dict, seconds: float) -> dict:
    """Clean and robust accuracy, and the attack success rate with its 95 % Wilson interval."""
    n = len(arrays["success"])
    attacked = arrays["attacked"]
    n_att = int(attacked.sum())
    k = int(arrays["success"][attacked].sum())
    robust = int((~arrays["success"]).sum())
    asr_lo, asr_hi = wilson_interval(k, n_att)
    rob_lo, rob_hi = wilson_interval(robust, n)
    return {
        "n": n,
        "n_attacked": n_att,
        "clean_accuracy": float(arrays["clean_correct"].mean()) if n else float("nan"),
        "robust_accuracy": robust / n if n else float("nan"),
        "robust_low": rob_lo,
        "robust_high": rob_hi,
        "asr": k / n_att if n_att else float("nan"),
        "asr_low": asr_lo,
        "asr_high": asr_hi,
        "median_linf": float(np.median(arrays["linf"][attacked])) if n_att else float("nan"),
        "mean_queries": float(arrays["queries"][attacked].mean()) if n_att else 0.0,
        "seconds": round(seconds, 3),
        **({"median_min_eps": float(np.median(arrays["min_eps"][attacked])) if n_att else float("nan")}
           if "min_eps" in arrays else {}),
    }


@dataclass
class PreparedGoal:
    """A goal's items with their clean scores, what the attacks see, and the per-goal integrity checks."""

    items: GoalItems
    clean: torch.Tensor
    attack_task: Task
    eot: int
    checks: list[checks.CheckResult]

    def reasons(self) -> list[str]:
        """Why this goal's cells are unreliable (a random forward pass handled by EOT is not a reason)."""
        return [c.detail for c in self.checks if not c.passed and not (c.name == "deterministic" and self.eot > 1)]


def prepare_goal(items: GoalItems, model: torch.nn.Module, eot: Optional[int], batch_size: "int | BatchSize", seed: int,
                 view: Callable[[Task], Task] = lambda t: t) -> PreparedGoal:
    """Clean scores, then the checks on the clean batch before any attack: determinism (EOT if needed),
    eval mode, finite non-zero gradients and success at a large budget. `view` makes the attacks' view of
    the task (the fast forward path, bench/precision.py); the checks run on that view."""
    task, x = items.task, items.x
    clean = batched_scores(task, x, batch_size)
    size = min(BatchSize.of(batch_size).size, CHECK_SAMPLES)
    todo = (~task.broken_on_clean(clean)).nonzero().squeeze(1)[:size]
    if todo.numel() == 0:
        todo = torch.arange(min(len(task), size), device=x.device)
    sub, xb = task.subset(todo), x[todo]
    det = checks.check_determinism(sub, xb)
    k = eot if eot is not None else (1 if det.passed else checks.EOT_SAMPLES)
    if not det.passed:
        det.detail += (f"; EOT over {k} samples applied to the attack gradients" if k > 1 else "; EOT disabled (eot=1)")
    attack_task = view(checks.EOTTask(task, k) if k > 1 else task)
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)
    results = [det, checks.check_gradients(attack_task.subset(todo), xb),
               checks.check_large_eps(attack_task.subset(todo), xb, gen)]
    results.append(checks.check_eval_mode(model))  # after the forwards: a model that switches itself to train is caught
    return PreparedGoal(items, clean, attack_task, k, results)


@dataclass
class RunSetup:
    """What any process needs to rebuild a run's state and compute its cells (picklable, sent to workers).

    `cfg` is resolved (profile, input size and task filled in); `threshold` is the operating threshold
    the driver measured on the dev split, so workers judge with exactly the driver's.
    """

    cfg: RunConfig
    threshold: float
    sources: tuple[str, ...] = ()  # transfer source models (zoo variants)
    fold_thresholds: tuple[float, ...] = ()  # k-fold protocols: each fold's threshold (index = fold)

    @property
    def thresholds(self) -> "float | tuple[float, ...]":
        """What a protocol's `goal_items` judges at: the fold thresholds where there are, else the threshold."""
        return self.fold_thresholds or self.threshold


class RunState:
    """The loaded state cells are computed from: the model under test, its protocol and threshold, the
    items of each goal (built once and reused by every cell of the goal) and the transfer source models.

    The driver builds one around the model it has already loaded and checked; each Ray worker builds its
    own from the same `RunSetup` (and keeps it for the next cell of the same run).
    """

    def __init__(self, setup: RunSetup, device: torch.device, loaded: Optional[LoadedModel] = None) -> None:
        self.setup = setup
        self.cfg = setup.cfg
        self.device = device
        self.mut = resolve_model(self.cfg.model, self.cfg.task, self.cfg.profile, self.cfg.input_size, self.cfg.name,
                                 self.cfg.preprocess)
        self.loaded = loaded or load_model(self.mut, self.cfg.checkpoint, device, seed=self.cfg.seed,
                                           flip_tta=self.cfg.flip_tta)
        self.forward = resolve_forward(self.cfg.precision, self.cfg.channels_last, self.cfg.compile, device, self.cfg.fold_bn)
        example = torch.rand((4, 3, self.mut.input_size, self.mut.input_size), generator=torch.Generator().manual_seed(0))
        self.folded = attack_model(self.loaded.module, self.forward, example.to(device))
        self.loaded = replace(self.loaded, module=prepare_model(self.loaded.module, self.forward))
        self.protocol = get_protocol(self.cfg.protocol or self.mut.default_protocol)
        self.batch = (BatchSize(self.cfg.batch_size) if self.cfg.batch_size is not None
                      else auto_batch_size(device, self.cfg.samples))
        self.goals: dict[str, PreparedGoal] = {}
        # budgets together: cell id -> (arrays, seconds) computed with a sibling budget, or None: compute it alone
        self.together: dict[str, Optional[tuple[dict, float]]] = {}
        self.source_loaded: dict[str, LoadedModel] = {}
        self.source_items: dict[tuple[str, str], GoalItems] = {}

    def items(self, goal: str) -> GoalItems:
        return self.protocol.goal_items(goal, self.loaded.module, self.setup.thresholds, self.cfg.samples, self.cfg.seed,
                                        self.mut.input_size, self.device)

    def prepared(self, goal: str, eot: Optional[int] = None, run_checks: bool = False) -> PreparedGoal:
        """A goal's items, clean scores and attack view. With `run_checks` (the driver), the integrity checks
        run first and decide EOT (unless forced); a worker is told the driver's EOT and runs no checks."""
        if goal not in self.goals:
            items = self.items(goal)
            if run_checks:
                self.goals[goal] = prepare_goal(items, self.loaded.module, eot, self.batch, self.cfg.seed, self.view)
            else:
                k = eot or 1
                clean = batched_scores(items.task, items.x, self.batch)
                self.goals[goal] = PreparedGoal(items, clean, self.view(checks.EOTTask(items.task, k) if k > 1 else items.task),
                                                k, [])
        return self.goals[goal]

    def view(self, task: Task) -> Task:
        """What the attacks see: the task on the run's fast forward path (the BatchNorm-folded copy of the
        model, bf16 autocast, channels_last); decisions are made on `task` itself."""
        return fast_view(task, self.forward, self.device, self.folded.module)

    def source(self, name: str, goal: str) -> tuple[LoadedModel, GoalItems]:
        """A transfer source model (loaded once) and its view of the goal's items."""
        if name not in self.source_loaded:
            profile = self.mut.profile if self.mut.source == "zoo" else DEFAULT_PROFILE
            self.source_loaded[name] = create_model(name, self.device, profile=profile)
        key = (name, goal)
        if key not in self.source_items:
            self.source_items[key] = self.protocol.goal_items(goal, self.source_loaded[name].module, self.setup.thresholds,
                                                              self.cfg.samples, self.cfg.seed, self.mut.input_size,
                                                              self.device)
        return self.source_loaded[name], self.source_items[key]


@dataclass
class CellJob:
    """A unit of work: one cell, or one shard (a contiguous range of the goal's items) of a cell."""

    index: int  # the cell's position in the plan
    cell_id: str
    cell: PlannedCell
    seed: int
    eot: int
    label: str
    shard: int = 0
    shards: int = 1
    start: int = 0
    stop: int = -1  # -1: every item
    # budgets together: (cell id, eps, seed) of every cell of this attack still to compute (this one included);
    # the first of them computed computes them all and keeps the others for their own jobs (RunState.together)
    together: tuple = ()


@dataclass
class ShardOutput:
    """What computing a job gives back: per-sample arrays (numpy) and the cell attributes it measured."""

    index: int
    cell_id: str
    shard: int
    arrays: dict
    attrs: dict
    seconds: float


def compute_job(state: RunState, job: CellJob, meter: Optional[SampleMeter] = None) -> ShardOutput:
    """Compute one cell or shard on `state`; a pure function of the run setup and the job. The cell's kind computes
    it (`CellKind.compute`)."""
    pc = job.cell
    prep = state.prepared(pc.goal, job.eot)
    items, clean, attack_task = prep.items, prep.clean, prep.attack_task
    if job.shards > 1:
        stop = len(items.sample_ids) if job.stop < 0 else job.stop
        items = items.shard(job.start, stop)
        idx = torch.arange(job.start, stop, device=clean.device)
        clean, attack_task = clean[idx], attack_task.subset(idx)
    start = time.perf_counter()
    if meter is not None:
        meter.start(job.label, int((~items.task.broken_on_clean(clean)).sum()))
    inputs = CellInputs(pc, items, clean, attack_task, state.batch, shard_seed(job.seed, job.shard, job.shards), meter,
                        state, job)
    out = pc.entry.compute(inputs)
    seconds = out.seconds if out.seconds is not None else time.perf_counter() - start
    return ShardOutput(job.index, job.cell_id, job.shard, out.arrays, out.attrs, seconds)


def merge_shards(kind: type[CellKind], outputs: list[ShardOutput]) -> tuple[dict, dict, float]:
    """One cell's arrays, measured attributes and compute seconds from its shards (in shard order): per-sample
    arrays concatenated, attributes combined as the cell's kind declares (`CellKind.merge`)."""
    outputs = sorted(outputs, key=lambda o: o.shard)
    arrays = {k: np.concatenate([o.arrays[k] for o in outputs]) for k in outputs[0].arrays}
    return arrays, kind.merge_attrs([o.attrs for o in outputs]), sum(o.seconds for o in outputs)
