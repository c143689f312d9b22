"""The plain attack cell kind: one registered attack with fixed parameters, run at each budget of one norm."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from attacks import Attack, declares, make_attack
from attacks.base import SegmentGenerators
from bench.batching import BatchSize
from bench.cells.base import CellInputs, CellKind, CellOutput, PlannedCell, cell_arrays, register_cell_kind
from bench.cells.parsing import eps_of, params_of
from bench.progress import SampleMeter, chunk
from bench.tasks.base import Task
from bench.tasks.items import GoalItems


@register_cell_kind
@dataclass(frozen=True)
class AttackEntry(CellKind):
    """One attack with fixed parameters, run at each budget of one norm (YAML: `{attack, norm, eps, params}`)."""

    attack: str
    norm: str
    eps: tuple[float, ...]
    params: dict = field(default_factory=dict)
    goals: Optional[tuple[str, ...]] = None  # the goals it applies to (None: every goal of the run)

    kind = "attack"
    yaml_keys = frozenset({"norm", "eps", "params"})

    @classmethod
    def from_dict(cls, item: dict, where: str) -> "AttackEntry":
        return cls(str(item["attack"]), str(item.get("norm", "linf")), eps_of(item, where), params_of(item, where))

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.attack}({extra})" if extra else self.attack

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        attack = make_attack(self.attack, self.params)
        for eps in self.eps:
            for goal in goals:
                attack.check(self.norm, eps, goal)

    def plan(self, goal: str, default_sources: tuple[str, ...]) -> list[PlannedCell]:
        params = make_attack(self.attack, self.params).params()
        return [PlannedCell(goal, self.kind, self.attack, params, self.norm, eps, self) for eps in self.eps]

    def budgets_together(self, cell: PlannedCell) -> bool:
        return make_attack(cell.attack, cell.params).budgets_together

    def config_fields(self, cell: PlannedCell, source_sha: dict[str, str]) -> dict:
        return {"attack": cell.attack, "backend": make_attack(cell.attack, cell.params).backend, "params": cell.params}

    def compute(self, inputs: CellInputs) -> CellOutput:
        cell, job = inputs.cell, inputs.job
        if job is not None and job.together and job.shards == 1:
            done = _from_group(inputs)
            if done is not None:
                return done
        arrays = attack_cell(inputs.items, inputs.clean, make_attack(cell.attack, cell.params), cell.norm, cell.eps,
                             inputs.batch, seed=inputs.seed, attack_task=inputs.attack_task, meter=inputs.meter)
        return CellOutput(arrays)

    @classmethod
    def capability(cls, config: dict, name: str) -> bool:
        return declares(str(config["attack"]), name)

    @classmethod
    def steps(cls, config: dict) -> int:
        if cls.capability(config, "single_step"):
            return 1
        return super().steps(config)


def _from_group(inputs: CellInputs) -> Optional[CellOutput]:
    """Budgets together: the first job of a group computes every budget of it and keeps the others' arrays for
    their own jobs (`RunState.together`); a group that does not fit in memory is marked (None) so that its
    budgets go one by one. None: compute this budget alone."""
    cell, job, state = inputs.cell, inputs.job, inputs.state
    computed_here = job.cell_id not in state.together
    if computed_here:
        t0 = time.perf_counter()
        results = attack_cells_together(inputs.items, inputs.clean, make_attack(cell.attack, cell.params), cell.norm,
                                        [(eps, s) for _, eps, s in job.together], inputs.batch, inputs.attack_task,
                                        inputs.meter)
        share = (time.perf_counter() - t0) / len(job.together)
        state.together.update({cid: None if results is None else (results[i], share)
                               for i, (cid, _, _) in enumerate(job.together)})
    done = state.together.pop(job.cell_id)
    if done is None:
        return None
    arrays, seconds = done
    if inputs.meter is not None and not computed_here:
        inputs.meter.update(int(arrays["attacked"].sum()))
    return CellOutput(arrays, {"budgets_together": len(job.together)}, seconds)


def attack_cell(items: GoalItems, clean_scores: torch.Tensor, attack: Attack, norm: str,
                eps: float, batch_size: "int | BatchSize", seed: int, attack_task: Optional[Task] = None,
                meter: Optional[SampleMeter] = None) -> dict:
    """Attack every clean-correct item of a goal at one budget; return the per-sample arrays.

    Items already wrong on clean input (`Task.broken_on_clean`) count as broken and are not attacked.
    `attack_task` is what the attack sees (e.g. the EOT view of the task); decisions are the task's own.
    Attacks that measure a minimal budget (`AttackOutput.min_eps`) add the array `min_eps`
    (0 for items broken on clean input, inf where none was found).
    """
    task, x = items.task, items.x
    attack_task = attack_task or task
    clean_broken = task.broken_on_clean(clean_scores)
    todo = (~clean_broken).nonzero().squeeze(1)
    x_adv = x.clone()
    queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    min_eps = torch.zeros(x.shape[0], device=x.device) if attack.measures_min_eps else None
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)

    def work(idx: torch.Tensor) -> None:
        nonlocal min_eps
        with chunk(meter, idx.numel()):
            out = attack.run(attack_task.subset(idx), x[idx], norm, eps, generator=gen)
        x_adv[idx] = out.x_adv.detach()
        queries[idx] = out.queries
        if out.min_eps is not None:
            if min_eps is None:
                min_eps = torch.zeros(x.shape[0], device=x.device)
            min_eps[idx] = out.min_eps.to(min_eps)
        if meter is not None:
            meter.update(idx.numel())

    BatchSize.of(batch_size).chunks(todo, work, attack.per_sample, gen)
    arrays = cell_arrays(items, clean_scores, x_adv, queries, attack.name, norm, eps, batch_size)
    if min_eps is not None:
        arrays["min_eps"] = min_eps.cpu().numpy().astype(np.float32)
    return arrays


def attack_cells_together(items: GoalItems, clean_scores: torch.Tensor, attack: Attack, norm: str,
                          budgets: list[tuple[float, int]], batch_size: "int | BatchSize", attack_task: Optional[Task] = None,
                          meter: Optional[SampleMeter] = None) -> Optional[list[dict]]:
    """`attack_cell` for several budgets (eps, seed) of one attack in one batched pass: per chunk of the
    goal's clean-correct items, the chunk is stacked once per budget, eps is a per-sample tensor, and each
    budget draws its random numbers with its own generator on its own rows (`SegmentGenerators`). The chunks
    are those `attack_cell` uses, so each budget's per-sample arrays equal those of its own `attack_cell`.

    Returns None, having stored nothing, when a stacked chunk does not fit in memory: the caller then
    computes the budgets one by one (which can use smaller batches)."""
    if not attack.budgets_together or attack.per_sample:
        raise ValueError(f"attack {attack.name!r} cannot run its budgets together")
    task, x = items.task, items.x
    attack_task = attack_task or task
    k = len(budgets)
    todo = (~task.broken_on_clean(clean_scores)).nonzero().squeeze(1)
    gens = [torch.Generator(device=x.device).manual_seed(seed) for _, seed in budgets]
    x_adv = [x.clone() for _ in budgets]
    queries = [torch.zeros(x.shape[0], dtype=torch.long, device=x.device) for _ in budgets]
    size = BatchSize.of(batch_size).size
    try:
        for start in range(0, todo.numel(), size):
            idx = todo[start:start + size]
            m = idx.numel()
            rows = idx.repeat(k)
            eps = torch.cat([torch.full((m,), float(e), device=x.device) for e, _ in budgets])
            segment = torch.arange(k, device=x.device).repeat_interleave(m)
            with chunk(meter, m):  # the steps of the stacked batch stand for this chunk of each budget
                out = attack.run(attack_task.subset(rows), x[rows], norm, eps, generator=SegmentGenerators(gens, segment))
            for j in range(k):
                x_adv[j][idx] = out.x_adv[j * m:(j + 1) * m].detach()
                queries[j][idx] = out.queries[j * m:(j + 1) * m]
            if meter is not None:
                meter.update(m)
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return None
    return [cell_arrays(items, clean_scores, x_adv[j], queries[j], attack.name, norm, e, batch_size)
            for j, (e, _) in enumerate(budgets)]
