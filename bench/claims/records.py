"""Claims as data: what a seed method's abstract says, the grid that tests it, what is measured and the rule that
turns the figures into a verdict, all declared before anything is measured (like a RobustBench card).

A claim is one `Claim` record, registered with `register_claim` (`bench/claims/seeds.py` registers the seeds'
claims). Its arms are trainings of zoo variants with recipe options; each arm is trained at every value of the
claim's axis (if any), on every protocol, with every seed, and each training is evaluated once. The rule
(`bench/claims/rules.py`) reads the figures and says reproduced / not reproduced / not enough seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from bench.config import epochs_value
from bench.errors import BadInputError
from bench.goals import PROFILES, TASKS
from bench.registry import Registry

MIN_SEEDS = 3
"""A verdict needs at least this many training seeds in every cell it reads; fewer: "not enough seeds"."""


@dataclass(frozen=True)
class Measure:
    """One figure measured per training: `key` in the evaluation's results, shown as `label`.

    `scale` converts a value to its shown unit (100 for a rate in %, 255 for a Linf distance in /255).
    `ceiling`: the largest value the measurement can resolve (a minimal-budget search's top); a value above it
    (inf) counts as the ceiling in means and intervals, which are then lower bounds, shown with `>=`.
    `bounds`: the range the value lives in (a rate: 0 to 1); a mean's interval is cut to it (its coverage stays).
    """

    key: str
    label: str
    unit: str  # "%" or "/255"
    higher_is_better: bool
    scale: float = 100.0
    ceiling: Optional[float] = None
    bounds: Optional[tuple[float, float]] = None

    def clamp(self, value: float) -> tuple[float, bool]:
        """(the value used in statistics, whether it was above the ceiling)."""
        if self.ceiling is not None and value > self.ceiling:
            return self.ceiling, True
        return value, False

    @property
    def difference_unit(self) -> str:
        """The unit of a difference of two values: points for a rate."""
        return "points" if self.unit == "%" else self.unit

    def shown(self, value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value * self.scale:.{2 if self.unit == '/255' else 1}f}"


@dataclass(frozen=True)
class Arm:
    """One training recipe of the grid: a zoo variant with recipe options (what `facebench train` passes on).

    On an axis, the axis value goes to `--epochs` (`axis_option` None) or to the recipe option `axis_option`;
    then every other stage's epochs must be in `options` (`*_epochs`) and `--epochs` is the sum of the stages.
    Off an axis, `--epochs` is `epochs`, or the variant's zoo schedule at the claim's profile when None.

    `shared_stages` (an arm with an `axis_option`): the stages before the axis' are trained once per protocol and
    seed (the axis option at 0: a shared start, not evaluated), and every axis value continues from that start
    (`--init`). The recipe must take both; it trains the same network as one run of every stage (the contrastive
    recipes: tested bit for bit), so only the axis' stage is paid for at each axis value.
    """

    label: str
    variant: str
    options: tuple[tuple[str, Any], ...] = ()
    axis_option: Optional[str] = None
    epochs: Optional[int] = None
    shared_stages: bool = False

    def training(self, x: Optional[float], zoo_epochs: Optional[int]) -> tuple[float, dict]:
        """(--epochs, the recipe options) of this arm at axis value `x` (None: no axis)."""
        options = dict(self.options)
        if x is None:
            epochs = self.epochs if self.epochs is not None else zoo_epochs
            if epochs is None:
                raise BadInputError(f"arm {self.label!r}: {self.variant!r} has no zoo schedule at this profile; "
                                    "give the arm its epochs")
            return epochs, options
        if self.axis_option is None:
            return x, options
        options[self.axis_option] = x
        return epochs_value(sum(v for k, v in options.items() if k.endswith("_epochs"))), options


@dataclass(frozen=True)
class Axis:
    """The values an arm is trained at (e.g. fine-tuning epochs); `flag` is the CLI option that replaces them."""

    name: str
    values: tuple[float, ...]  # positive; a fraction of an epoch allowed
    flag: str


class VerdictRule(Protocol):
    """What a claim's rule is (bench/claims/rules.py): its declaration in words, and the decision on figures."""

    def describe(self, claim: "Claim") -> str: ...

    def decide(self, claim: "Claim", figures: Any) -> Any: ...

    def reads(self) -> tuple[set[str], set[str]]:
        """The arm labels and the measure keys the rule reads (register_claim checks the claim has them)."""
        ...


class Fact(Protocol):
    """Something a claim states that is read from the code, not measured (bench/claims/facts.py)."""

    def blocks(self, claim: "Claim") -> list: ...


@dataclass(frozen=True)
class Claim:
    """One claim of a seed method, as data (see the module docstring)."""

    name: str
    title: str
    kind: str  # a task: "fr" or "fas"
    statement: str  # the seed's words, as its abstract puts them
    source: str  # where the statement is written down
    arms: tuple[Arm, ...]
    protocols: tuple[str, ...]
    measures: tuple[Measure, ...]
    evaluation: str  # how each training is measured (bench/claims/running.py: EVALUATIONS)
    rule: VerdictRule
    axis: Optional[Axis] = None
    seeds: int = MIN_SEEDS
    profile: str = "tiny"
    facts: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = field(default=())  # what a reader needs to read the figures (departures, choices)

    def arm(self, label: str) -> Arm:
        for a in self.arms:
            if a.label == label:
                return a
        raise KeyError(label)

    def measure(self, key: str) -> Measure:
        for m in self.measures:
            if m.key == key:
                return m
        raise KeyError(key)

    def axis_values(self) -> tuple[Optional[float], ...]:
        return self.axis.values if self.axis is not None else (None,)


CLAIMS: Registry[Claim] = Registry("claim")


def register_claim(claim: Claim) -> Claim:
    """Add `claim` to the registry after checking that it is whole, its rule reading only the claim's arms and
    measures (how the rule and the facts decide is checked by their tests)."""
    if claim.kind not in TASKS:
        raise ValueError(f"claim {claim.name!r}: kind must be one of {TASKS}, got {claim.kind!r}")
    if claim.profile not in PROFILES:
        raise ValueError(f"claim {claim.name!r}: unknown profile {claim.profile!r}")
    labels = [a.label for a in claim.arms]
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"claim {claim.name!r}: arms need distinct labels, got {labels}")
    if not claim.protocols or not claim.measures or claim.seeds < 1:
        raise ValueError(f"claim {claim.name!r}: needs protocols, measures and at least one seed")
    if claim.axis is not None and (not claim.axis.values or min(claim.axis.values) <= 0):
        raise ValueError(f"claim {claim.name!r}: axis values must be positive, got {claim.axis.values}")
    for arm in claim.arms:
        if arm.shared_stages and arm.axis_option is None:
            raise ValueError(f"claim {claim.name!r}: arm {arm.label!r} shares the stages before an axis it has not "
                             "(shared_stages needs an axis_option)")
    arms, keys = claim.rule.reads()
    if not arms <= set(labels) or not keys <= {m.key for m in claim.measures}:
        raise ValueError(f"claim {claim.name!r}: its rule reads arms {sorted(arms - set(labels))} or measures "
                         f"{sorted(keys - {m.key for m in claim.measures})} the claim has not")
    return CLAIMS.add(claim.name, claim)


def get_claim(name: str) -> Claim:
    return CLAIMS.get(name)
