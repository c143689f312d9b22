"""Suites: declared grids of attacks x norms x budgets (x goals), built in or from a YAML file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from attacks.registry import make_attack
from bench.config import format_eps, parse_eps
from bench.errors import BadInputError
from bench.registry import Registry
from bench.tasks import GOALS

LINF_BUDGETS = ("2/255", "4/255", "8/255")


@dataclass(frozen=True)
class SuiteEntry:
    """One attack with fixed parameters, run at each budget of one norm."""

    attack: str
    norm: str
    eps: tuple[float, ...]
    params: dict = field(default_factory=dict)

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.attack}({extra})" if extra else self.attack


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    entries: tuple[SuiteEntry, ...]
    goals: Optional[tuple[str, ...]] = None  # None: the default goals of the model's task

    def validate(self) -> None:
        """Build every attack and check every budget and goal, so nothing fails after work began."""
        if not self.entries:
            raise BadInputError(f"suite {self.name!r} has no attacks")
        for goal in self.goals or ():
            if goal not in GOALS:
                raise BadInputError(f"suite {self.name!r}: unknown goal {goal!r} (known: {', '.join(GOALS)})")
        for entry in self.entries:
            attack = make_attack(entry.attack, entry.params)
            for eps in entry.eps:
                for goal in self.goals or (None,):
                    attack.check(entry.norm, eps, goal)

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


def suite_from_dict(data: dict, source: str) -> Suite:
    """A suite from its YAML / dict form: name, description, optional goals, and a list of attacks."""
    if not isinstance(data, dict) or "attacks" not in data:
        raise BadInputError(f"{source}: a suite needs an 'attacks' list")
    entries = []
    for i, item in enumerate(data["attacks"] or []):
        if not isinstance(item, dict) or "attack" not in item or "eps" not in item:
            raise BadInputError(f"{source}: attack #{i + 1} needs 'attack' and 'eps'")
        unknown = set(item) - {"attack", "norm", "eps", "params"}
        if unknown:
            raise BadInputError(f"{source}: attack #{i + 1} has unknown keys {sorted(unknown)}")
        eps = item["eps"] if isinstance(item["eps"], list) else [item["eps"]]
        entries.append(SuiteEntry(str(item["attack"]), str(item.get("norm", "linf")),
                                  tuple(parse_eps(e) for e in eps), dict(item.get("params") or {})))
    goals = data.get("goals")
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
