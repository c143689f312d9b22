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

import functools
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bench.claims.evaluations import EVALUATIONS, Context
from bench.claims.figures import Figures
from bench.claims.grid import GridPoint, points
from bench.claims.records import Claim
from bench.report import write_atomic

Log = Callable[[str], None]


def weights_path(work: Path, point: GridPoint) -> Path:
    return Path(work) / "weights" / f"{point.name}.safetensors"


def evaluation_path(work: Path, point: GridPoint, evaluation: str) -> Path:
    return Path(work) / "evaluations" / f"{point.name}.{evaluation}.json"


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


def _stale_start(card: dict, profile: str) -> bool:
    """Whether the card fine-tuned a zoo variant's shipped weights (`--init VARIANT`) that have changed since
    (`triplet-adv` from `facenet-baseline`'s: a retrained baseline makes every such training stale)."""
    from models_zoo.checkpoint import sha256_file, shipped_weights

    init = (card.get("training") or {}).get("init")
    if not isinstance(init, dict) or str(init.get("from", "")).endswith(".safetensors"):
        return False
    shipped = shipped_weights(str(init.get("from")), profile)
    return shipped is None or sha256_file(shipped) != init.get("sha256")


def trained_card(work: Path, point: GridPoint) -> Optional[dict]:
    """The card of the point's training when it is done (same command, on the same data, weights matching the
    card), else None. Not reused either: a card without the data's fingerprint or with another one (the embedded
    world changed since), one whose network has another parameter count than the code builds now, one that
    fine-tuned shipped weights that have changed since, one that continued a start trained again since."""
    from bench.protocols import get_protocol
    from models_zoo.checkpoint import card_path, sha256_file

    weights = weights_path(work, point)
    card = _read_json(card_path(weights)) if weights.exists() else None
    if not card or _without_out(card.get("training_command", "")) != _without_out(point.command(str(weights))):
        return None
    if "data" not in card or card["data"] != get_protocol(point.protocol).data_fingerprint(card.get("input_size", 64)):
        return None
    if card.get("parameters") != built_parameters(point.variant, point.profile) or _stale_start(card, point.profile):
        return None
    if point.start is not None:  # continued from a start that has since been trained again: train again too
        start = trained_card(work, point.start)
        if start is None or (card.get("training") or {}).get("stages_from", {}).get("sha256") != start["sha256"]:
            return None
    return card if card.get("sha256") == sha256_file(weights) else None


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

    def lines(self, work: Path) -> list[str]:
        """What `--dry-run` prints: every training with its command and what it needs, then the counts."""
        out, n = [], len(self.steps)
        for i, s in enumerate(self.steps, 1):
            todo = ", ".join(w for w, need in (("train", s.train), ("evaluate", s.evaluate)) if need) or "done"
            out.append(f"[{i}/{n}] {s.claim.name}: {s.point.describe()}: {todo}")
            if s.train:
                out.append(f"    {s.point.command(str(weights_path(work, s.point)))}")
        starts = sum(s.point.is_start for s in self.steps)
        measured = n - starts
        shared = f" and {starts} shared starts" if starts else ""
        out.append(f"{measured} grid points{shared}: {self.trainings} trainings and {self.evaluations} evaluations to do "
                   f"({n - self.trainings} trained, {measured - self.evaluations} evaluated already) in {work}")
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
    _, card = training.train_variant(point.variant, profile=point.profile, protocol=point.protocol, epochs=point.epochs,
                                     out=weights, device=resolve_device(ctx.device), seed=point.seed, progress=False,
                                     command=point.command(str(weights)), options=options)
    return card


def evaluate_point(point: GridPoint, claim: Claim, ctx: Context, card: dict) -> dict:
    """Evaluate the trained point and store the result beside the others (atomically)."""
    evaluation = EVALUATIONS[claim.evaluation]
    settings = evaluation.settings(point, ctx)
    result = evaluation.run(point, weights_path(ctx.work, point), card, ctx)
    stored = {"point": point.name, "claim": claim.name, "arm": point.arm, "x": point.x, "seed": point.seed,
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


def run_claims(claims: list[Claim], ctx: Context, log: Log = lambda s: None) -> list[Outcome]:
    """Train and evaluate every grid point of `claims` that is not done yet, then gather every claim's figures."""
    Path(ctx.work).mkdir(parents=True, exist_ok=True)
    plan = make_plan(claims, ctx)
    outcomes = {c.name: Outcome(c, Figures(c)) for c in claims}
    n = len(plan.steps)
    starts = sum(s.point.is_start for s in plan.steps)
    log(f"claims: {n - starts} grid points{f' and {starts} shared starts' if starts else ''}, {plan.trainings} "
        f"trainings and {plan.evaluations} evaluations to do in {ctx.work}")
    for i, step in enumerate(plan.steps, 1):
        point, outcome = step.point, outcomes[step.claim.name]
        card = trained_card(ctx.work, point)
        if card is None:
            log(f"claims: [{i}/{n}] training {step.claim.name}: {point.describe()}")
            start = time.time()
            card = train_point(point, ctx)
            outcome.trained += 1
            log(f"claims: [{i}/{n}] trained in {time.time() - start:.0f} s")
        if point.is_start:
            continue
        stored = cached_evaluation(ctx.work, point, step.claim, ctx, card)
        if stored is None:
            log(f"claims: [{i}/{n}] evaluating {step.claim.name}: {point.describe()}")
            start = time.time()
            stored = evaluate_point(point, step.claim, ctx, card)
            outcome.evaluated += 1
            log(f"claims: [{i}/{n}] evaluated in {time.time() - start:.0f} s")
        outcome.figures.add(point.arm, point.protocol, point.x, point.seed, stored["figures"])
        outcome.unreliable += [f"{point.name}: {u}" for u in stored.get("unreliable", [])]
    return list(outcomes.values())
