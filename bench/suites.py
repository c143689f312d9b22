"""Suites: declared grids of attacks x norms x budgets (x goals), built in or from a YAML file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional, Union

import yaml

from attacks.registry import ATTACKS, make_attack
from bench.config import format_eps, parse_eps
from bench.errors import BadInputError
from bench.registry import Registry
from bench.goals import GOALS

LINF_BUDGETS = ("2/255", "4/255", "8/255")


@dataclass(frozen=True)
class SuiteEntry:
    """One attack with fixed parameters, run at each budget of one norm."""

    attack: str
    norm: str
    eps: tuple[float, ...]
    params: dict = field(default_factory=dict)

    kind: ClassVar[str] = "attack"

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.attack}({extra})" if extra else self.attack

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        attack = make_attack(self.attack, self.params)
        for eps in self.eps:
            for goal in goals:
                attack.check(self.norm, eps, goal)


@dataclass(frozen=True)
class Stage:
    """One attack of a cascade, with fixed parameters."""

    attack: str
    params: dict = field(default_factory=dict)

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.attack}({extra})" if extra else self.attack


@dataclass(frozen=True)
class CascadeEntry:
    """A worst-case cascade (AutoAttack's manner) at each budget of one norm.

    The stages run in order, each only on the samples every earlier stage failed on; a sample is
    broken if any stage breaks it. One cell per budget, named `cascade` with the stages in its params.
    """

    stages: tuple[Stage, ...]
    norm: str
    eps: tuple[float, ...]

    kind: ClassVar[str] = "cascade"
    attack: ClassVar[str] = "cascade"

    def label(self) -> str:
        return "cascade(" + " -> ".join(s.label() for s in self.stages) + ")"

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        if not self.stages:
            raise BadInputError("a cascade needs at least one stage")
        for stage in self.stages:
            if stage.attack in ("cascade", "transfer"):
                raise BadInputError(f"a cascade stage must be an attack, not {stage.attack!r}")
            SuiteEntry(stage.attack, self.norm, self.eps, stage.params).validate(goals)

    def cell_params(self) -> dict:
        """The cell's `params`: every stage with its full (defaulted) parameters, in order."""
        return {"stages": [{"attack": s.attack, "params": make_attack(s.attack, s.params).params()} for s in self.stages]}


@dataclass(frozen=True)
class TransferEntry:
    """The transfer matrix row of the model under test: `attack` crafted on each source model, scored here.

    `sources` None means every other shipped zoo model of the same task (and input size); one cell per
    (source, budget). Crafting runs every step on the source (no early stop: the source's own decision
    does not matter), keeping each sample's point of largest source margin.
    """

    norm: str
    eps: tuple[float, ...]
    attack: str = "pgd"
    params: dict = field(default_factory=dict)
    sources: Optional[tuple[str, ...]] = None

    kind: ClassVar[str] = "transfer"

    def label(self) -> str:
        inner = SuiteEntry(self.attack, self.norm, self.eps, self.params).label()
        return f"transfer[{inner} from {', '.join(self.sources) if self.sources else 'every other zoo model'}]"

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        cls = ATTACKS.get(self.attack)
        if cls.backend != "native":
            raise BadInputError(f"transfer crafts with a native attack, {self.attack!r} is {cls.backend}")
        SuiteEntry(self.attack, self.norm, self.eps, self.params).validate(goals)


Entry = Union[SuiteEntry, CascadeEntry, TransferEntry]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    entries: tuple[Entry, ...]
    goals: Optional[tuple[str, ...]] = None  # None: the default goals of the model's task

    def validate(self) -> None:
        """Build every attack and check every budget and goal, so nothing fails after work began."""
        if not self.entries:
            raise BadInputError(f"suite {self.name!r} has no attacks")
        for goal in self.goals or ():
            if goal not in GOALS:
                raise BadInputError(f"suite {self.name!r}: unknown goal {goal!r} (known: {', '.join(GOALS)})")
        for entry in self.entries:
            entry.validate(self.goals or (None,))

    def budgets(self) -> list[str]:
        return [f"{e.norm} {format_eps(e.norm, v)}" for e in self.entries for v in e.eps]


SUITES: Registry[Suite] = Registry("attack suite")


def register_suite(suite: Suite) -> Suite:
    return SUITES.add(suite.name, suite)


def _budgets(*values: str) -> tuple[float, ...]:
    return tuple(parse_eps(v) for v in values)


register_suite(
    Suite(
        "quick",
        "FGSM and PGD-10 at Linf 2/255, 4/255, 8/255 (seconds per model on CPU at the tiny profile)",
        (
            SuiteEntry("fgsm", "linf", _budgets(*LINF_BUDGETS)),
            SuiteEntry("pgd", "linf", _budgets(*LINF_BUDGETS), {"steps": 10}),
        ),
    )
)


# The standard cascade, per norm. Step counts keep `standard` on a tiny zoo model at the default
# --samples within minutes on one CPU core before Square; Square keeps AutoAttack's 5000 queries. It is the
# native, batched `square`: as strong as the torchattacks adapter over 12 seeds (147 vs 144 of 288 runs) and
# about 5x faster (docs/concepts.md); the library adapters stay registered for cross-checks.
APGD_STEPS = 25
SQUARE = Stage("square", {"max_queries": 5000})
STANDARD_LINF = ("4/255", "8/255")
STANDARD_L2 = ("0.5",)


def standard_cascade(norm: str) -> tuple[Stage, ...]:
    """APGD (margin) -> APGD-T -> a minimal-norm attack (DeepFool for Linf, C&W-L2 for L2) -> Square-5000."""
    minimal = (Stage("foolbox-deepfool", {"steps": 50}) if norm == "linf"
               else Stage("cw-l2", {"steps": 50, "search_steps": 5}))
    return (Stage("apgd", {"steps": APGD_STEPS}), Stage("apgd-t", {"steps": APGD_STEPS, "n_targets": 3}), minimal, SQUARE)


STANDARD_ENTRIES = (
    CascadeEntry(standard_cascade("linf"), "linf", _budgets(*STANDARD_LINF)),
    CascadeEntry(standard_cascade("l2"), "l2", _budgets(*STANDARD_L2)),
)

register_suite(
    Suite(
        "standard",
        "worst-case cascade (AutoAttack's manner) at Linf 4/255, 8/255 and L2 0.5: APGD-25 (margin) -> APGD-T-25 "
        "(top-3 targets) -> DeepFool (Linf) / C&W-L2 (L2) -> Square-5000, each on the samples still unbroken",
        STANDARD_ENTRIES,
    )
)

register_suite(
    Suite(
        "full",
        "standard + FGSM, MIM-20, C&W-L2, DeepFool, HopSkipJump-1000 (Linf 8/255, L2 0.5), eyeglass and patch "
        "attacks (any colour), minimal-eps curves by bisection of PGD-20 (up to Linf 16/255, L2 2.0) and the "
        "transfer matrix (PGD-20 from every other shipped zoo model of the same task, at the standard budgets)",
        STANDARD_ENTRIES + (
            SuiteEntry("fgsm", "linf", _budgets(*STANDARD_LINF)),
            SuiteEntry("fgsm", "l2", _budgets(*STANDARD_L2)),
            SuiteEntry("mim", "linf", _budgets(*STANDARD_LINF), {"steps": 20}),
            SuiteEntry("mim", "l2", _budgets(*STANDARD_L2), {"steps": 20}),
            SuiteEntry("cw-l2", "l2", _budgets(*STANDARD_L2), {"steps": 50, "search_steps": 5}),
            SuiteEntry("foolbox-deepfool", "linf", _budgets("8/255")),
            SuiteEntry("foolbox-deepfool", "l2", _budgets(*STANDARD_L2)),
            SuiteEntry("art-hopskipjump", "linf", _budgets("8/255"), {"max_queries": 1000}),
            SuiteEntry("art-hopskipjump", "l2", _budgets(*STANDARD_L2), {"max_queries": 1000}),
            SuiteEntry("eyeglass", "linf", _budgets("1"), {"steps": 30}),
            SuiteEntry("patch", "linf", _budgets("1"), {"steps": 30}),
            SuiteEntry("min-eps", "linf", _budgets("16/255"), {"attack": "pgd", "attack_steps": 20, "search_steps": 8}),
            SuiteEntry("min-eps", "l2", _budgets("2.0"), {"attack": "pgd", "attack_steps": 20, "search_steps": 8}),
            TransferEntry("linf", _budgets(*STANDARD_LINF), "pgd", {"steps": 20}),
            TransferEntry("l2", _budgets(*STANDARD_L2), "pgd", {"steps": 20}),
        ),
    )
)


def _eps_of(item: dict, where: str) -> tuple[float, ...]:
    if "eps" not in item:
        raise BadInputError(f"{where} needs 'eps'")
    eps = item["eps"] if isinstance(item["eps"], list) else [item["eps"]]
    if not eps:
        raise BadInputError(f"{where}: 'eps' is empty")
    return tuple(parse_eps(e) for e in eps)


def _params_of(item: dict, where: str) -> dict:
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise BadInputError(f"{where}: 'params' must be a mapping, got {params!r}")
    return dict(params)


def _keys(item: dict, allowed: set, where: str) -> None:
    unknown = set(item) - allowed
    if unknown:
        raise BadInputError(f"{where} has unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(allowed))})")


def entry_from_dict(item, where: str) -> Entry:
    """One suite entry from its YAML form: an attack, a `cascade` of stages, or a `transfer` row."""
    if not isinstance(item, dict):
        raise BadInputError(f"{where} must be a mapping with 'attack', 'cascade' or 'transfer', got {item!r}")
    kinds = [k for k in ("attack", "cascade", "transfer") if k in item]
    if len(kinds) != 1:
        raise BadInputError(f"{where} needs exactly one of 'attack', 'cascade' or 'transfer'")
    norm = str(item.get("norm", "linf"))
    if kinds[0] == "attack":
        _keys(item, {"attack", "norm", "eps", "params"}, where)
        return SuiteEntry(str(item["attack"]), norm, _eps_of(item, where), _params_of(item, where))
    if kinds[0] == "cascade":
        _keys(item, {"cascade", "norm", "eps"}, where)
        stages = item["cascade"]
        if not isinstance(stages, list) or not stages:
            raise BadInputError(f"{where}: 'cascade' must be a non-empty list of stages ({{attack: ..., params: ...}})")
        out = []
        for j, st in enumerate(stages):
            at = f"{where}, stage #{j + 1}"
            if isinstance(st, str):
                st = {"attack": st}
            if not isinstance(st, dict) or "attack" not in st:
                raise BadInputError(f"{at} needs 'attack'")
            _keys(st, {"attack", "params"}, at)
            out.append(Stage(str(st["attack"]), _params_of(st, at)))
        return CascadeEntry(tuple(out), norm, _eps_of(item, where))
    _keys(item, {"transfer", "norm", "eps"}, where)
    spec = item["transfer"]
    if spec is True or spec is None:
        spec = {}
    if isinstance(spec, str):
        spec = {"attack": spec}
    if not isinstance(spec, dict):
        raise BadInputError(f"{where}: 'transfer' must be true, an attack name or {{attack, params, sources}}")
    _keys(spec, {"attack", "params", "sources"}, f"{where}, transfer")
    sources = spec.get("sources")
    if sources is not None and (not isinstance(sources, list) or not sources):
        raise BadInputError(f"{where}: transfer 'sources' must be a non-empty list of zoo models")
    return TransferEntry(norm, _eps_of(item, where), str(spec.get("attack", "pgd")), _params_of(spec, where),
                         tuple(str(v) for v in sources) if sources else None)


def suite_from_dict(data: dict, source: str) -> Suite:
    """A suite from its YAML / dict form: name, description, optional goals, and a list of entries.

    Each entry is `{attack, norm, eps, params}`, `{cascade: [{attack, params}, ...], norm, eps}` or
    `{transfer: {attack, params, sources}, norm, eps}` (`transfer: true`: PGD from every other zoo model).
    """
    if not isinstance(data, dict) or "attacks" not in data:
        raise BadInputError(f"{source}: a suite needs an 'attacks' list")
    _keys(data, {"name", "description", "goals", "attacks"}, source)
    if not isinstance(data["attacks"], list):
        raise BadInputError(f"{source}: 'attacks' must be a list")
    entries = [entry_from_dict(item, f"{source}: entry #{i + 1}") for i, item in enumerate(data["attacks"])]
    goals = data.get("goals")
    if goals is not None and not isinstance(goals, list):
        goals = [goals]
    return Suite(str(data.get("name", Path(source).stem)), str(data.get("description", f"user suite from {source}")),
                 tuple(entries), tuple(goals) if goals else None)


def load_suite(name_or_path: str) -> Suite:
    """A registered suite by name, or a YAML file (a path ending in .yaml / .yml)."""
    if name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise BadInputError(f"suite file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise BadInputError(f"suite file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        suite = suite_from_dict(data, str(path))
    else:
        suite = SUITES.get(name_or_path)
    suite.validate()
    return suite
