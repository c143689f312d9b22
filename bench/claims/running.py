"""Running claims: every grid point trained through `train_variant` into the work directory and evaluated once,
both resumable.

Work directory layout (default `results/claims`):

    weights/<point>.safetensors + weights/<point>.json   the training and its model card
    evaluations/<point>.<evaluation>.json                 its figures, with the card's sha256 and the settings
    claims-fr.h5                                          the store of the FR attack runs

A point whose weights and card exist, whose card holds the same training command (its `--out` aside, and its
`--init` read as a file name, so the directory may move) and whose sha256 matches the weights, is not trained
again; a point that continues a shared start (`Arm.shared_stages`) also needs its card to name the start's
present weights. An evaluation whose file holds the same weights' sha256 and the same settings is not run again.
So a long run can be stopped and continued.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import multiprocessing
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from bench.claims.evaluations import EVALUATIONS, Context
from bench.claims.figures import Figures
from bench.claims.grid import GridPoint, points
from bench.claims.records import Claim
from bench.errors import WorkerFailedError
from bench.config import write_atomic

Log = Callable[[str], None]


def weights_path(work: Path, point: GridPoint) -> Path:
    return Path(work) / "weights" / f"{point.name}.safetensors"


def evaluation_path(work: Path, point: GridPoint, evaluation: str) -> Path:
    return Path(work) / "evaluations" / f"{point.evaluation_name}.{evaluation}.json"


def _without_out(command: str) -> list[str]:
    """The words of a training command without its `--out` and with only the file name of its `--init`."""
    words = shlex.split(command)
    out, i = [], 0
    while i < len(words):
        if words[i] == "--out":
            i += 2
            continue
        if words[i] == "--init" and i + 1 < len(words):
            out += ["--init", Path(words[i + 1]).name]
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def built_parameters(variant: str, profile: str) -> int:
    """The parameter count of `variant` as the code builds it now (what its card's `parameters` must say)."""
    from models_zoo import get_variant

    return int(sum(p.numel() for p in get_variant(variant).build(profile).parameters()))


@functools.lru_cache(maxsize=4096)
def _sha256_of(path: str, inode: int, mtime_ns: int, size: int) -> str:
    from models_zoo.checkpoint import sha256_file

    return sha256_file(Path(path))


def file_sha256(path: Path) -> str:
    """`sha256_file`, hashed once per version of the file in this process (a plan, each worker pass and the gather
    ask for the same weights, a continuation's check for its start's too); a file written again (atomically: a new
    inode) is hashed again."""
    st = Path(path).stat()
    return _sha256_of(str(path), st.st_ino, st.st_mtime_ns, st.st_size)


def _stale_start(card: dict, profile: str) -> bool:
    """Whether the card fine-tuned a zoo variant's shipped weights (`--init VARIANT`) that have changed since
    (`triplet-adv` from `facenet-baseline`'s: a retrained baseline makes every such training stale)."""
    from models_zoo.checkpoint import shipped_weights

    init = (card.get("training") or {}).get("init")
    if not isinstance(init, dict) or str(init.get("from", "")).endswith(".safetensors"):
        return False
    shipped = shipped_weights(str(init.get("from")), profile)
    return shipped is None or file_sha256(shipped) != init.get("sha256")


def trained_card(work: Path, point: GridPoint) -> Optional[dict]:
    """The card of the point's training when it is done (same command, on the same data, weights matching the
    card), else None. Not reused either: a card without the data's fingerprint or with another one (the embedded
    world changed since), one whose network has another parameter count than the code builds now, one that
    fine-tuned shipped weights that have changed since, one that continued a start trained again since."""
    from bench.protocols import get_protocol
    from models_zoo.checkpoint import card_path

    weights = weights_path(work, point)
    card = _read_json(card_path(weights)) if weights.exists() else None
    if not card or _without_out(card.get("training_command", "")) != _without_out(point.command(str(weights))):
        return None
    if "data" not in card or card["data"] != get_protocol(point.train_protocol).data_fingerprint(card.get("input_size", 64)):
        return None
    if card.get("parameters") != built_parameters(point.variant, point.profile) or _stale_start(card, point.profile):
        return None
    if point.start is not None:  # continued from a start that has since been trained again: train again too
        start = trained_card(work, point.start)
        if start is None or (card.get("training") or {}).get("stages_from", {}).get("sha256") != start["sha256"]:
            return None
    return card if card.get("sha256") == file_sha256(weights) else None


def cached_evaluation(work: Path, point: GridPoint, claim: Claim, ctx: Context, card: Optional[dict]) -> Optional[dict]:
    """The stored evaluation of the point when it was made of these weights with these settings, else None."""
    if card is None:
        return None
    stored = _read_json(evaluation_path(work, point, claim.evaluation))
    settings = EVALUATIONS[claim.evaluation].settings(point, ctx)
    if not stored or stored.get("sha256") != card["sha256"] or stored.get("settings") != settings:
        return None
    return stored


@dataclass
class Step:
    """One grid point of one claim, and what is left to do for it."""

    claim: Claim
    point: GridPoint
    train: bool
    evaluate: bool


@dataclass
class Plan:
    """Every grid point of the selected claims, each with what it still needs (a training shared by two claims is
    listed under the first)."""

    steps: list[Step] = field(default_factory=list)

    @property
    def trainings(self) -> int:
        return sum(s.train for s in self.steps)

    @property
    def evaluations(self) -> int:
        return sum(s.evaluate for s in self.steps)

    @property
    def starts(self) -> int:
        """The shared starts among the steps (trained, never evaluated)."""
        return sum(s.point.is_start for s in self.steps)

    @property
    def measured(self) -> int:
        """The grid points that are evaluated (every step but the shared starts)."""
        return len(self.steps) - self.starts

    def lines(self, work: Path) -> list[str]:
        """What `--dry-run` prints: every training with its command and what it needs, then the counts."""
        out, n = [], len(self.steps)
        for i, s in enumerate(self.steps, 1):
            todo = ", ".join(w for w, need in (("train", s.train), ("evaluate", s.evaluate)) if need) or "done"
            out.append(f"[{i}/{n}] {s.claim.name}: {s.point.describe()}: {todo}")
            if s.train:
                out.append(f"    {s.point.command(str(weights_path(work, s.point)))}")
        shared = f" and {self.starts} shared starts" if self.starts else ""
        distinct = len({s.point.name for s in self.steps})  # points evaluated on two protocols share a training
        out.append(f"{self.measured} grid points{shared}: {self.trainings} trainings and {self.evaluations} "
                   f"evaluations to do ({distinct - self.trainings} trained, {self.measured - self.evaluations} evaluated "
                   f"already) in {work}")
        return out


def make_plan(claims: list[Claim], ctx: Context) -> Plan:
    """What running `claims` in `ctx.work` would do, read from the work directory (nothing is written)."""
    plan, seen = Plan(), set()
    for claim in claims:
        for point in points(claim):
            card = trained_card(ctx.work, point)
            evaluated = not point.evaluated or cached_evaluation(ctx.work, point, claim, ctx, card) is not None
            plan.steps.append(Step(claim, point, card is None and point.name not in seen, not evaluated))
            seen.add(point.name)
    return plan


def train_point(point: GridPoint, ctx: Context) -> dict:
    """Train the point into the work directory through `train_variant`; returns its card."""
    from bench.config import resolve_device
    from models_zoo import training

    weights = weights_path(ctx.work, point)
    options = dict(point.options)
    if point.start is not None:
        options["init"] = str(weights_path(ctx.work, point.start))
    _, card = training.train_variant(point.variant, profile=point.profile, protocol=point.train_protocol, epochs=point.epochs,
                                     out=weights, device=resolve_device(ctx.device), seed=point.seed, progress=False,
                                     command=point.command(str(weights)), options=options)
    return card


def evaluate_point(point: GridPoint, claim: Claim, ctx: Context, card: dict) -> dict:
    """Evaluate the trained point and store the result beside the others (atomically)."""
    evaluation = EVALUATIONS[claim.evaluation]
    settings = evaluation.settings(point, ctx)
    result = evaluation.run(point, weights_path(ctx.work, point), card, ctx)
    stored = {"point": point.evaluation_name, "claim": claim.name, "arm": point.arm, "x": point.x, "seed": point.seed,
              "protocol": point.protocol, "sha256": card["sha256"], "settings": settings, "device": ctx.device, **result}
    write_atomic(evaluation_path(ctx.work, point, claim.evaluation), json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return stored


@dataclass
class Outcome:
    """A claim's figures, the evaluations' integrity notes, and how much was computed now."""

    claim: Claim
    figures: Figures
    unreliable: list[str] = field(default_factory=list)
    trained: int = 0
    evaluated: int = 0


@contextlib.contextmanager
def point_lock(work: Path, point: GridPoint) -> Iterator[bool]:
    """An exclusive lock on the point while one process trains and evaluates it (`locks/<point>.lock` in the work
    directory, an flock: released when the process ends, however it ends); yields False when another holds it."""
    from bench.store import try_flock

    path = Path(work) / "locks" / f"{point.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with try_flock(path) as held:
        yield bool(held)


WAIT_S = 5.0
"""How long a worker waits before looking again at the points other workers hold (or whose start they train)."""


def work_through(plan: Plan, ctx: Context, log: Log, outcomes: dict[str, "Outcome"], worker: str = "",
                 keep_going: Callable[[], bool] = lambda: True) -> None:
    """Train and evaluate what the plan says is left, a point at a time under its lock, so that several workers
    (`--jobs`) share one work directory: a point another worker holds, or whose shared start is not trained yet, is
    left for later; a worker stops when nothing is left, or before its next point once `keep_going` says no."""
    n = len(plan.steps)
    pending = [(i, s) for i, s in enumerate(plan.steps, 1) if s.train or s.evaluate]
    while pending:
        left = []
        for i, step in pending:
            if not keep_going():
                return
            point, outcome = step.point, outcomes[step.claim.name]
            if point.start is not None and trained_card(ctx.work, point.start) is None:
                left.append((i, step))  # its start is being trained (or failed) elsewhere
                continue
            with point_lock(ctx.work, point) as held:
                if not held:
                    left.append((i, step))
                    continue
                card = trained_card(ctx.work, point)  # again, under the lock: another worker may have done it
                if card is None:
                    log(f"claims:{worker} [{i}/{n}] training {step.claim.name}: {point.describe()}")
                    began = time.time()
                    card = train_point(point, ctx)
                    outcome.trained += 1
                    log(f"claims:{worker} [{i}/{n}] trained in {time.time() - began:.0f} s")
                if point.is_start or cached_evaluation(ctx.work, point, step.claim, ctx, card) is not None:
                    continue
                log(f"claims:{worker} [{i}/{n}] evaluating {step.claim.name}: {point.describe()}")
                began = time.time()
                evaluate_point(point, step.claim, ctx, card)
                outcome.evaluated += 1
                log(f"claims:{worker} [{i}/{n}] evaluated in {time.time() - began:.0f} s")
        if len(left) == len(pending):
            time.sleep(WAIT_S)
        pending = left


def gather(plan: Plan, ctx: Context, outcomes: dict[str, "Outcome"], complete: bool = True) -> int:
    """Every evaluated point's figures from the work directory, into its claim's outcome; returns how many points
    have none (with `complete`, after a run, there must be none)."""
    missing = 0
    for step in plan.steps:
        point, outcome = step.point, outcomes[step.claim.name]
        if point.is_start:
            continue
        card = trained_card(ctx.work, point)
        stored = cached_evaluation(ctx.work, point, step.claim, ctx, card)
        if stored is None and not complete:
            missing += 1
            continue
        if stored is None:
            raise WorkerFailedError(f"claims: {point.evaluation_name} has no evaluation in {ctx.work} after the run (a worker failed? "
                                "the same command continues)")
        outcome.figures.add(point.arm, point.protocol, point.x, point.seed, stored["figures"])
        outcome.unreliable += [f"{point.evaluation_name}: {u}" for u in stored.get("unreliable", [])]
    return missing


def tabulate_only(claims: list[Claim], ctx: Context, log: Log = lambda s: None) -> list[Outcome]:
    """The figures of what the work directory holds now, training and evaluating nothing (a long run's progress:
    a cell with fewer seeds shows its n, a verdict reading it says "not enough seeds")."""
    plan = make_plan(claims, ctx)
    outcomes = {c.name: Outcome(c, Figures(c)) for c in claims}
    missing = gather(plan, ctx, outcomes, complete=False)
    log(f"claims: {plan.measured - missing} of {plan.measured} grid points evaluated in {ctx.work}; nothing trained or evaluated now")
    return list(outcomes.values())


def _helper(claims: list[Claim], ctx: Context, worker: int, threads: int) -> None:
    """A `--jobs` helper process: works through the same plan beside the main process, logging on stderr."""
    import sys

    import torch

    torch.set_num_threads(threads)
    importlib.import_module("bench.claims.seeds")
    parent = os.getppid()
    plan = make_plan(claims, ctx)
    outcomes = {c.name: Outcome(c, Figures(c)) for c in claims}
    # a helper whose main process is gone (killed) stops before its next point instead of working on alone
    work_through(plan, ctx, lambda line: print(line, file=sys.stderr, flush=True), outcomes, worker=f" (worker {worker})",
                 keep_going=lambda: os.getppid() == parent)


@dataclass(frozen=True)
class Helper:
    """A started helper: `wait` joins it and gives its exit code, `stop` ends it now (what it was training is lost,
    what it finished is kept)."""

    wait: Callable[[], int]
    stop: Callable[[], None]


Spawner = Callable[[Callable[[], None]], Helper]
"""Starts a helper (a no-argument function)."""


def spawn_process(target: Callable[[], None]) -> Helper:
    process = multiprocessing.get_context("spawn").Process(target=target, daemon=True)
    process.start()

    def wait() -> int:
        process.join()
        return int(process.exitcode or 0)

    return Helper(wait, process.terminate)


def run_claims(claims: list[Claim], ctx: Context, log: Log = lambda s: None, jobs: int = 1,
               spawn: Spawner = spawn_process) -> list[Outcome]:
    """Train and evaluate every grid point of `claims` that is not done yet, then gather every claim's figures.

    With `jobs` > 1, jobs - 1 helper processes work through the same plan beside this one (each point under a lock
    in the work directory), each with cpu_count / jobs torch threads; the figures are read back from the work
    directory once every worker is done. `outcomes`' trained / evaluated count this process's work only."""
    import torch

    Path(ctx.work).mkdir(parents=True, exist_ok=True)
    plan = make_plan(claims, ctx)
    outcomes = {c.name: Outcome(c, Figures(c)) for c in claims}
    shared = f" and {plan.starts} shared starts" if plan.starts else ""
    log(f"claims: {plan.measured} grid points{shared}, {plan.trainings} "
        f"trainings and {plan.evaluations} evaluations to do in {ctx.work}" + (f", {jobs} workers" if jobs > 1 else ""))
    helpers: list[Helper] = []
    if jobs > 1 and (plan.trainings or plan.evaluations):
        threads = max(1, (os.cpu_count() or 1) // jobs)
        torch.set_num_threads(threads)
        helpers = [spawn(functools.partial(_helper, claims, ctx, k, threads)) for k in range(2, jobs + 1)]
    try:
        work_through(plan, ctx, log, outcomes, worker=" (worker 1)" if helpers else "")
    except BaseException:  # Ctrl-C, SIGTERM, a failed training: the helpers stop too, now
        for helper in helpers:
            helper.stop()
        for helper in helpers:
            helper.wait()
        raise
    failed = [k for k, helper in enumerate(helpers, 2) if helper.wait() != 0]
    if failed:
        raise WorkerFailedError(f"claims: worker {', '.join(map(str, failed))} failed (its error is above); what the workers "
                            f"finished is kept in {ctx.work}, the same command continues")
    gather(plan, ctx, outcomes)
    return list(outcomes.values())
