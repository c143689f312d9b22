"""A run: one model against one suite on one protocol, every cell computed (or reused) and stored.

`Run` goes through named steps, each short: validate everything a user can get wrong, load the model and check
its outputs, calibrate the operating point on the dev split, plan the grid, open (or resume) the run in the
store, schedule the cells on the executor and record each output, check across cells, finish. Planning is in
bench/planning.py, computing in bench/compute.py (and each cell kind in bench/cells/), where cells run in
bench/executors.py.
"""
from __future__ import annotations

import platform
import signal
import threading
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

import torch

from bench import __version__, checks
from bench.cells import PlannedCell
from bench.compute import CellJob, RunSetup, RunState, ShardOutput, merge_shards, summarise
from bench.config import resolve_device
from bench.conventions import check_model_outputs
from bench.errors import BadInputError, CellFailedError, FacebenchError, Interrupted
from bench.evaluation import images_to_tensor
from bench.executors import make_executor
from bench.goals import GOALS, default_goals, get_goal
from bench.modelref import InputConvention, check_flip_tta, check_protocol_task
from bench.planning import budget_groups, cell_config, cell_label, cell_seed, plan, shard_ranges, transfer_sources
from bench.progress import RunProgress
from bench.protocols import get_protocol
from bench.runconfig import RunConfig, same_run, validate_config
from bench.store import DEFAULT_STORE, CellResult, ResultsStore, cell_id_of
from bench.suites import load_suite
from models_zoo.factory import card_for, load_model, resolve_model
from models_zoo.user import FACTORY_WEIGHTS

VERSIONED = ("torch", "timm", "numpy", "h5py", "adversarial-robustness-toolbox", "foolbox", "torchattacks")
CHECK_BATCH = 8  # images of the dev split that every model's outputs are checked on before any attack


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


def run_benchmark(cfg: RunConfig, progress: bool | str = True, log: Callable[[str], None] = lambda s: None) -> RunOutcome:
    """Evaluate one model against one suite on one protocol; every cell goes to the store.

    Everything a user can get wrong (names, task, factory, checkpoint, output convention, executor) is
    refused before the store is created or touched. Cells already stored under the same configuration
    are reused; `cfg.resume` continues the newest unfinished run of the same configuration (same run id).
    Cells are computed by the executor (`cfg.executor`: in this process, or as Ray tasks); only this
    process writes the store, one whole cell at a time. `progress`: True (bars), False, or "json"
    (one JSON line per event on stderr).
    """
    return Run(cfg, progress, log).execute()


def comparable_card(card: dict, protocol: str, flip_tta: bool) -> tuple[dict, str]:
    """The model card to check the run's dev metrics against, and why none is ("" when it is): a card measured on
    another protocol (one calibrated on another dev split: `Protocol.base_protocol`), or without the flip test-time
    augmentation the run adds, describes another measurement."""
    if not card.get("dev"):
        return card, ""
    if card.get("protocol") not in (None, protocol) and _base_protocol(card["protocol"]) != _base_protocol(protocol):
        return {}, f"measured on protocol {card['protocol']}, not {protocol}: not compared"
    if flip_tta:
        return {}, "measured without flip test-time augmentation (--flip-tta): not compared"
    return card, ""


def _base_protocol(protocol: str) -> str:
    try:
        return get_protocol(protocol).base_protocol
    except FacebenchError:  # a protocol this checkout cannot resolve (unknown, its data gone): only its name matches
        return protocol


class StopSignalsAsInterrupt:
    """The signals that stop a run, SIGTERM (`kill`, a scheduler stopping a job) and SIGINT (Ctrl-C), end it the
    same way: as an `Interrupted` (a KeyboardInterrupt) raised in the main thread, so the run is marked interrupted
    and `--resume` continues it.

    A context manager: the handlers are installed on entry and the previous ones restored on exit; `install()` puts
    them back after a library replaced them (`ray.init` sets its own SIGTERM handler, which exits). The first SIGTERM
    is raised, later ones (while the run winds down) are ignored. Ctrl-C keeps Python's behaviour (every one raises)
    and is watched only where Python's own handler is in place (not where SIGINT is ignored, as in a job started with
    `&` by a shell without job control). Outside the main thread (where Python handles no signals) it does nothing.

    Python runs a signal handler between two bytecodes of whatever the main thread is running, and that may be a
    weakref callback or a `__del__` of the garbage collector, where an exception is printed and dropped ("Exception
    ignored in ...") and the run would go on to its end. So the run also calls `check()` between cells: a SIGTERM or
    a Ctrl-C that arrived and was dropped is raised there."""

    MESSAGES = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGINT: ""}  # "" : the run says "interrupted"

    def __init__(self) -> None:
        self.active = False  # inside the `with`, in the main thread
        self.fired: Optional[int] = None  # the first signal that arrived
        self.previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignalsAsInterrupt":
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = {signal.SIGTERM: signal.getsignal(signal.SIGTERM)}
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self.previous[signal.SIGINT] = signal.default_int_handler
            self.install()
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            for signum, handler in self.previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            self.active = False

    def install(self) -> None:
        if self.active:
            for signum in self.previous:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        first = self.fired is None
        if first:
            self.fired = signum
        if first or signum == signal.SIGINT:
            raise Interrupted(self.MESSAGES[signum], signum)

    def check(self) -> None:
        """Raise the signal that arrived, if its `Interrupted` was dropped where it was raised (see the class).
        Called only where the run goes on normally, so a signal already on its way up is not raised twice."""
        if self.fired is not None:
            raise Interrupted(self.MESSAGES[self.fired], self.fired)


class Run:
    """One run, step by step (see `execute`). Its attributes are filled in as the steps go."""

    def __init__(self, cfg: RunConfig, progress: bool | str = True, log: Callable[[str], None] = lambda s: None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.log = log
        self.stop_signals = StopSignalsAsInterrupt()

    def execute(self) -> RunOutcome:
        with self.stop_signals:
            self.validate()
            self.load()
            self.calibrate()
            self.plan()
            done = self.completed_run()
            if done is not None:
                return done
            self.run_id = self.executor = self.monitor = None  # open() sets them once they exist
            self.in_run: set[str] = set()
            try:
                self.open()
                self.schedule()
                self.check_across_cells()
            except BaseException as e:
                if self.run_id is None:  # nothing was recorded
                    raise
                interrupted = isinstance(e, KeyboardInterrupt)  # Ctrl-C, or SIGTERM (StopSignalsAsInterrupt)
                self.store.finish_run(self.run_id, "interrupted" if interrupted else "failed",
                                      {"error": f"{type(e).__name__}: {e}"})
                if interrupted:
                    raise Interrupted(f"{str(e) or 'interrupted'}: run {self.run_id} is marked interrupted with "
                                      f"{len(self.in_run)} of {len(self.grid)} cells stored; the same command with "
                                      "--resume continues it", getattr(e, "signum", signal.SIGINT)) from None
                raise
            finally:
                if self.executor is not None:
                    self.executor.close()
                if self.monitor is not None:
                    self.monitor.close()
            return self.finish()

    # ------------------------------------------------------------------------------------------ before any work

    def validate(self) -> None:
        """Model, suite, protocol, goals, options, transfer sources and the store: refused before any work."""
        cfg = self.cfg
        self.mut = mut = resolve_model(cfg.model, cfg.task, cfg.profile, cfg.input_size, cfg.name, cfg.preprocess)
        self.suite = suite = load_suite(cfg.suite)
        self.protocol = protocol = get_protocol(cfg.protocol or mut.default_protocol)
        check_protocol_task(mut, protocol.name, protocol.task)
        check_flip_tta(mut, cfg.flip_tta)
        validate_config(cfg)
        self.goals = suite.goals or default_goals(mut.task)
        wrong = [g for g in self.goals if GOALS[g].task != mut.task]
        if wrong:
            raise BadInputError(f"suite {suite.name!r} asks for goals {wrong} that a {mut.task} model cannot serve")
        bare = [g for g in self.goals if not any(e.applies_to(g) for e in suite.entries)]
        if bare:
            raise BadInputError(f"suite {suite.name!r} has no entry for goal{'s' if len(bare) > 1 else ''} "
                                f"{', '.join(bare)} (its entries name the goals they apply to)")
        self.sources, self.default_sources = transfer_sources(mut, suite)
        self.source_sha = {name: card_for(name, src.profile)["sha256"] for name, src in self.sources.items()}
        self.store = ResultsStore(cfg.store)
        # the default location is ours to create (once the run starts); a named one's directory must exist
        self.create_parent = self.store.path == DEFAULT_STORE and not self.store.path.parent.exists()
        if not self.create_parent:
            self.store.check_writable()

    def load(self) -> None:
        """The model in eval mode on its device, its output conventions checked on a batch of the dev split."""
        mut, cfg = self.mut, self.cfg
        self.device = device = resolve_device(cfg.device)
        self.loaded = loaded = load_model(mut, cfg.checkpoint, device, seed=cfg.seed,  # seeded as every rebuild is
                                          flip_tta=cfg.flip_tta)
        self.cfg = replace(cfg, profile=None if mut.source == "user" else mut.profile, input_size=mut.input_size,
                           task=mut.task)
        self.dev_split = self.protocol.dev_split(mut.input_size)
        check_model_outputs(loaded.module, images_to_tensor(self.dev_split.images[:CHECK_BATCH]).to(device), mut.task,
                            mut.name)
        weights = Path(loaded.checkpoint).name if loaded.checkpoint != FACTORY_WEIGHTS else loaded.checkpoint
        self.log(f"model {mut.name} ({mut.profile}, {mut.input_size} px, {weights}, sha256 {loaded.sha256[:12]}) on {device}")
        self.preprocess = loaded.card.get("preprocess") or (mut.convention.as_dict() if mut.convention else None)
        if self.preprocess is not None:
            convention = InputConvention(**{**self.preprocess, "mean": tuple(self.preprocess["mean"]),
                                            "std": tuple(self.preprocess["std"])})
            self.log(f"input adapted inside the model's forward: {mut.input_size} px images -> {convention.describe()} "
                     "(budgets stay in [0, 1] at the run's size)")

    def calibrate(self) -> None:
        """The operating point on the dev split (never on test), the clean test rates of an anti-spoofing model,
        and the model card check (a failed one marks every cell of the run unreliable)."""
        model, size, device = self.loaded.module, self.mut.input_size, self.device
        self.dev = dev = self.protocol.calibrate(model, self.dev_split, device)
        self.log(dev.describe())
        native = self.loaded.card.get("native_threshold")
        if native:  # an external model's own rule, recorded beside the dev threshold (which is what decides)
            self.log(f"native threshold of {self.mut.name}: {native['rule']} {native['value']:g} "
                     f"({native['facebench_score']}); the run decides at the dev threshold above")
        self.op = dev.operating_point
        self.test_metrics = self.protocol.test_metrics(model, size, device, self.op.threshold)
        card, self.card_note = comparable_card(self.loaded.card, self.protocol.name, self.cfg.flip_tta)
        if self.card_note:
            self.log(f"model card: {self.card_note}")
        self.card_tau = card.get("dev", {}).get("threshold")
        self.card_reproduces = self.card_tau is not None and abs(float(self.card_tau) - self.op.threshold) <= 1e-4
        if self.card_tau is not None and not self.card_reproduces:
            self.log(f"warning: the dev threshold {self.op.threshold:.4f} differs from the model card's {float(self.card_tau):.4f}")
        self.card_check = checks.check_card(card, dev.as_card(), self.mut.task)
        self.run_reasons = [self.card_check.detail] if self.card_check is not None and not self.card_check.passed else []
        for reason in self.run_reasons:
            self.log(f"integrity: {reason}; every cell of this run is marked unreliable")
        if self.create_parent:
            self.store.path.parent.mkdir(parents=True, exist_ok=True)
            self.store.check_writable()

    def plan(self) -> None:
        """The grid of cells, their configurations and ids."""
        self.grid = plan(self.suite, self.goals, self.default_sources)
        if any(e.needs_sources() is not None for e in self.suite.entries):
            self.log(f"transfer sources: {', '.join(self.sources)}" if self.sources else
                     f"transfer: no other zoo model of task {self.mut.task} has shipped weights at {self.mut.input_size} px; "
                     "no transfer cells")
        data = self.protocol.data_fingerprint(self.mut.input_size)
        self.configs = [cell_config(pc, self.mut, self.cfg, self.protocol.name, self.loaded.sha256, self.op.rule,
                                    self.source_sha, data) for pc in self.grid]
        self.cids = [cell_id_of(c) for c in self.configs]

    def completed_run(self) -> Optional[RunOutcome]:
        """--if-needed: the outcome of a complete run of this configuration that holds every cell, if there is one
        (nothing is computed or recorded then)."""
        if not (self.cfg.if_needed and self.store.path.exists()):
            return None
        done = next((r for r in reversed(self.store.runs()) if r.get("status") == "complete" and same_run(r, self.cfg)
                     and set(self.cids) <= set(r["cell_ids"])), None)
        if done is None:
            return None
        self.log(f"--if-needed: run {done['run_id']} of this configuration holds every cell; nothing to do")
        stored = {c.cell_id: c for c in self.store.read_cells(sorted(set(self.cids)), arrays=False)}
        outcome = RunOutcome(done["run_id"], self.store.path, reused=len(self.cids))
        outcome.summaries = [{**config, **stored[cid].summary, "cell_id": cid, "unreliable": stored[cid].unreliable,
                              "unreliable_reason": stored[cid].unreliable_reason}
                             for config, cid in zip(self.configs, self.cids)]
        return outcome

    def metadata(self) -> dict:
        """What the store keeps about the run (docs/results-schema.md)."""
        mut, cfg, loaded, op, card_check = self.mut, self.cfg, self.loaded, self.op, self.card_check
        device = self.device
        return {
            "model": mut.name, "model_name": mut.model_name, "source": mut.source, "task": mut.task, "profile": mut.profile,
            "input_size": mut.input_size, "checkpoint": loaded.checkpoint, "checkpoint_sha256": loaded.sha256,
            "parameters": loaded.parameter_count(),
            "protocol": self.protocol.name, "suite": self.suite.name, "suite_budgets": self.suite.budgets(),
            "config": asdict(cfg), "seed": cfg.seed, "versions": versions(),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "host": f"{platform.node()} {platform.machine()} {torch.get_num_threads()} threads",
            "command": cfg.command, "threshold": op.threshold, "threshold_rule": op.rule,
            "dev_metrics": self.dev.as_card(),
            **({"test_metrics": self.test_metrics} if self.test_metrics is not None else {}),
            "card_threshold": self.card_tau, "card_reproduces": bool(self.card_reproduces),
            "card_check": (self.card_note or ("external model: its card has no dev metrics to reproduce"
                                              if loaded.card.get("external") else "no model card"))
                          if card_check is None else ("passed" if card_check.passed else card_check.detail),
            "eval_mode": "was in train mode; put into eval mode on load" if loaded.was_training else "in eval mode",
            "eot_setting": "auto" if cfg.eot is None else cfg.eot, "cells_planned": len(self.grid),
            "transfer_sources": list(self.sources), "executor": cfg.executor,
            **({"preprocess": self.preprocess} if self.preprocess is not None else {}),
            **({"external": loaded.card["weights"], "licence": loaded.card.get("licence", ""),
                "native_threshold": loaded.card.get("native_threshold") or {}} if loaded.card.get("external") else {}),
        }

    # ------------------------------------------------------------------------------------------ the run itself

    def open(self) -> None:
        """Begin the run in the store, or resume the newest unfinished run of this configuration (--resume); build
        the state cells are computed from."""
        cfg, store = self.cfg, self.store
        resumed = None
        if cfg.resume and store.path.exists():
            resumed = next((r for r in reversed(store.runs()) if r.get("status") != "complete" and same_run(r, cfg)), None)
            if resumed is None:
                self.log("--resume: the store holds no unfinished run of this configuration; starting a new run")
        if resumed is not None:
            store.reopen_run(resumed["run_id"], {"command": cfg.command, "executor": cfg.executor})
            self.run_id = resumed["run_id"]
            self.in_run = set(resumed["cell_ids"])
            self.log(f"resuming run {self.run_id} ({resumed.get('status')}, {len(self.in_run)} of {len(self.grid)} cells stored)")
        else:
            self.run_id = store.begin_run(self.metadata())
            self.in_run = set()
        self.outcome = RunOutcome(self.run_id, store.path)
        self.state = RunState(RunSetup(cfg, self.op.threshold, tuple(self.sources), self.op.fold_thresholds), self.device,
                              self.loaded)
        if self.state.folded.folded:
            self.log(f"attacks differentiate a copy with {self.state.folded.folded} BatchNorm(s) folded into convolutions "
                     "(decisions use the model as loaded; --no-fold-bn to turn off)")
        elif self.state.folded.note:
            self.log(f"BatchNorm folding off: {self.state.folded.note}; the attacks differentiate the model as it is")
        self.integrity: dict[str, dict] = {}
        self.summaries: dict[int, dict] = {}
        self.shards_of: dict[str, list[ShardOutput]] = {}
        self.expected: dict[str, int] = {}
        self.meta_of: dict[str, tuple[int, dict, dict]] = {}  # cell id -> (plan index, config, attrs of the cell)
        self.duplicates: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self.monitor = RunProgress(self.progress, total=len(self.grid), concurrent=cfg.executor != "local")
        self.executor = None

    def schedule(self) -> None:
        """Every cell of the grid: reused when stored, else submitted to the executor; outputs recorded as they come."""
        self.together = budget_groups(self.grid, self.configs, self.cids, self.cfg, self.store.cell_ids(), self.device)
        self.executor = make_executor(self.cfg, self.state, self.monitor.meter, self.log)
        self.stop_signals.install()  # again: starting Ray replaces the SIGTERM handler with its own (an exit)
        for index, (pc, config, cid) in enumerate(zip(self.grid, self.configs, self.cids)):
            self.stop_signals.check()
            if cid in self.expected:  # the same cell twice in one grid: computed once, listed twice
                self.duplicates.append((index, cid))
                continue
            if self.store.has_cell(cid):
                self.record(index, cid, self.store.read_cells([cid], arrays=False)[0], computed=False)
                continue
            self.submit(index, pc, config, cid)
            self.store_outputs(self.executor.ready(block=False))
        while self.executor.pending():
            self.stop_signals.check()
            self.store_outputs(self.executor.ready(block=True))
        self.stop_signals.check()
        self.failures = self.executor.failures()

    def prepare(self, goal: str) -> None:
        """A goal's items, clean scores and integrity checks, before its first cell (the checks decide EOT)."""
        prep = self.state.prepared(goal, self.cfg.eot, run_checks=True)
        self.integrity[goal] = {"eot": prep.eot, **{c.name: ("passed" if c.passed else c.detail) for c in prep.checks}}
        for c in prep.checks:
            if not c.passed:
                self.log(f"integrity ({goal}): {c.detail}")

    def submit(self, index: int, pc: PlannedCell, config: dict, cid: str) -> None:
        """One cell to compute, as one job or one per shard."""
        if pc.goal not in self.state.goals:
            self.prepare(pc.goal)
        prep = self.state.goals[pc.goal]
        threshold = float("nan") if get_goal(pc.goal).items == "identification" else self.op.threshold
        attrs = {"run_id": self.run_id, "threshold": threshold, "eot": prep.eot}
        if self.op.fold_thresholds and get_goal(pc.goal).items != "identification":
            attrs["fold_thresholds"] = list(self.op.fold_thresholds)  # each pair judged at its fold's (sample id f<k>:)
        self.meta_of[cid] = (index, config, attrs)
        ranges = shard_ranges(len(prep.items.sample_ids), self.cfg.shard_size)
        self.expected[cid] = len(ranges)
        seed = cell_seed(config, self.cfg.seed)
        for k, (start, stop) in enumerate(ranges):
            job = CellJob(index, cid, pc, seed, prep.eot, cell_label(pc), k, len(ranges), start, stop,
                          self.together.get(cid, ()))
            self.monitor.cell_started(job.label, k, len(ranges))
            self.executor.submit(job)

    def store_outputs(self, outputs: list[ShardOutput]) -> None:
        """Store each cell whose shards are all in: merged, finished by its kind, flagged by the goal's checks."""
        for out in outputs:
            self.shards_of.setdefault(out.cell_id, []).append(out)
            if len(self.shards_of[out.cell_id]) < self.expected[out.cell_id]:
                continue
            index, config, attrs = self.meta_of[out.cell_id]
            pc = self.grid[index]
            arrays, measured, seconds = merge_shards(pc.cell_kind, self.shards_of.pop(out.cell_id))
            attrs, line = pc.entry.finish(pc, {**attrs, **measured}, arrays, self.source_sha)
            if line:
                self.log(line)
            prep = self.state.goals[pc.goal]
            reasons = self.run_reasons + prep.reasons()
            if prep.items.rule:
                attrs["decision_rule"] = prep.items.rule
            cell = CellResult(out.cell_id, config, arrays, summarise(arrays, seconds), attrs, bool(reasons),
                              "; ".join(reasons))
            # cell + run entry: one transaction
            self.store.write_cell(cell, run_id=None if out.cell_id in self.in_run else self.run_id)
            self.in_run.add(out.cell_id)
            self.record(index, out.cell_id, cell, computed=True)

    def record(self, index: int, cid: str, cell: CellResult, computed: bool) -> None:
        """A cell of the run is in the store (computed now, or reused): its summary row and progress."""
        if cid not in self.in_run:
            self.store.add_cell_to_run(self.run_id, cid)
            self.in_run.add(cid)
        self.summaries[index] = {**self.configs[index], **cell.summary, "cell_id": cid, "unreliable": cell.unreliable,
                                 "unreliable_reason": cell.unreliable_reason}
        if computed:
            self.outcome.computed += 1
        else:
            self.outcome.reused += 1
        self.monitor.cell_done(cell_label(self.grid[index]), computed, cell.summary)

    def check_across_cells(self) -> None:
        """Duplicate cells share their summary; the cross-cell checks run on every cell of the run (reused ones
        included), then the run-level reasons reach reused cells; failed cells fail the run (after the others
        are stored)."""
        outcome, summaries = self.outcome, self.summaries
        first = {cid: i for i, cid in reversed(list(enumerate(self.cids)))}
        for index, cid in self.duplicates:
            if first[cid] in summaries:
                summaries[index] = dict(summaries[first[cid]])
                outcome.reused += 1
        ordered = [summaries[i] for i in sorted(summaries)]
        flags = checks.cross_cell_checks(ordered)
        for s in ordered:
            new = [r for r in flags.get(s["cell_id"], []) + self.run_reasons if r not in s["unreliable_reason"].split("; ")]
            if new:
                self.store.flag_cell(s["cell_id"], new)
                s["unreliable"] = True
                s["unreliable_reason"] = "; ".join([r for r in s["unreliable_reason"].split("; ") if r] + new)
        for reason in sorted({r for rs in flags.values() for r in rs}):
            self.log(f"integrity: {reason}")
        outcome.summaries = ordered
        if self.failures:
            raise CellFailedError(f"{len(self.failures)} cell(s) failed and were not stored (the others are): "
                                  + "; ".join(self.failures[:3]) + (" ..." if len(self.failures) > 3 else ""))

    def finish(self) -> RunOutcome:
        """Mark the run complete, with what it computed and how."""
        state, outcome = self.state, self.outcome
        self.store.finish_run(self.run_id, "complete", {
            "cells_computed": outcome.computed, "cells_reused": outcome.reused, "integrity": self.integrity,
            "batch_size_used": state.batch.size, "forward": {**asdict(state.forward), **state.folded.describe()},
            "cells_unreliable": sum(bool(s["unreliable"]) for s in outcome.summaries)})
        self.monitor.run_done(outcome.computed, outcome.reused)
        return outcome


__all__ = ["Run", "RunConfig", "RunOutcome", "comparable_card", "run_benchmark", "StopSignalsAsInterrupt", "versions"]
