"""How one trained grid point is measured, per kind of claim; each result is a flat dict of figures.

- `fr-attacks`: the existing runner (`facebench run --model V --checkpoint W --attack-suite claims-fr`) into the
  work directory's store; from its cell summaries, clean accuracy per goal, robust accuracy per attack and budget,
  and the median minimal budget of the attacks that measure one (`attacks.declares(..., "measures_min_eps")`);
  the dev TAR from the model card.
- `fas-hter`: `bench.protocols.calibration.evaluate` on the protocol of the card: the test HTER at the source
  domains' dev EER threshold.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.claims.grid import GridPoint
from bench.claims.records import Measure
from bench.config import format_eps

FR_SUITE = "claims-fr"
FR_STORE = "claims-fr.h5"
FR_SAMPLING_SEED = 0  # the same pairs for every model
RATE = (0.0, 1.0)


@dataclass(frozen=True)
class Context:
    """Where and how evaluations run: the work directory (its store), the FR items per goal, the device."""

    work: Path
    samples: int = 200
    device: str = "cpu"


@dataclass(frozen=True)
class Evaluation:
    """One way of measuring a training: `settings` is what its figures depend on besides the weights (a cached
    result is reused only when they are the same); `run` returns the figures (and `unreliable`: cells the
    integrity checks flagged)."""

    name: str
    describe: str
    settings: Callable[[GridPoint, Context], dict]
    run: Callable[[GridPoint, Path, dict, Context], dict]


# --------------------------------------------------------------------------- face recognition

def clean_key(goal: str) -> str:
    return f"{goal} clean"


def robust_key(goal: str, attack: str, norm: str, eps: float) -> str:
    return f"{goal} {attack} {norm} {format_eps(norm, eps)}"


def minimal_key(goal: str, norm: str) -> str:
    return f"{goal} minimal {norm}"


DEV_TAR = "dev TAR"


def fr_measures(goals: tuple[str, ...] = ("dodging", "impersonation"), suite: str = FR_SUITE) -> tuple[Measure, ...]:
    """The measures of an FR claim, read from the suite it is attacked with: the dev TAR, then per goal its clean
    accuracy, the robust accuracy of each plain attack at each budget, and the median minimal budget of each attack
    that measures one (up to its largest budget: the search's ceiling)."""
    from attacks import declares
    from bench.suites import load_suite

    entries = load_suite(suite).entries
    out = [Measure(DEV_TAR, "dev TAR at FAR 1e-3", "%", True, bounds=RATE)]
    for goal in goals:
        out.append(Measure(clean_key(goal), f"{goal} clean accuracy", "%", True, bounds=RATE))
        for e in entries:
            if declares(e.attack, "measures_min_eps"):
                out.append(Measure(minimal_key(goal, e.norm), f"{goal} median minimal {e.norm.capitalize()} perturbation",
                                   "/255" if e.norm == "linf" else "", True, 255.0 if e.norm == "linf" else 1.0,
                                   ceiling=max(e.eps)))
            else:
                out += [Measure(robust_key(goal, e.attack, e.norm, eps), f"{goal} {_attack_label(e)} robust accuracy at "
                                f"{format_eps(e.norm, eps)}", "%", True, bounds=RATE) for eps in e.eps]
    return tuple(out)


def _attack_label(entry) -> str:
    steps = entry.params.get("steps")
    return f"{entry.attack.upper()}-{steps}" if steps else entry.attack


def _fr_settings(point: GridPoint, ctx: Context) -> dict:
    from bench.suites import load_suite

    suite = load_suite(FR_SUITE)
    return {"evaluation": "fr-attacks", "suite": FR_SUITE, "entries": [e.label() + f" {e.norm} {list(e.eps)}"
                                                                       for e in suite.entries],
            "protocol": point.protocol, "samples": ctx.samples, "sampling_seed": FR_SAMPLING_SEED}


def _fr_run(point: GridPoint, weights: Path, card: dict, ctx: Context) -> dict:
    from attacks import declares
    from bench.runner import RunConfig, run_benchmark

    store = ctx.work / FR_STORE
    command = " ".join(shlex.quote(w) for w in (
        "facebench", "run", "--model", point.variant, "--checkpoint", str(weights), "--profile", point.profile,
        "--protocol", point.protocol, "--attack-suite", FR_SUITE, "--samples", str(ctx.samples),
        "--seed", str(FR_SAMPLING_SEED), "--device", ctx.device, "--store", str(store)))
    cfg = RunConfig(model=point.variant, suite=FR_SUITE, protocol=point.protocol, samples=ctx.samples,
                    seed=FR_SAMPLING_SEED, device=ctx.device, store=str(store), checkpoint=str(weights),
                    profile=point.profile, command=command)
    outcome = run_benchmark(cfg, progress=False)
    figures: dict = {DEV_TAR: card.get("dev", {}).get("dev_tar")}
    unreliable = []
    for s in outcome.summaries:
        goal, norm = s["goal"], s["norm"]
        figures[clean_key(goal)] = s["clean_accuracy"]
        if declares(s["attack"], "measures_min_eps"):
            figures[minimal_key(goal, norm)] = s.get("median_min_eps", float("nan"))
        else:
            figures[robust_key(goal, s["attack"], norm, s["eps"])] = s["robust_accuracy"]
        if s.get("unreliable"):
            unreliable.append(f"{goal} {s['attack']} {norm} {format_eps(norm, s['eps'])}: {s['unreliable_reason']}")
    return {"figures": figures, "unreliable": unreliable, "run_id": outcome.run_id, "store": str(store),
            "command": command}


# --------------------------------------------------------------------------- face anti-spoofing

TEST_HTER = "test HTER"


def fas_measures() -> tuple[Measure, ...]:
    return (Measure(TEST_HTER, "test HTER at the source dev EER threshold", "%", False, bounds=RATE),)


def _fas_settings(point: GridPoint, ctx: Context) -> dict:
    return {"evaluation": "fas-hter", "protocol": point.protocol,
            "rule": "test HTER (frame level) at the EER threshold of the source domains' dev split"}


def _fas_run(point: GridPoint, weights: Path, card: dict, ctx: Context) -> dict:
    from bench.protocols.calibration import evaluate_checkpoint

    result = evaluate_checkpoint(weights)
    return {"figures": {TEST_HTER: result.test.hter, "test ACER": result.test.acer, "source dev ACER": result.dev.acer},
            "unreliable": [], "line": result.line()}


EVALUATIONS: dict[str, Evaluation] = {
    "fr-attacks": Evaluation("fr-attacks", f"the `{FR_SUITE}` suite through `facebench run --checkpoint`",
                             _fr_settings, _fr_run),
    "fas-hter": Evaluation("fas-hter", "`bench.protocols.calibration.evaluate` (test HTER at the source dev EER "
                           "threshold)", _fas_settings, _fas_run),
}
