"""A claim's grid: one training per (arm, axis value, protocol, seed), each named deterministically, with the
`facebench train` command that reproduces it; and the overrides the CLI applies to claims (seeds, axis values,
protocols), checked before any work."""
from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.claims.records import Claim
from bench.errors import BadInputError


@dataclass(frozen=True)
class GridPoint:
    """One training of a claim's grid, and what it is evaluated as."""

    claim: str
    arm: str
    variant: str
    options: tuple[tuple[str, Any], ...]  # the recipe options, sorted by name
    protocol: str
    epochs: float  # int when whole (`epochs_value`)
    seed: int
    x: Optional[float]  # the axis value (None: the claim has no axis, or a shared start)
    profile: str
    start: Optional["GridPoint"] = None  # the shared start it continues from (`Arm.shared_stages`), trained first
    evaluated: bool = True  # False for a shared start: trained, not measured

    @property
    def is_start(self) -> bool:
        return not self.evaluated

    @property
    def train_protocol(self) -> str:
        """The protocol it is trained on: its protocol's `base_protocol` (`synth-fr-dev` trains on `synth-fr`, the same
        train split), so that the points of two such protocols share one training."""
        from bench.protocols import get_protocol

        return get_protocol(self.protocol).base_protocol

    @property
    def name(self) -> str:
        """The file stem of its weights and card: readable and the same for the same training."""
        parts = [self.variant] + [f"{k.replace('_', '-')}-{_value(v)}" for k, v in self.options]
        parts += [_stem(self.train_protocol), self.profile, f"e{self.epochs}", f"s{self.seed}"]
        return "_".join(parts)

    @property
    def evaluation_name(self) -> str:
        """The file stem of its evaluations: its name, and the protocol it is evaluated on where that is not the one
        it is trained on."""
        return self.name if self.protocol == self.train_protocol else f"{self.name}_on-{_stem(self.protocol)}"

    def command(self, weights: str) -> str:
        """The `facebench train` line that trains exactly this point into `weights`."""
        words = ["facebench", "train", "--model", self.variant, "--profile", self.profile, "--protocol", self.train_protocol,
                 "--epochs", str(self.epochs), "--seed", str(self.seed)]
        for k, v in self.options:
            words += ["--" + k.replace("_", "-"), _value(v)]
        if self.start is not None:  # beside this point's weights, in the same work directory
            words += ["--init", str(Path(weights).parent / f"{self.start.name}.safetensors")]
        words += ["--out", weights]
        return " ".join(shlex.quote(w) for w in words)

    def describe(self) -> str:
        """One line for progress and listings."""
        opts = ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in self.options)
        trained = f" (trained on {self.train_protocol})" if self.train_protocol != self.protocol else ""
        line = f"{self.arm} [{opts or 'no options'}] on {self.protocol}{trained}, {self.epochs} epochs, seed {self.seed}"
        if self.is_start:
            return line + " (the shared start of this seed's axis values, not evaluated)"
        return line + (" (from its shared start)" if self.start is not None else "")


def _stem(protocol: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "", protocol)


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def points(claim: Claim) -> list[GridPoint]:
    """The claim's grid in a stable order: arm, axis value, protocol, seed; an arm's shared starts
    (`Arm.shared_stages`) come before its axis values."""
    from bench.protocols import get_protocol
    from models_zoo import get_variant

    out = []
    for arm in claim.arms:
        zoo = get_variant(arm.variant).zoo_epochs.get(claim.profile)
        starts: dict[tuple[str, int], GridPoint] = {}
        if arm.shared_stages and claim.axis is not None:
            epochs, options = arm.training(0, zoo)
            for protocol in claim.protocols:
                for seed in range(claim.seeds):
                    start = GridPoint(claim.name, arm.label, arm.variant, tuple(sorted(options.items())), protocol,
                                      epochs, seed, None, claim.profile, evaluated=False)
                    starts.setdefault((start.train_protocol, seed), start)  # one per training: synth-fr-dev shares
            out += starts.values()
        for x in claim.axis_values():
            epochs, options = arm.training(x, zoo)
            for protocol in claim.protocols:
                trained_on = get_protocol(protocol).base_protocol
                for seed in range(claim.seeds):
                    out.append(GridPoint(claim.name, arm.label, arm.variant, tuple(sorted(options.items())), protocol,
                                         epochs, seed, x, claim.profile, start=starts.get((trained_on, seed))))
    return out


def parse_axis_values(text: str, flag: str) -> tuple[float, ...]:
    """`1,0.5,4` -> (0.5, 1, 4): positive numbers (whole ones as ints, `epochs_value`), no repeats, in increasing
    order."""
    from bench.config import epochs_value

    words = [w.strip() for w in text.split(",")]
    wanted = f"{flag} needs a comma-separated list of positive numbers (0.5: half an epoch), got {text!r}"
    if not text.strip() or any(not w for w in words):
        raise BadInputError(wanted)
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise BadInputError(wanted) from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise BadInputError(f"{flag}: every value must be positive, got {text!r}")
    if len(set(values)) != len(values):
        raise BadInputError(f"{flag}: a value is repeated in {text!r}")
    return tuple(epochs_value(v) for v in sorted(values))


def select_claims(only: Sequence[str] = (), *, seeds: Optional[int] = None, axis: Optional[dict[str, str]] = None,
                  protocols: Sequence[str] = ()) -> list[Claim]:
    """The registered claims (or those `only` names) with the CLI's overrides applied; every bad input is refused
    here, before any work: unknown claim or protocol, seeds < 1, a bad axis list, an override no selected claim
    takes, a protocol of another task than its claim's."""
    from bench.claims.records import CLAIMS
    from bench.protocols import get_protocol

    claims = [CLAIMS.get(n) for n in dict.fromkeys(only)] if only else [CLAIMS.get(n) for n in CLAIMS]
    if seeds is not None:
        if seeds < 1:
            raise BadInputError(f"--seeds must be at least 1, got {seeds}")
        claims = [replace(c, seeds=seeds) for c in claims]
    for flag, text in (axis or {}).items():
        values = parse_axis_values(text, flag)
        if not any(c.axis is not None and c.axis.flag == flag for c in claims):
            raise BadInputError(f"{flag} applies to claims with that axis; none of {', '.join(c.name for c in claims)} has it")
        claims = [replace(c, axis=replace(c.axis, values=values)) if c.axis is not None and c.axis.flag == flag else c
                  for c in claims]
    if protocols:
        names = list(dict.fromkeys(p.strip() for text in protocols for p in text.split(",") if p.strip()))
        if not names:
            raise BadInputError("--protocols needs at least one protocol name")
        tasks = {n: get_protocol(n).task for n in names}  # an unknown name is refused here
        for name, task in tasks.items():
            if not any(c.kind == task for c in claims):
                raise BadInputError(f"--protocols {name}: a {task} protocol, but no selected claim is about {task} models")
        claims = [replace(c, protocols=tuple(n for n in names if tasks[n] == c.kind)) if c.kind in tasks.values() else c
                  for c in claims]
    return claims
