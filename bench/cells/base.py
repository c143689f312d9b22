"""What a cell kind is: the one owner of how its cells are declared, planned, configured, computed, merged and labelled.

A suite is a list of entries; each entry's class is a cell kind (a frozen dataclass registered in
`CELL_KINDS` under its `kind`, which is also its key in a suite's YAML). The built-in kinds are a plain
attack (`attack`), a worst-case cascade (`cascade`) and a transfer row (`transfer`). Everything that
treats cells differently by kind asks the kind: the YAML reader (`from_dict`), the planner (`plan`,
`needs_sources`, `budgets_together`), the cell configuration (`config_fields`), the computation
(`compute`), shard merging (`merge`, declared per attribute), the end of a cell (`finish`), the labels
(`stored_label`) and the integrity checks (`capability`, `steps`). A stored cell's kind is read back from
its configuration (`kind_of`): the `attack` of a cell of any kind but the plain attack is the kind's name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch

from bench.batching import BatchSize, batched_scores
from bench.cells.parsing import check_keys
from bench.errors import BadInputError
from bench.progress import SampleMeter
from bench.tasks.base import Task
from bench.tasks.items import GoalItems

BUDGET_TOLERANCE = 1e-5  # an attack's output may exceed its budget by this much (float rounding), no more


@dataclass
class PlannedCell:
    """One cell of the grid, before it is computed: what attacks which goal at which budget."""

    goal: str
    kind: str  # the cell kind's name (CELL_KINDS)
    attack: str  # the attack's name; the kind's name for every kind but the plain attack
    params: dict  # the attack's full parameters (a cascade: its stages; a transfer: the source and crafting attack)
    norm: str
    eps: float
    entry: Any = None  # the suite entry (a CellKind) that planned it
    source: Optional[str] = None  # transfer: the zoo model the examples are crafted on

    @property
    def cell_kind(self) -> type["CellKind"]:
        return CELL_KINDS[self.kind]


@dataclass
class CellInputs:
    """What computing one cell (or one shard of it) starts from."""

    cell: PlannedCell
    items: GoalItems  # the goal's items (of this shard)
    clean: torch.Tensor  # their clean scores
    attack_task: Task  # what the attacks see (EOT, the fast forward path); decisions are `items.task`'s
    batch: BatchSize
    seed: int  # the cell's (or shard's) seed
    meter: Optional[SampleMeter] = None
    state: Any = None  # the run's state (bench.compute.RunState): transfer sources, budgets computed together
    job: Any = None  # the job (bench.compute.CellJob): shard range, budgets computed together


@dataclass
class CellOutput:
    """A computed cell or shard: per-sample arrays (numpy), the attributes it measured, and its compute seconds
    when the kind measured them itself (None: the time the computation took)."""

    arrays: dict
    attrs: dict = field(default_factory=dict)
    seconds: Optional[float] = None


# ---------------------------------------------------------------------------------------------- merging


def first(values: list) -> Any:
    """A per-cell attribute that every shard measures alike (a name, a count of budgets): the first shard's."""
    return values[0]


def per_stage_sum(cast: Callable[[Any], Any] = int, ndigits: Optional[int] = None) -> Callable[[list], list]:
    """A per-stage list summed over shards, stage by stage (samples attacked, broken, seconds)."""

    def merge(values: list) -> list:
        sums = [cast(sum(v)) for v in zip(*values)]
        return [round(s, ndigits) for s in sums] if ndigits is not None else sums

    return merge


def total(values: list) -> Any:
    """A per-cell quantity summed over shards."""
    return sum(values)


# ---------------------------------------------------------------------------------------------- the kinds


class CellKind:
    """Base of the suite entry classes. Subclasses are frozen dataclasses with `norm` and `eps` fields and
    override what differs from a plain attack."""

    kind: ClassVar[str] = ""
    yaml_keys: ClassVar[frozenset] = frozenset()  # the keys its YAML form may have besides the kind's own
    # per-cell attributes measured per shard and how they combine into the cell's (torchmetrics' reductions);
    # an attribute not declared here keeps its first shard's value (`first`); per-sample arrays are
    # concatenated in shard order
    merge: ClassVar[dict[str, Callable[[list], Any]]] = {}
    black_box: ClassVar[bool] = False  # its cells use no gradient of the model under test

    norm: str
    eps: tuple[float, ...]
    # the goals the entry applies to, None: every goal of the run. A kind that takes `goals:` in YAML declares it as
    # a dataclass field (the built-in ones do, last, default None); this class attribute is the default of the others
    goals: Optional[tuple[str, ...]] = None

    # --- declaring

    def applies_to(self, goal: str) -> bool:
        """Whether the entry plans cells for `goal` (an entry's `goals` restricts it: budgets chosen per goal)."""
        return self.goals is None or goal in self.goals

    @classmethod
    def from_dict(cls, item: dict, where: str) -> "CellKind":
        """The entry from its YAML form (a mapping with the key `kind`); errors name `where`."""
        raise NotImplementedError

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        """Build every attack and check every budget and goal, before any work."""
        raise NotImplementedError

    def label(self) -> str:
        """How the entry reads in `facebench suites`."""
        raise NotImplementedError

    # --- planning

    def plan(self, goal: str, default_sources: tuple[str, ...]) -> list[PlannedCell]:
        """The cells of this entry for `goal`, one per budget (and source, for a kind that has sources)."""
        raise NotImplementedError

    def needs_sources(self) -> Optional[tuple[str, ...]]:
        """Other zoo models its cells load: None (none), () (the default sources: every other zoo model of the
        task), or the names it gives."""
        return None

    def budgets_together(self, cell: PlannedCell) -> bool:
        """Whether the budgets of `cell`'s entry can be computed as one batch (bench.compute.budget_groups)."""
        return False

    def config_fields(self, cell: PlannedCell, source_sha: dict[str, str]) -> dict:
        """The kind's part of the cell configuration (its id is the hash of the whole): attack, backend, params."""
        raise NotImplementedError

    # --- computing

    def compute(self, inputs: CellInputs) -> CellOutput:
        """Compute one cell or shard."""
        raise NotImplementedError

    def finish(self, cell: PlannedCell, attrs: dict, arrays: dict, source_sha: dict[str, str]) -> tuple[dict, Optional[str]]:
        """The merged attributes of a whole cell, completed before it is stored, and a log line (or None)."""
        return attrs, None

    @classmethod
    def merge_attrs(cls, shards: list[dict]) -> dict:
        """One cell's attributes from its shards' (in shard order), by the declared reductions."""
        out = dict(shards[0])
        for key in out:
            out[key] = cls.merge.get(key, first)([s[key] for s in shards])
        return out

    # --- reading stored cells (from their configuration alone)

    @classmethod
    def stored_label(cls, config: dict, detailed: bool = False) -> str:
        """The attack column of a cell: its attack (`detailed`: with what the leaderboard shows of it)."""
        return str(config["attack"])

    @classmethod
    def capability(cls, config: dict, name: str) -> bool:
        """Whether a cell of this kind has an attack capability (`attacks.Attack.CAPABILITIES`)."""
        return name == "black_box" and cls.black_box

    @classmethod
    def steps(cls, config: dict) -> int:
        """Gradient steps of the cell's attack (1: single-step; 0: not a gradient attack)."""
        return int(config["params"].get("steps", 0) or 0)

    @classmethod
    def transfer_source(cls, config: dict) -> Optional[str]:
        """The model a transfer cell's examples were crafted on; None for other kinds."""
        return None

    @classmethod
    def stage_attacks(cls, config: dict) -> tuple[str, ...]:
        """The attacks of a staged cell in the order they ran (its per-sample `stage` array says which one broke
        each sample, 1-based); () for a kind without stages."""
        return ()

    @classmethod
    def example_attack(cls, config: dict) -> Optional[tuple[str, dict, str]]:
        """(attack, params, label) to re-run for the leaderboard's example images; None: the kind has none."""
        return str(config["attack"]), dict(config["params"]), str(config["attack"])


CELL_KINDS: dict[str, type[CellKind]] = {}
"""Every cell kind by name, in registration order (the order of the YAML keys in messages)."""


def register_cell_kind(cls: type[CellKind]) -> type[CellKind]:
    """Class decorator: register a suite entry class as cell kind `cls.kind`."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    if cls.kind in CELL_KINDS:
        raise ValueError(f"cell kind {cls.kind!r} is registered twice")
    CELL_KINDS[cls.kind] = cls
    return cls


PLAIN = "attack"  # the kind of a cell of one registered attack: its stored `attack` is that attack's name


def kind_of(config: dict) -> type[CellKind]:
    """The kind of a stored cell, from its configuration: a cell whose `attack` names a kind is of that kind,
    any other cell is a plain attack."""
    name = str(config.get("attack", ""))
    return CELL_KINDS[name] if name in CELL_KINDS and name != PLAIN else CELL_KINDS[PLAIN]


def one_of(names: list[str]) -> str:
    """'a', 'b' or 'c'."""
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def entry_from_dict(item: Any, where: str) -> CellKind:
    """One suite entry from its YAML form, by the kind whose key it has."""
    names = list(CELL_KINDS)
    if not isinstance(item, dict):
        raise BadInputError(f"{where} must be a mapping with {one_of(names)}, got {item!r}")
    kinds = [k for k in names if k in item]
    if len(kinds) != 1:
        raise BadInputError(f"{where} needs exactly one of {one_of(names)}")
    cls = CELL_KINDS[kinds[0]]
    check_keys(item, set(cls.yaml_keys | {cls.kind, "goals"}), where)
    entry = cls.from_dict(item, where)
    if "goals" not in item:
        return entry
    if "goals" not in {f.name for f in dataclasses.fields(entry)}:
        raise BadInputError(f"{where}: a {cls.kind} entry cannot name its goals")
    goals = item["goals"] if isinstance(item["goals"], list) else [item["goals"]]
    if not goals or not all(isinstance(g, str) for g in goals):
        raise BadInputError(f"{where}: 'goals' must be a goal or a non-empty list of goals, got {item['goals']!r}")
    return dataclasses.replace(entry, goals=tuple(goals))


# ---------------------------------------------------------------------------------------------- per-sample arrays


def cell_arrays(items: GoalItems, clean_scores: torch.Tensor, x_adv: torch.Tensor, queries: torch.Tensor,
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
