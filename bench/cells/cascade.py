"""The cascade cell kind: a worst-case cascade of attacks in AutoAttack's manner, one cell per budget."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch

from attacks import Attack, make_attack
from bench.batching import BatchSize
from bench.cells.attack import AttackEntry
from bench.cells.base import (CELL_KINDS, PLAIN, CellInputs, CellKind, CellOutput, PlannedCell, cell_arrays,
                              per_stage_sum, register_cell_kind)
from bench.cells.parsing import check_keys, eps_of, params_of
from bench.config import format_eps
from bench.errors import BadInputError
from bench.progress import SampleMeter, chunk
from bench.tasks.base import Task
from bench.tasks.items import GoalItems


@dataclass(frozen=True)
class Stage:
    """One attack of a cascade, with fixed parameters."""

    attack: str
    params: dict = field(default_factory=dict)

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.attack}({extra})" if extra else self.attack


@register_cell_kind
@dataclass(frozen=True)
class CascadeEntry(CellKind):
    """A worst-case cascade (AutoAttack's manner) at each budget of one norm.

    The stages run in order, each only on the samples every earlier stage failed on; a sample is
    broken if any stage breaks it. One cell per budget, named `cascade` with the stages in its params.
    YAML: `{cascade: [{attack, params}, ...], norm, eps}`.
    """

    stages: tuple[Stage, ...]
    norm: str
    eps: tuple[float, ...]
    goals: Optional[tuple[str, ...]] = None  # the goals it applies to (None: every goal of the run)

    kind = "cascade"
    attack: ClassVar[str] = "cascade"  # what its cells store as their attack
    yaml_keys = frozenset({"norm", "eps"})
    merge = {"stage_attacked": per_stage_sum(int), "stage_broken": per_stage_sum(int),
             "stage_seconds": per_stage_sum(float, 3)}

    @classmethod
    def from_dict(cls, item: dict, where: str) -> "CascadeEntry":
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
            check_keys(st, {"attack", "params"}, at)
            out.append(Stage(str(st["attack"]), params_of(st, at)))
        return cls(tuple(out), str(item.get("norm", "linf")), eps_of(item, where))

    def label(self) -> str:
        return "cascade(" + " -> ".join(s.label() for s in self.stages) + ")"

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        if not self.stages:
            raise BadInputError("a cascade needs at least one stage")
        for stage in self.stages:
            if stage.attack in CELL_KINDS and stage.attack != PLAIN:
                raise BadInputError(f"a cascade stage must be an attack, not {stage.attack!r}")
            AttackEntry(stage.attack, self.norm, self.eps, stage.params).validate(goals)

    def cell_params(self) -> dict:
        """The cell's `params`: every stage with its full (defaulted) parameters, in order."""
        return {"stages": [{"attack": s.attack, "params": make_attack(s.attack, s.params).params()} for s in self.stages]}

    def plan(self, goal: str, default_sources: tuple[str, ...]) -> list[PlannedCell]:
        params = self.cell_params()
        return [PlannedCell(goal, self.kind, self.kind, params, self.norm, eps, self) for eps in self.eps]

    def config_fields(self, cell: PlannedCell, source_sha: dict[str, str]) -> dict:
        backend = "+".join(dict.fromkeys(make_attack(st["attack"], st["params"]).backend for st in cell.params["stages"]))
        return {"attack": cell.attack, "backend": backend, "params": cell.params}

    def compute(self, inputs: CellInputs) -> CellOutput:
        cell = inputs.cell
        stages = [make_attack(st["attack"], st["params"]) for st in cell.params["stages"]]
        res = cascade_cell(inputs.items, inputs.clean, stages, cell.norm, cell.eps, inputs.batch, seed=inputs.seed,
                           attack_task=inputs.attack_task, meter=inputs.meter, labels=[st.label() for st in self.stages])
        return CellOutput(res.arrays, {"stage_attacked": res.stage_attacked, "stage_broken": res.stage_broken,
                                       "stage_seconds": res.stage_seconds})

    def finish(self, cell: PlannedCell, attrs: dict, arrays: dict, source_sha: dict[str, str]) -> tuple[dict, Optional[str]]:
        attrs = {**attrs, "stages": [st.label() for st in self.stages]}
        line = (f"{cell.goal} cascade {cell.norm} {format_eps(cell.norm, cell.eps)}: broken per stage "
                + ", ".join(f"{st.attack} {b}/{a}" for st, a, b in
                            zip(self.stages, attrs["stage_attacked"], attrs["stage_broken"]))
                + f" ({', '.join(f'{t:.0f}' for t in attrs['stage_seconds'])} s)")
        return attrs, line

    @classmethod
    def stored_label(cls, config: dict, detailed: bool = False) -> str:
        if not detailed:
            return cls.kind
        return "cascade(" + " -> ".join(st["attack"] for st in config["params"].get("stages", [])) + ")"

    @classmethod
    def stage_attacks(cls, config: dict) -> tuple[str, ...]:
        return tuple(str(st["attack"]) for st in config["params"].get("stages", []))

    @classmethod
    def steps(cls, config: dict) -> int:
        """Iterative if any stage is (a cascade of single steps counts as one)."""
        stage_kind = CELL_KINDS[PLAIN]
        return max((stage_kind.steps({"attack": s["attack"], "params": s["params"]}) for s in config["params"]["stages"]),
                   default=0)

    @classmethod
    def example_attack(cls, config: dict) -> Optional[tuple[str, dict, str]]:
        stage = config["params"]["stages"][0]
        return str(stage["attack"]), dict(stage["params"]), f"{stage['attack']} (cascade stage 1)"


@dataclass
class CascadeResult:
    """A cascade cell's per-sample arrays and, per stage, the samples it saw and broke."""

    arrays: dict
    stage_attacked: list[int]
    stage_broken: list[int]
    stage_seconds: list[float]


def cascade_cell(items: GoalItems, clean_scores: torch.Tensor, stages: list[Attack], norm: str, eps: float,
                 batch_size: "int | BatchSize", seed: int, attack_task: Optional[Task] = None,
                 meter: Optional[SampleMeter] = None, labels: Optional[list[str]] = None) -> CascadeResult:
    """A worst-case cascade: each stage attacks only the samples every earlier stage failed on.

    The stages' inputs are re-packed into batches of the still-unbroken samples. A sample is broken
    if any stage breaks it (judged by the task on that stage's output); its stored input and score
    are those of the breaking stage, and `stage` says which (1-based; 0 = none). Unbroken samples keep
    the point of largest margin any stage reached. `queries` sums every stage's queries per sample.
    Each stage draws its random numbers from its own generator (seeded from `seed` and its position).
    """
    task, x = items.task, items.x
    attack_task = attack_task or task
    clean_broken = task.broken_on_clean(clean_scores)
    broken = clean_broken.clone()
    n = x.shape[0]
    x_adv = x.clone()
    best_m = torch.full((n,), -torch.inf, device=x.device)
    queries = torch.zeros(n, dtype=torch.long, device=x.device)
    stage_of = torch.zeros(n, dtype=torch.int16, device=x.device)
    attacked_per, broken_per, seconds_per = [], [], []
    for k, attack in enumerate(stages):
        todo = (~broken).nonzero().squeeze(1)
        attacked_per.append(int(todo.numel()))
        gen = torch.Generator(device=x.device)
        gen.manual_seed((seed + 7919 * (k + 1)) % (2**63))
        if meter is not None:
            meter.start(f"stage {k + 1}/{len(stages)} {labels[k] if labels else attack.name}", int(todo.numel()))
        t0 = time.perf_counter()
        newly = 0

        def work(idx: torch.Tensor) -> None:
            nonlocal newly
            with chunk(meter, idx.numel()):
                out = attack.run(attack_task.subset(idx), x[idx], norm, eps, generator=gen)
            xa = out.x_adv.detach()
            sub = task.subset(idx)
            with torch.no_grad():
                s = sub.scores(xa)
            ok = sub.success_from_scores(s)
            m = sub.margin_from_scores(s)
            take = ok | (m > best_m[idx])
            x_adv[idx[take]] = xa[take]
            best_m[idx[take]] = m[take]
            queries[idx] += out.queries.to(queries)
            broken[idx[ok]] = True
            stage_of[idx[ok]] = k + 1
            newly += int(ok.sum())
            if meter is not None:
                meter.update(idx.numel())

        BatchSize.of(batch_size).chunks(todo, work, attack.per_sample, gen)
        broken_per.append(newly)
        seconds_per.append(round(time.perf_counter() - t0, 3))
    arrays = cell_arrays(items, clean_scores, x_adv, queries, "cascade", norm, eps, batch_size)
    arrays["stage"] = stage_of.cpu().numpy()
    return CascadeResult(arrays, attacked_per, broken_per, seconds_per)
