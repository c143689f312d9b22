"""The grid runner: a run config becomes cells; each cell is computed (or reused) and stored."""
from __future__ import annotations

import json
import platform
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from bench.precision import PRECISIONS, attack_model, fast_view, prepare_model, resolve_forward
from bench.progress import SampleMeter

from attacks import Attack, make_attack
from attacks.base import SegmentGenerators
from attacks.suites import CascadeEntry, Suite, TransferEntry, load_suite
from bench import __version__
from bench.config import format_eps, resolve_device, seed_everything
from bench.protocols import Protocol, get_protocol
from bench.conventions import check_model_outputs
from bench.errors import BadInputError, CellFailedError
from bench.evaluation import images_to_tensor
from bench.metrics import wilson_interval
from bench.store import DEFAULT_STORE, CellResult, ResultsStore, cell_id_of
from bench import checks
from bench.goals import GOALS, default_goals
from bench.tasks import IdentificationTask, Task
from bench.batching import BatchSize, auto_batch_size, batched_scores
from bench.tasks.items import GoalItems
from models_zoo.checkpoint import read_card, shipped_weights
from models_zoo.factory import LoadedModel, ModelUnderTest, create_model, load_model, resolve_model, zoo_source
from models_zoo.user import FACTORY_WEIGHTS

BUDGET_TOLERANCE = 1e-5
VERSIONED = ("torch", "timm", "numpy", "h5py", "adversarial-robustness-toolbox", "foolbox", "torchattacks")
CHECK_BATCH = 8  # images of the dev split that every model's outputs are checked on before any attack
CHECK_SAMPLES = 128  # at most this many clean-correct items (one batch) go through the per-goal integrity checks


@dataclass
class RunConfig:
    """Everything that defines a run; stored as JSON with it."""

    model: str
    suite: str = "quick"
    protocol: Optional[str] = None
    samples: int = 200
    seed: int = 0
    device: str = "auto"
    store: str = "results/facebench.h5"
    checkpoint: Optional[str] = None
    profile: Optional[str] = None  # zoo variants: tiny (default) or paper; not for user models
    batch_size: Optional[int] = None  # None: automatic (BatchSize: 128 on CPU, the largest that fits on CUDA)
    command: str = ""
    task: Optional[str] = None  # required for a user model (`module:function`); checked against a zoo variant's
    input_size: Optional[int] = None  # user models: default 64; zoo variants: their profile's size
    eot: Optional[int] = None  # EOT samples for gradients: None = 8 only when the forward pass is random; 1 = never
    shard_size: Optional[int] = None  # split each cell into shards of this many samples (None: a cell is one unit)
    executor: str = "local"  # "local" or "ray" (bench/executors.py)
    address: Optional[str] = None  # ray: the cluster to join ("auto", HOST:PORT); None starts a local Ray
    cpus_per_cell: float = 1.0  # ray: CPUs each cell (or shard) task asks for
    gpus_per_cell: Optional[float] = None  # ray: GPUs each task asks for; None: 1 when the cluster has GPUs, else 0
    resume: bool = False  # continue the newest unfinished run of this configuration in the store
    precision: str = "fp32"  # the attacks' forward pass: fp32 or bf16 autocast (bench/precision.py)
    channels_last: Optional[bool] = None  # None: on for CUDA, off for CPU
    compile: bool = False  # torch.compile the model
    fold_bn: bool = True  # attacks differentiate a BatchNorm-folded copy of the model (bench/precision.py)
    budgets_together: Optional[bool] = None  # an attack's budgets as one batch (same results; local executor); None: CUDA only
    if_needed: bool = False  # do nothing when a complete run of this configuration already holds every cell


# fields of RunConfig that say how a run is executed, not what it computes: a resumed run may change them
EXECUTION_FIELDS = ("command", "store", "executor", "address", "cpus_per_cell", "gpus_per_cell", "resume", "if_needed",
                    "budgets_together")


@dataclass
class RunOutcome:
    run_id: str
    store: Path
    summaries: list[dict] = field(default_factory=list)
    computed: int = 0
    reused: int = 0


def versions() -> dict:
    out = {"python": platform.python_version(), "facebench": __version__}
    for pkg in VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


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


def _cell_arrays(items: GoalItems, clean_scores: torch.Tensor, x_adv: torch.Tensor, queries: torch.Tensor,
                 name: str, norm: str, eps: float, batch_size: "int | BatchSize") -> dict:
    """The per-sample arrays of a cell from its final inputs: decisions by the task, budget checked."""
    task, x = items.task, items.x
    clean_broken = task.broken_on_clean(clean_scores)
    adv_scores = batched_scores(task, x_adv, batch_size)
    delta = (x_adv - x).flatten(1)
    linf = delta.abs().max(dim=1).values
    l2 = delta.norm(dim=1)
    used = linf if norm == "linf" else l2
    if bool((used > eps + BUDGET_TOLERANCE).any()):
        raise RuntimeError(f"attack {name} exceeded its {norm} budget {eps:g}: {float(used.max()):g}")
    success = task.success_from_scores(adv_scores) | clean_broken
    return {
        "sample_id": np.asarray(items.sample_ids, dtype=object),
        "clean_score": task.sample_scores(clean_scores).cpu().numpy().astype(np.float32),
        "adv_score": task.sample_scores(adv_scores).cpu().numpy().astype(np.float32),
        "clean_correct": (~clean_broken).cpu().numpy(),
        "attacked": (~clean_broken).cpu().numpy(),
        "success": success.cpu().numpy(),
        "linf": linf.cpu().numpy().astype(np.float32),
        "l2": l2.cpu().numpy().astype(np.float32),
        "queries": queries.cpu().numpy(),
    }


def attack_cell(items: GoalItems, clean_scores: torch.Tensor, attack: Attack, norm: str,
                eps: float, batch_size: "int | BatchSize", seed: int, attack_task: Optional[Task] = None,
                meter: Optional[SampleMeter] = None) -> dict:
    """Attack every clean-correct item of a goal at one budget; return the per-sample arrays.

    Items already wrong on clean input (`Task.broken_on_clean`) count as broken and are not attacked.
    `attack_task` is what the attack sees (e.g. the EOT view of the task); decisions are the task's own.
    Attacks that measure a minimal budget (`AttackOutput.min_eps`) add the array `min_eps`
    (0 for items broken on clean input, inf where none was found).
    """
    task, x = items.task, items.x
    attack_task = attack_task or task
    clean_broken = task.broken_on_clean(clean_scores)
    todo = (~clean_broken).nonzero().squeeze(1)
    x_adv = x.clone()
    queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    min_eps = torch.zeros(x.shape[0], device=x.device) if attack.measures_min_eps else None
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)

    def work(idx: torch.Tensor) -> None:
        nonlocal min_eps
        out = attack.run(attack_task.subset(idx), x[idx], norm, eps, generator=gen)
        x_adv[idx] = out.x_adv.detach()
        queries[idx] = out.queries
        if out.min_eps is not None:
            if min_eps is None:
                min_eps = torch.zeros(x.shape[0], device=x.device)
            min_eps[idx] = out.min_eps.to(min_eps)
        if meter is not None:
            meter.update(idx.numel())

    BatchSize.of(batch_size).chunks(todo, work, attack.per_sample, gen)
    arrays = _cell_arrays(items, clean_scores, x_adv, queries, attack.name, norm, eps, batch_size)
    if min_eps is not None:
        arrays["min_eps"] = min_eps.cpu().numpy().astype(np.float32)
    return arrays


def attack_cells_together(items: GoalItems, clean_scores: torch.Tensor, attack: Attack, norm: str,
                          budgets: list[tuple[float, int]], batch_size: "int | BatchSize", attack_task: Optional[Task] = None,
                          meter: Optional[SampleMeter] = None) -> Optional[list[dict]]:
    """`attack_cell` for several budgets (eps, seed) of one attack in one batched pass: per chunk of the
    goal's clean-correct items, the chunk is stacked once per budget, eps is a per-sample tensor, and each
    budget draws its random numbers with its own generator on its own rows (`SegmentGenerators`). The chunks
    are those `attack_cell` uses, so each budget's per-sample arrays equal those of its own `attack_cell`.

    Returns None, having stored nothing, when a stacked chunk does not fit in memory: the caller then
    computes the budgets one by one (which can use smaller batches)."""
    if not attack.budgets_together or attack.per_sample:
        raise ValueError(f"attack {attack.name!r} cannot run its budgets together")
    task, x = items.task, items.x
    attack_task = attack_task or task
    k = len(budgets)
    todo = (~task.broken_on_clean(clean_scores)).nonzero().squeeze(1)
    gens = [torch.Generator(device=x.device).manual_seed(seed) for _, seed in budgets]
    x_adv = [x.clone() for _ in budgets]
    queries = [torch.zeros(x.shape[0], dtype=torch.long, device=x.device) for _ in budgets]
    size = BatchSize.of(batch_size).size
    try:
        for start in range(0, todo.numel(), size):
            idx = todo[start:start + size]
            m = idx.numel()
            rows = idx.repeat(k)
            eps = torch.cat([torch.full((m,), float(e), device=x.device) for e, _ in budgets])
            segment = torch.arange(k, device=x.device).repeat_interleave(m)
            out = attack.run(attack_task.subset(rows), x[rows], norm, eps, generator=SegmentGenerators(gens, segment))
            for j in range(k):
                x_adv[j][idx] = out.x_adv[j * m:(j + 1) * m].detach()
                queries[j][idx] = out.queries[j * m:(j + 1) * m]
            if meter is not None:
                meter.update(m)
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return None
    return [_cell_arrays(items, clean_scores, x_adv[j], queries[j], attack.name, norm, e, batch_size)
            for j, (e, _) in enumerate(budgets)]


@dataclass
class CascadeResult:
    """A cascade cell's per-sample arrays and, per stage, the samples it saw and broke."""

    arrays: dict
    stage_attacked: list[int]
    stage_broken: list[int]
    stage_seconds: list[float]


def cascade_cell(items: GoalItems, clean_scores: torch.Tensor, stages: list[Attack], norm: str, eps: float,
                 batch_size: "int | BatchSize", seed: int, attack_task: Optional[Task] = None,
                 meter: Optional[SampleMeter] = None, labels: Optional[list[str]] = None) -> CascadeResult:
    """A worst-case cascade: each stage attacks only the samples every earlier stage failed on.

    The stages' inputs are re-packed into batches of the still-unbroken samples. A sample is broken
    if any stage breaks it (judged by the task on that stage's output); its stored input and score
    are those of the breaking stage, and `stage` says which (1-based; 0 = none). Unbroken samples keep
    the point of largest margin any stage reached. `queries` sums every stage's queries per sample.
    Each stage draws its random numbers from its own generator (seeded from `seed` and its position).
    """
    task, x = items.task, items.x
    attack_task = attack_task or task
    clean_broken = task.broken_on_clean(clean_scores)
    broken = clean_broken.clone()
    n = x.shape[0]
    x_adv = x.clone()
    best_m = torch.full((n,), -torch.inf, device=x.device)
    queries = torch.zeros(n, dtype=torch.long, device=x.device)
    stage_of = torch.zeros(n, dtype=torch.int16, device=x.device)
    attacked_per, broken_per, seconds_per = [], [], []
    for k, attack in enumerate(stages):
        todo = (~broken).nonzero().squeeze(1)
        attacked_per.append(int(todo.numel()))
        gen = torch.Generator(device=x.device)
        gen.manual_seed((seed + 7919 * (k + 1)) % (2**63))
        if meter is not None:
            meter.start(f"stage {k + 1}/{len(stages)} {labels[k] if labels else attack.name}", int(todo.numel()))
        t0 = time.perf_counter()
        newly = 0

        def work(idx: torch.Tensor) -> None:
            nonlocal newly
            out = attack.run(attack_task.subset(idx), x[idx], norm, eps, generator=gen)
            xa = out.x_adv.detach()
            sub = task.subset(idx)
            with torch.no_grad():
                s = sub.scores(xa)
            ok = sub.success_from_scores(s)
            m = sub.margin_from_scores(s)
            take = ok | (m > best_m[idx])
            x_adv[idx[take]] = xa[take]
            best_m[idx[take]] = m[take]
            queries[idx] += out.queries.to(queries)
            broken[idx[ok]] = True
            stage_of[idx[ok]] = k + 1
            newly += int(ok.sum())
            if meter is not None:
                meter.update(idx.numel())

        BatchSize.of(batch_size).chunks(todo, work, attack.per_sample, gen)
        broken_per.append(newly)
        seconds_per.append(round(time.perf_counter() - t0, 3))
    arrays = _cell_arrays(items, clean_scores, x_adv, queries, "cascade", norm, eps, batch_size)
    arrays["stage"] = stage_of.cpu().numpy()
    return CascadeResult(arrays, attacked_per, broken_per, seconds_per)


class NoStopTask(Task):
    """A task whose goal is never reported reached: attacks run every step and keep the largest margin.

    Used to craft transfer examples on a source model, whose own decision does not matter.
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        self.goal = task.goal
        self.threshold = task.threshold

    def __len__(self) -> int:
        return len(self.task)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.scores(x)

    def margin_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return self.task.margin_from_scores(scores)

    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)

    def subset(self, index: torch.Tensor) -> "NoStopTask":
        return NoStopTask(self.task.subset(index))


def transfer_cell(items: GoalItems, clean_scores: torch.Tensor, source: GoalItems, attack: Attack, norm: str,
                  eps: float, batch_size: "int | BatchSize", seed: int, meter: Optional[SampleMeter] = None) -> tuple[dict, float]:
    """Craft with `attack` on the source model's task (same items), judge on the model under test.

    Only items correct on clean input under test are attacked. Every step runs on the source (no
    early stop); `queries` is 1 per attacked item (one forward pass of the model under test).
    Returns the arrays and the mean number of source queries per attacked item.
    """
    if list(source.sample_ids) != list(items.sample_ids):
        raise RuntimeError("transfer: the source model's items differ from the items under test")
    task, x = items.task, items.x
    clean_broken = task.broken_on_clean(clean_scores)
    todo = (~clean_broken).nonzero().squeeze(1)
    x_adv = x.clone()
    queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    source_queries = 0
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)

    def work(idx: torch.Tensor) -> None:
        nonlocal source_queries
        out = attack.run(NoStopTask(source.task.subset(idx)), source.x[idx], norm, eps, generator=gen)
        x_adv[idx] = out.x_adv.detach()
        queries[idx] = 1
        source_queries += int(out.queries.sum())
        if meter is not None:
            meter.update(idx.numel())

    BatchSize.of(batch_size).chunks(todo, work, generator=gen)
    arrays = _cell_arrays(items, clean_scores, x_adv, queries, f"transfer[{attack.name}]", norm, eps, batch_size)
    return arrays, source_queries / max(int(todo.numel()), 1)


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
class PlannedCell:
    """One cell of the grid, before it is computed: what attacks which goal at which budget."""

    goal: str
    kind: str  # "attack", "cascade" or "transfer"
    attack: str  # the attack's name; "cascade" / "transfer" for those kinds
    params: dict  # the attack's full parameters (a cascade: its stages; a transfer: the source and crafting attack)
    norm: str
    eps: float
    entry: object = None
    source: Optional[str] = None  # transfer: the zoo model the examples are crafted on


def plan(suite: Suite, goals: tuple[str, ...], transfer_sources: tuple[str, ...] = ()) -> list[PlannedCell]:
    """The grid in a stable order. Transfer entries give one cell per source (their own `sources`, else
    `transfer_sources`: every other zoo model of the task) and budget."""
    cells = []
    for goal in goals:
        for entry in suite.entries:
            if isinstance(entry, CascadeEntry):
                params = entry.cell_params()
                cells += [PlannedCell(goal, "cascade", "cascade", params, entry.norm, eps, entry) for eps in entry.eps]
            elif isinstance(entry, TransferEntry):
                crafted = {"attack": entry.attack, "params": make_attack(entry.attack, entry.params).params()}
                for source in entry.sources or transfer_sources:
                    cells += [PlannedCell(goal, "transfer", "transfer", {"source": source, **crafted}, entry.norm, eps,
                                          entry, source) for eps in entry.eps]
            else:
                params = make_attack(entry.attack, entry.params).params()
                cells += [PlannedCell(goal, "attack", entry.attack, params, entry.norm, eps, entry) for eps in entry.eps]
    return cells


@dataclass
class SourceModel:
    """A zoo model that transfer examples are crafted on."""

    name: str
    loaded: LoadedModel


def transfer_sources(mut: ModelUnderTest, suite: Suite) -> tuple[dict[str, ModelUnderTest], tuple[str, ...]]:
    """The source models the suite's transfer entries need, resolved (not loaded) before any work,
    and the default sources (for entries that name none).

    Default: every other zoo variant of the same task with shipped weights at the model's profile (the
    tiny one for a user model) and the same input size. Sources named in a suite must be such models.
    """
    entries = [e for e in suite.entries if isinstance(e, TransferEntry)]
    if not entries:
        return {}, ()
    from models_zoo import VARIANTS

    profile = mut.profile if mut.source == "zoo" else "tiny"

    def usable(name: str) -> Optional[str]:
        """Why `name` cannot be a source (None: it can)."""
        return zoo_source(name, mut.task, profile, mut.input_size)

    def resolved(name: str) -> ModelUnderTest:
        return ModelUnderTest(name, "zoo", mut.task, profile, mut.input_size, mut.default_protocol, spec=VARIANTS.get(name))

    out: dict[str, ModelUnderTest] = {}
    defaults: tuple[str, ...] = ()
    for entry in entries:
        for name in entry.sources or ():
            why = usable(name)
            if why is not None:
                raise BadInputError(f"suite {suite.name!r}: transfer source {name!r} cannot be used: {why}")
            out[name] = resolved(name)
    if any(not e.sources for e in entries):
        defaults = tuple(n for n in VARIANTS if n != mut.name and usable(n) is None)
        out.update({n: resolved(n) for n in defaults})
    return out, defaults


@dataclass
class RunSetup:
    """What any process needs to rebuild a run's state and compute its cells (picklable, sent to workers).

    `cfg` is resolved (profile, input size and task filled in); `threshold` is the operating threshold
    the driver measured on the dev split, so workers judge with exactly the driver's.
    """

    cfg: RunConfig
    threshold: float
    sources: tuple[str, ...] = ()  # transfer source models (zoo variants)


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
        self.mut = resolve_model(self.cfg.model, self.cfg.task, self.cfg.profile, self.cfg.input_size)
        self.loaded = loaded or load_model(self.mut, self.cfg.checkpoint, device)
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
        return self.protocol.goal_items(goal, self.loaded.module, self.setup.threshold, self.cfg.samples, self.cfg.seed,
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
            profile = self.mut.profile if self.mut.source == "zoo" else "tiny"
            self.source_loaded[name] = create_model(name, self.device, profile=profile)
        key = (name, goal)
        if key not in self.source_items:
            self.source_items[key] = self.protocol.goal_items(goal, self.source_loaded[name].module, self.setup.threshold,
                                                              self.cfg.samples, self.cfg.seed, self.mut.input_size, self.device)
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


def shard_seed(seed: int, shard: int, shards: int) -> int:
    """A shard's own seed (a cell computed whole keeps the cell's seed)."""
    return seed if shards == 1 else (seed + 104729 * (shard + 1)) % (2**63)


def compute_job(state: RunState, job: CellJob, meter: Optional[SampleMeter] = None) -> ShardOutput:
    """Compute one cell or shard on `state`; a pure function of the run setup and the job."""
    pc = job.cell
    prep = state.prepared(pc.goal, job.eot)
    items, clean, attack_task = prep.items, prep.clean, prep.attack_task
    if job.shards > 1:
        stop = len(items.sample_ids) if job.stop < 0 else job.stop
        items = items.shard(job.start, stop)
        idx = torch.arange(job.start, stop, device=clean.device)
        clean, attack_task = clean[idx], attack_task.subset(idx)
    seed = shard_seed(job.seed, job.shard, job.shards)
    batch_size = state.batch
    start = time.perf_counter()
    attrs: dict = {}
    if meter is not None:
        meter.start(job.label, int((~items.task.broken_on_clean(clean)).sum()))
    if pc.kind == "attack" and job.together and job.shards == 1:
        computed_here = job.cell_id not in state.together
        if computed_here:  # compute the group; a group that does not fit is marked (None) to go budget by budget
            t0 = time.perf_counter()
            results = attack_cells_together(items, clean, make_attack(pc.attack, pc.params), pc.norm,
                                            [(eps, s) for _, eps, s in job.together], batch_size, attack_task, meter)
            share = (time.perf_counter() - t0) / len(job.together)
            state.together.update({cid: None if results is None else (results[i], share)
                                   for i, (cid, _, _) in enumerate(job.together)})
        done = state.together.pop(job.cell_id)
        if done is not None:
            arrays, seconds = done
            if meter is not None and not computed_here:
                meter.update(int(arrays["attacked"].sum()))
            return ShardOutput(job.index, job.cell_id, job.shard, arrays, {"budgets_together": len(job.together)}, seconds)
    if pc.kind == "attack":
        arrays = attack_cell(items, clean, make_attack(pc.attack, pc.params), pc.norm, pc.eps, batch_size, seed=seed,
                             attack_task=attack_task, meter=meter)
    elif pc.kind == "cascade":
        stages = [make_attack(st["attack"], st["params"]) for st in pc.params["stages"]]
        res = cascade_cell(items, clean, stages, pc.norm, pc.eps, batch_size, seed=seed, attack_task=attack_task,
                           meter=meter, labels=[st.label() for st in pc.entry.stages])
        arrays = res.arrays
        attrs.update(stage_attacked=res.stage_attacked, stage_broken=res.stage_broken, stage_seconds=res.stage_seconds)
    else:
        src_loaded, src_items = state.source(pc.source, pc.goal)
        if job.shards > 1:
            src_items = src_items.shard(job.start, len(src_items.sample_ids) if job.stop < 0 else job.stop)
        arrays, src_q = transfer_cell(items, clean, src_items, make_attack(pc.params["attack"], pc.params["params"]),
                                      pc.norm, pc.eps, batch_size, seed=seed, meter=meter)
        attrs.update(source_model=pc.source, source_checkpoint=src_loaded.checkpoint,
                     source_queries_total=src_q * max(int(arrays["attacked"].sum()), 1))
    return ShardOutput(job.index, job.cell_id, job.shard, arrays, attrs, time.perf_counter() - start)


def merge_shards(outputs: list[ShardOutput]) -> tuple[dict, dict, float]:
    """One cell's arrays, measured attributes and compute seconds from its shards (in shard order)."""
    outputs = sorted(outputs, key=lambda o: o.shard)
    arrays = {k: np.concatenate([o.arrays[k] for o in outputs]) for k in outputs[0].arrays}
    attrs = dict(outputs[0].attrs)
    for key in ("stage_attacked", "stage_broken"):
        if key in attrs:
            attrs[key] = [int(sum(v)) for v in zip(*(o.attrs[key] for o in outputs))]
    if "stage_seconds" in attrs:
        attrs["stage_seconds"] = [round(float(sum(v)), 3) for v in zip(*(o.attrs["stage_seconds"] for o in outputs))]
    if "source_queries_total" in attrs:
        total = sum(o.attrs["source_queries_total"] for o in outputs)
        del attrs["source_queries_total"]
        attrs["source_queries_mean"] = round(total / max(int(arrays["attacked"].sum()), 1), 3)
    return arrays, attrs, sum(o.seconds for o in outputs)


def shard_ranges(n: int, shard_size: Optional[int]) -> list[tuple[int, int]]:
    """Contiguous item ranges of a cell: one range for the whole cell unless a shard size is set."""
    if not shard_size or shard_size >= n:
        return [(0, -1)]
    return [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]


def same_run(meta: dict, cfg: RunConfig) -> bool:
    """Whether a stored run was made with the configuration of `cfg` (ignoring how it is executed)."""
    try:
        stored = json.loads(meta["config"]) if isinstance(meta.get("config"), str) else dict(meta.get("config") or {})
    except ValueError:
        return False
    # an option added after the run was stored counts as its default there
    defaults = {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING}
    stored = {**{k: v for k, v in defaults.items() if k not in stored}, **stored}
    return {k: v for k, v in stored.items() if k not in EXECUTION_FIELDS} == \
        {k: v for k, v in asdict(cfg).items() if k not in EXECUTION_FIELDS}


def cell_config(pc: PlannedCell, mut: ModelUnderTest, cfg: RunConfig, protocol: Protocol, sha256: str, rule: str,
                source_sha: dict[str, str]) -> dict:
    """A cell's configuration: everything its per-sample results depend on (its id is the hash of this)."""
    if pc.kind == "cascade":
        backend = "+".join(dict.fromkeys(make_attack(st["attack"], st["params"]).backend for st in pc.params["stages"]))
    elif pc.kind == "transfer":
        backend = make_attack(pc.params["attack"], pc.params["params"]).backend
    else:
        backend = make_attack(pc.attack, pc.params).backend
    params = {**pc.params, "source_sha256": source_sha[pc.source]} if pc.kind == "transfer" else pc.params
    config = {
        "model": mut.name,
        "profile": mut.profile,
        "checkpoint_sha256": sha256,
        "protocol": protocol.name,
        "goal": pc.goal,
        "attack": pc.attack,
        "backend": backend,
        "params": params,
        "norm": pc.norm,
        "eps": pc.eps,
        "samples": cfg.samples,
        "seed": cfg.seed,
        "threshold_rule": rule,
    }
    if mut.source == "user":  # zoo cells keep their ids; a user cell can never take one of theirs
        config.update(task=mut.task, input_size=mut.input_size)
    if pc.goal in IdentificationTask.goals:
        config["threshold_rule"] = "top-1 (closed-set identification, no threshold)"
    if cfg.eot is not None:  # a forced EOT setting is part of the cell; the automatic one follows the model
        config["eot"] = cfg.eot
    if cfg.shard_size:  # shards draw their own random numbers: a sharded cell is a different computation
        config["shard_size"] = cfg.shard_size
    if cfg.precision != "fp32":  # bf16 gradients are a different attack (channels_last only reorders float sums)
        config["precision"] = cfg.precision
    if cfg.compile:
        config["compile"] = True
    return config


def validate_config(cfg: RunConfig) -> None:
    """The numeric and execution options, refused before any work."""
    if cfg.samples < 1:
        raise BadInputError(f"--samples must be at least 1, got {cfg.samples}")
    if cfg.batch_size is not None and cfg.batch_size < 1:
        raise BadInputError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.eot is not None and cfg.eot < 1:
        raise BadInputError(f"--eot must be at least 1 (1 = no EOT), got {cfg.eot}")
    if cfg.precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {cfg.precision!r} (use {' or '.join(PRECISIONS)})")
    if cfg.shard_size is not None and cfg.shard_size < 1:
        raise BadInputError(f"--shard-size must be at least 1 sample, got {cfg.shard_size}")
    from bench.executors import check_executor

    check_executor(cfg)


def run_benchmark(cfg: RunConfig, progress: bool | str = True, log: Callable[[str], None] = lambda s: None) -> RunOutcome:
    """Evaluate one model against one suite on one protocol; every cell goes to the store.

    Everything a user can get wrong (names, task, factory, checkpoint, output convention, executor) is
    refused before the store is created or touched. Cells already stored under the same configuration
    are reused; `cfg.resume` continues the newest unfinished run of the same configuration (same run id).
    Cells are computed by the executor (`cfg.executor`: in this process, or as Ray tasks); only this
    process writes the store, one whole cell at a time. `progress`: True (bars), False, or "json"
    (one JSON line per event on stderr).
    """
    from bench.executors import make_executor
    from bench.progress import RunProgress

    mut = resolve_model(cfg.model, cfg.task, cfg.profile, cfg.input_size)
    suite = load_suite(cfg.suite)
    protocol = get_protocol(cfg.protocol or mut.default_protocol)
    if protocol.task != mut.task:
        flag = f" (--task {mut.task})" if mut.source == "user" else ""
        raise BadInputError(f"protocol {protocol.name!r} is for {protocol.task} models but {mut.name!r} is a {mut.task} model{flag}")
    validate_config(cfg)
    goals = suite.goals or default_goals(mut.task)
    wrong = [g for g in goals if GOALS[g].task != mut.task]
    if wrong:
        raise BadInputError(f"suite {suite.name!r} asks for goals {wrong} that a {mut.task} model cannot serve")
    sources, default_src = transfer_sources(mut, suite)
    source_sha = {name: read_card(shipped_weights(name, src.profile))["sha256"] for name, src in sources.items()}
    store = ResultsStore(cfg.store)
    # the default location is ours to create (once the run starts); a named one's directory must exist
    create_parent = store.path == DEFAULT_STORE and not store.path.parent.exists()
    if not create_parent:
        store.check_writable()
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    loaded = load_model(mut, cfg.checkpoint, device)
    model, card, size = loaded.module, loaded.card, mut.input_size
    cfg = replace(cfg, profile=None if mut.source == "user" else mut.profile, input_size=size, task=mut.task)

    # the output conventions, on a batch of the dev split, before anything is logged, attacked or stored
    dev_split = protocol.dev_split(size)
    check_model_outputs(model, images_to_tensor(dev_split.images[:CHECK_BATCH]).to(device), mut.task, mut.name)
    weights_name = Path(loaded.checkpoint).name if loaded.checkpoint != FACTORY_WEIGHTS else loaded.checkpoint
    log(f"model {mut.name} ({mut.profile}, {size} px, {weights_name}, sha256 {loaded.sha256[:12]}) on {device}")
    eval_note = "was in train mode; put into eval mode on load" if loaded.was_training else "in eval mode"
    dev = protocol.calibrate(model, dev_split, device)
    log(dev.describe())
    op = dev.operating_point
    test_metrics = protocol.test_metrics(model, size, device, op.threshold)
    card_tau = card.get("dev", {}).get("threshold")
    reproduces = card_tau is not None and abs(float(card_tau) - op.threshold) <= 1e-4
    if card_tau is not None and not reproduces:
        log(f"warning: the dev threshold {op.threshold:.4f} differs from the model card's {float(card_tau):.4f}")
    card_check = checks.check_card(card, dev.as_card(), mut.task)
    run_reasons = [card_check.detail] if card_check is not None and not card_check.passed else []
    for reason in run_reasons:
        log(f"integrity: {reason}; every cell of this run is marked unreliable")
    if create_parent:
        store.path.parent.mkdir(parents=True, exist_ok=True)
        store.check_writable()

    grid = plan(suite, goals, default_src)
    if any(isinstance(e, TransferEntry) for e in suite.entries):
        log(f"transfer sources: {', '.join(sources)}" if sources else
            f"transfer: no other zoo model of task {mut.task} has shipped weights at {mut.input_size} px; no transfer cells")
    configs = [cell_config(pc, mut, cfg, protocol, loaded.sha256, op.rule, source_sha) for pc in grid]
    cids = [cell_id_of(c) for c in configs]
    meta = {
        "model": mut.name,
        "source": mut.source,
        "task": mut.task,
        "profile": mut.profile,
        "input_size": size,
        "checkpoint": loaded.checkpoint,
        "checkpoint_sha256": loaded.sha256,
        "protocol": protocol.name,
        "suite": suite.name,
        "suite_budgets": suite.budgets(),
        "config": asdict(cfg),
        "seed": cfg.seed,
        "versions": versions(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "host": f"{platform.node()} {platform.machine()} {torch.get_num_threads()} threads",
        "command": cfg.command,
        "threshold": op.threshold,
        "threshold_rule": op.rule,
        "dev_metrics": dev.as_card(),
        **({"test_metrics": test_metrics} if test_metrics is not None else {}),
        "card_threshold": card_tau,
        "card_reproduces": bool(reproduces),
        "card_check": "no model card" if card_check is None else ("passed" if card_check.passed else card_check.detail),
        "eval_mode": eval_note,
        "eot_setting": "auto" if cfg.eot is None else cfg.eot,
        "cells_planned": len(grid),
        "transfer_sources": list(sources),
        "executor": cfg.executor,
    }
    if cfg.if_needed and store.path.exists():
        done = next((r for r in reversed(store.runs()) if r.get("status") == "complete" and same_run(r, cfg)
                     and set(cids) <= set(r["cell_ids"])), None)
        if done is not None:  # nothing to compute and nothing new to record
            log(f"--if-needed: run {done['run_id']} of this configuration holds every cell; nothing to do")
            stored = {c.cell_id: c for c in store.read_cells(sorted(set(cids)), arrays=False)}
            outcome = RunOutcome(done["run_id"], store.path, reused=len(cids))
            outcome.summaries = [{**config, **stored[cid].summary, "cell_id": cid, "unreliable": stored[cid].unreliable,
                                  "unreliable_reason": stored[cid].unreliable_reason} for config, cid in zip(configs, cids)]
            return outcome
    resumed = None
    if cfg.resume and store.path.exists():
        resumed = next((r for r in reversed(store.runs()) if r.get("status") != "complete" and same_run(r, cfg)), None)
        if resumed is None:
            log("--resume: the store holds no unfinished run of this configuration; starting a new run")
    if resumed is not None:
        run_id = resumed["run_id"]
        store.reopen_run(run_id, {"command": cfg.command, "executor": cfg.executor})
        in_run = set(resumed["cell_ids"])
        log(f"resuming run {run_id} ({resumed.get('status')}, {len(in_run)} of {len(grid)} cells stored)")
    else:
        run_id = store.begin_run(meta)
        in_run = set()
    outcome = RunOutcome(run_id, store.path)
    state = RunState(RunSetup(cfg, op.threshold, tuple(sources)), device, loaded)
    if state.folded.folded:
        log(f"attacks differentiate a copy with {state.folded.folded} BatchNorm(s) folded into convolutions "
            "(decisions use the model as loaded; --no-fold-bn to turn off)")
    elif state.folded.note:
        log(f"BatchNorm folding off: {state.folded.note}; the attacks differentiate the model as it is")
    integrity: dict[str, dict] = {}
    summaries: dict[int, dict] = {}
    shards_of: dict[str, list[ShardOutput]] = {}
    expected: dict[str, int] = {}
    meta_of: dict[str, tuple[int, dict, dict]] = {}  # cell id -> (plan index, config, attrs of the cell)
    monitor = RunProgress(progress, total=len(grid), concurrent=cfg.executor != "local")
    executor = None

    def record(index: int, cid: str, cell: CellResult, computed: bool) -> None:
        if cid not in in_run:
            store.add_cell_to_run(run_id, cid)
            in_run.add(cid)
        summaries[index] = {**configs[index], **cell.summary, "cell_id": cid, "unreliable": cell.unreliable,
                            "unreliable_reason": cell.unreliable_reason}
        if computed:
            outcome.computed += 1
        else:
            outcome.reused += 1
        monitor.cell_done(_cell_label(grid[index]), computed, cell.summary)

    def finish(outputs: list[ShardOutput]) -> None:
        for out in outputs:
            shards_of.setdefault(out.cell_id, []).append(out)
            if len(shards_of[out.cell_id]) < expected[out.cell_id]:
                continue
            index, config, attrs = meta_of[out.cell_id]
            arrays, measured, seconds = merge_shards(shards_of.pop(out.cell_id))
            attrs = {**attrs, **measured}
            pc = grid[index]
            if pc.kind == "cascade":
                attrs["stages"] = [st.label() for st in pc.entry.stages]
                log(f"{pc.goal} cascade {pc.norm} {format_eps(pc.norm, pc.eps)}: broken per stage "
                    + ", ".join(f"{st.attack} {b}/{a}" for st, a, b in
                                zip(pc.entry.stages, attrs["stage_attacked"], attrs["stage_broken"]))
                    + f" ({', '.join(f'{t:.0f}' for t in attrs['stage_seconds'])} s)")
            if pc.kind == "transfer":
                attrs["source_checkpoint_sha256"] = source_sha[pc.source]
            prep = state.goals[pc.goal]
            reasons = run_reasons + prep.reasons()
            if prep.items.rule:
                attrs["decision_rule"] = prep.items.rule
            cell = CellResult(out.cell_id, config, arrays, summarise(arrays, seconds), attrs, bool(reasons),
                              "; ".join(reasons))
            store.write_cell(cell, run_id=None if out.cell_id in in_run else run_id)  # cell + run entry: one transaction
            in_run.add(out.cell_id)
            record(index, out.cell_id, cell, computed=True)

    failures: list[str] = []
    duplicates: list[tuple[int, str]] = []
    together = budget_groups(grid, cids, cfg, store, device)
    try:
        executor = make_executor(cfg, state, monitor.meter, log)
        for index, (pc, config, cid) in enumerate(zip(grid, configs, cids)):
            if cid in expected:  # the same cell twice in one grid: computed once, listed twice
                duplicates.append((index, cid))
                continue
            if store.has_cell(cid):
                record(index, cid, store.read_cells([cid], arrays=False)[0], computed=False)
                continue
            if pc.goal not in state.goals:
                prep = state.prepared(pc.goal, cfg.eot, run_checks=True)
                integrity[pc.goal] = {"eot": prep.eot, **{c.name: ("passed" if c.passed else c.detail) for c in prep.checks}}
                for c in prep.checks:
                    if not c.passed:
                        log(f"integrity ({pc.goal}): {c.detail}")
            prep = state.goals[pc.goal]
            threshold = float("nan") if pc.goal in IdentificationTask.goals else op.threshold
            meta_of[cid] = (index, config, {"run_id": run_id, "threshold": threshold, "eot": prep.eot})
            ranges = shard_ranges(len(prep.items.sample_ids), cfg.shard_size)
            expected[cid] = len(ranges)
            seed = cell_seed(cid, cfg)
            for k, (start, stop) in enumerate(ranges):
                job = CellJob(index, cid, pc, seed, prep.eot, _cell_label(pc), k, len(ranges), start, stop,
                              together.get(cid, ()))
                monitor.cell_started(job.label, k, len(ranges))
                executor.submit(job)
            finish(executor.ready(block=False))
        while executor.pending():
            finish(executor.ready(block=True))
        failures = executor.failures()
        first = {cid: i for i, cid in reversed(list(enumerate(cids)))}
        for index, cid in duplicates:
            if first[cid] in summaries:
                summaries[index] = dict(summaries[first[cid]])
                outcome.reused += 1
        # across the cells of the run (reused ones included), then the run-level reasons for reused cells
        ordered = [summaries[i] for i in sorted(summaries)]
        flags = checks.cross_cell_checks(ordered)
        for s in ordered:
            new = [r for r in flags.get(s["cell_id"], []) + run_reasons if r not in s["unreliable_reason"].split("; ")]
            if new:
                store.flag_cell(s["cell_id"], new)
                s["unreliable"] = True
                s["unreliable_reason"] = "; ".join([r for r in s["unreliable_reason"].split("; ") if r] + new)
        for reason in sorted({r for rs in flags.values() for r in rs}):
            log(f"integrity: {reason}")
        outcome.summaries = ordered
        if failures:
            raise CellFailedError(f"{len(failures)} cell(s) failed and were not stored (the others are): "
                                  + "; ".join(failures[:3]) + (" ..." if len(failures) > 3 else ""))
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        store.finish_run(run_id, status, {"error": f"{type(e).__name__}: {e}"})
        raise
    finally:
        if executor is not None:
            executor.close()
        monitor.close()
    store.finish_run(run_id, "complete", {"cells_computed": outcome.computed, "cells_reused": outcome.reused,
                                          "integrity": integrity, "batch_size_used": state.batch.size,
                                          "forward": {**asdict(state.forward), **state.folded.describe()},
                                          "cells_unreliable": sum(bool(s["unreliable"]) for s in outcome.summaries)})
    monitor.run_done(outcome.computed, outcome.reused)
    return outcome


def cell_seed(cid: str, cfg: RunConfig) -> int:
    """A cell's random seed: from its id and the run's seed."""
    return int(cid[:12], 16) ^ cfg.seed


def budget_groups(grid: list[PlannedCell], cids: list[str], cfg: RunConfig, store, device: torch.device) -> dict[str, tuple]:
    """Cells to compute as one batch per attack (budgets together): for each cell still to compute whose
    attack can (`Attack.budgets_together`), the (cell id, eps, seed) of every such cell of the same goal,
    attack, parameters and norm, when there are at least two. Only for the local executor and unsharded
    cells (a Ray task computes one cell; shards draw their own random numbers). By default on CUDA only: on a
    CPU the stacked batch is slower than one pass per budget (docs/performance.md)."""
    enabled = cfg.budgets_together if cfg.budgets_together is not None else device.type == "cuda"
    if not enabled or cfg.executor != "local" or cfg.shard_size:
        return {}
    stored = store.cell_ids()
    groups: dict[tuple, dict[str, tuple]] = {}
    for pc, cid in zip(grid, cids):
        if pc.kind != "attack" or not make_attack(pc.attack, pc.params).budgets_together or cid in stored:
            continue
        key = (pc.goal, pc.attack, json.dumps(pc.params, sort_keys=True, default=str), pc.norm)
        groups.setdefault(key, {})[cid] = (cid, pc.eps, cell_seed(cid, cfg))
    return {cid: tuple(members.values()) for members in groups.values() if len(members) > 1 for cid in members}


def _cell_label(pc: PlannedCell) -> str:
    shown = f"{pc.attack} from {pc.source}" if pc.source else pc.attack
    return f"{pc.goal} {shown} {pc.norm} {format_eps(pc.norm, pc.eps)}"
