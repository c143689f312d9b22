"""The vocabulary of what is evaluated: tasks, goals and profiles, one record each.

A goal is what an attacker wants. Its record says which task's models it applies to, which evaluation
items a protocol builds for it (`items`, and which of them: `select`), which decision the attacker wants
(`wants`: the task class of the item kind judges by it, never by the goal's name), which leaderboard page
shows it (`page`) and whether it is evaluated when a suite names no goals. Everything else that needs to know
about goals (suites, protocols, task classes, the leaderboard, the CLI) reads them from here.
This module imports nothing heavy: the CLI reads it to answer quickly.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.errors import UnknownNameError

TASKS = ("fr", "fas")
"""fr: face recognition (L2-normalised embeddings); fas: face anti-spoofing (a liveness logit, higher = live)."""

PROFILES = ("tiny", "paper")
"""Zoo model sizes: tiny (CPU, tests, CI, the demo) and paper (the seeds' scale, GPU)."""

ITEM_KINDS = ("pairs", "identification", "frames")
"""What a protocol builds for a goal: verification pairs, a gallery with probes, anti-spoofing frames."""

WANTS = {"pairs": ("accept", "reject"), "frames": ("accept", "reject"),
         "identification": ("other-identity", "target-identity")}
"""The decisions an attacker can want, per item kind: a pair or frame accepted (match, live) or rejected at the
threshold; a probe's top-1 identity any other than its own, or a chosen target."""


@dataclass(frozen=True)
class Goal:
    """One attacker goal."""

    name: str
    task: str  # one of TASKS
    items: str  # one of ITEM_KINDS
    select: str  # which items: "genuine" / "impostor" pairs, "spoof" / "live" frames; "" for identification probes
    wants: str  # the decision the attacker wants (WANTS[items]); the task of the item kind judges by it
    page: str  # the leaderboard page kind that shows it
    default: bool = False  # evaluated when a suite names no goals
    description: str = ""
    targeted: bool = False  # the attacker must reach one chosen decision of another identity (the larger budgets)


GOALS: dict[str, Goal] = {}
"""Every goal by name, in the canonical order (tables, pages and listings follow it)."""


def register_goal(goal: Goal) -> Goal:
    if goal.name in GOALS:
        raise ValueError(f"goal {goal.name!r} is registered twice")
    if goal.task not in TASKS or goal.items not in ITEM_KINDS or goal.wants not in WANTS[goal.items]:
        raise ValueError(f"goal {goal.name!r}: task must be one of {TASKS}, items one of {ITEM_KINDS} and wants one "
                         f"of {WANTS.get(goal.items)}")
    GOALS[goal.name] = goal
    return goal


def get_goal(name: str) -> Goal:
    """The goal called `name`; an unknown name is a user error that lists the known ones."""
    if name not in GOALS:
        raise UnknownNameError(f"unknown goal {name!r} (known: {', '.join(GOALS)})")
    return GOALS[name]


def goals_of(task: str, items: str | None = None) -> tuple[str, ...]:
    """The goals of a task (of one item kind), in canonical order."""
    return tuple(g.name for g in GOALS.values() if g.task == task and (items is None or g.items == items))


def default_goals(task: str) -> tuple[str, ...]:
    """The goals a suite that names none evaluates on a model of `task`."""
    return tuple(g.name for g in GOALS.values() if g.task == task and g.default)


def targeted_goals(targeted: bool = True) -> tuple[str, ...]:
    """The targeted goals (impersonation, a chosen identity), or with `targeted=False` every other goal."""
    return tuple(g.name for g in GOALS.values() if g.targeted == targeted)


def goal_order(name: str) -> tuple[int, str]:
    """Sort key: canonical order, unknown goals last by name."""
    names = list(GOALS)
    return (names.index(name) if name in names else len(names), name)


for _goal in (
    Goal("dodging", "fr", "pairs", "genuine", "reject", "fr-verification", True,
         "a genuine pair must stop matching at the verification threshold"),
    Goal("impersonation", "fr", "pairs", "impostor", "accept", "fr-verification", True,
         "an impostor pair must match at the verification threshold", targeted=True),
    Goal("misidentify", "fr", "identification", "", "other-identity", "fr-identification", False,
         "a probe's top-1 gallery identity must not be its own"),
    Goal("target-identity", "fr", "identification", "", "target-identity", "fr-identification", False,
         "a probe's top-1 gallery identity must be a chosen other one", targeted=True),
    Goal("spoof-to-live", "fas", "frames", "spoof", "accept", "fas-robustness", True,
         "a spoof frame must be accepted as live at the dev EER threshold"),
    Goal("live-to-spoof", "fas", "frames", "live", "reject", "fas-robustness", False,
         "a live frame must be rejected as a spoof at the dev EER threshold"),
):
    register_goal(_goal)
