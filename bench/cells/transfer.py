"""The transfer cell kind: adversarial examples crafted on another zoo model, judged on the model under test."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch

from attacks import ATTACKS, Attack, make_attack
from bench.batching import BatchSize
from bench.cells.attack import AttackEntry
from bench.cells.base import CellInputs, CellKind, CellOutput, PlannedCell, cell_arrays, register_cell_kind, total
from bench.cells.parsing import check_keys, eps_of, params_of
from bench.errors import BadInputError
from bench.progress import SampleMeter, chunk
from bench.tasks.base import Task, TaskView
from bench.tasks.items import GoalItems


@register_cell_kind
@dataclass(frozen=True)
class TransferEntry(CellKind):
    """The transfer matrix row of the model under test: `attack` crafted on each source model, scored here.

    `sources` None means every other shipped zoo model of the same task (and input size); one cell per
    (source, budget). Crafting runs every step on the source (no early stop: the source's own decision
    does not matter), keeping each sample's point of largest source margin.
    YAML: `{transfer: {attack, params, sources}, norm, eps}` (`transfer: true`: PGD from every other zoo model).
    """

    norm: str
    eps: tuple[float, ...]
    attack: str = "pgd"
    params: dict = field(default_factory=dict)
    sources: Optional[tuple[str, ...]] = None
    goals: Optional[tuple[str, ...]] = None  # the goals it applies to (None: every goal of the run)

    kind: ClassVar[str] = "transfer"
    yaml_keys = frozenset({"norm", "eps"})
    merge = {"source_queries_total": total}
    black_box = True  # no gradient of the model under test

    @classmethod
    def from_dict(cls, item: dict, where: str) -> "TransferEntry":
        spec = item["transfer"]
        if spec is True or spec is None:
            spec = {}
        if isinstance(spec, str):
            spec = {"attack": spec}
        if not isinstance(spec, dict):
            raise BadInputError(f"{where}: 'transfer' must be true, an attack name or {{attack, params, sources}}")
        check_keys(spec, {"attack", "params", "sources"}, f"{where}, transfer")
        sources = spec.get("sources")
        if sources is not None and (not isinstance(sources, list) or not sources):
            raise BadInputError(f"{where}: transfer 'sources' must be a non-empty list of zoo models")
        return cls(str(item.get("norm", "linf")), eps_of(item, where), str(spec.get("attack", "pgd")),
                   params_of(spec, where), tuple(str(v) for v in sources) if sources else None)

    def label(self) -> str:
        inner = AttackEntry(self.attack, self.norm, self.eps, self.params).label()
        return f"transfer[{inner} from {', '.join(self.sources) if self.sources else 'every other zoo model'}]"

    def validate(self, goals: tuple[Optional[str], ...]) -> None:
        cls = ATTACKS.get(self.attack)
        if cls.backend != "native":
            raise BadInputError(f"transfer crafts with a native attack, {self.attack!r} is {cls.backend}")
        AttackEntry(self.attack, self.norm, self.eps, self.params).validate(goals)

    def needs_sources(self) -> Optional[tuple[str, ...]]:
        return self.sources or ()

    def plan(self, goal: str, default_sources: tuple[str, ...]) -> list[PlannedCell]:
        crafted = {"attack": self.attack, "params": make_attack(self.attack, self.params).params()}
        return [PlannedCell(goal, self.kind, self.kind, {"source": source, **crafted}, self.norm, eps, self, source)
                for source in self.sources or default_sources for eps in self.eps]

    def config_fields(self, cell: PlannedCell, source_sha: dict[str, str]) -> dict:
        return {"attack": cell.attack, "backend": make_attack(cell.params["attack"], cell.params["params"]).backend,
                "params": {**cell.params, "source_sha256": source_sha[cell.source]}}

    def compute(self, inputs: CellInputs) -> CellOutput:
        cell, job = inputs.cell, inputs.job
        src_loaded, src_items = inputs.state.source(cell.source, cell.goal)
        if job is not None and job.shards > 1:
            src_items = src_items.shard(job.start, len(src_items.sample_ids) if job.stop < 0 else job.stop)
        arrays, src_q = transfer_cell(inputs.items, inputs.clean, src_items,
                                      make_attack(cell.params["attack"], cell.params["params"]), cell.norm, cell.eps,
                                      inputs.batch, seed=inputs.seed, meter=inputs.meter)
        return CellOutput(arrays, {"source_model": cell.source, "source_checkpoint": src_loaded.checkpoint,
                                   "source_queries_total": src_q * max(int(arrays["attacked"].sum()), 1)})

    def finish(self, cell: PlannedCell, attrs: dict, arrays: dict, source_sha: dict[str, str]) -> tuple[dict, Optional[str]]:
        attrs = dict(attrs)
        queries = attrs.pop("source_queries_total")
        attrs["source_queries_mean"] = round(queries / max(int(arrays["attacked"].sum()), 1), 3)
        attrs["source_checkpoint_sha256"] = source_sha[cell.source]
        return attrs, None

    @classmethod
    def stored_label(cls, config: dict, detailed: bool = False) -> str:
        return f"transfer from {cls.transfer_source(config) if detailed else config['params']['source']}"

    @classmethod
    def transfer_source(cls, config: dict) -> Optional[str]:
        return config["params"].get("source", "?")

    @classmethod
    def example_attack(cls, config: dict) -> Optional[tuple[str, dict, str]]:
        return None  # its examples come from another model


class NoStopTask(TaskView):
    """The source model's task as the crafting attack sees it: the goal is never reported reached, so the attack
    runs every step and keeps the largest margin.

    Everything else is the wrapped task's (`TaskView`): scores, margins, targets (`num_targets`, `retarget`, so a
    targeted attack such as APGD-T aims at every target it would on the source) and starts. The deliberate
    differences: `success_from_scores` and `broken_on_clean` are never true (the source's own decisions do not
    matter; which items are attacked is decided by the model under test's clean decisions).
    """

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.scores(x)

    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)

    def broken_on_clean(self, scores: torch.Tensor) -> torch.Tensor:
        return self.success_from_scores(scores)

    def rewrap(self, task: Task) -> "NoStopTask":
        return NoStopTask(task)


def transfer_cell(items: GoalItems, clean_scores: torch.Tensor, source: GoalItems, attack: Attack, norm: str,
                  eps: float, batch_size: "int | BatchSize", seed: int, meter: Optional[SampleMeter] = None) -> tuple[dict, float]:
    """Craft with `attack` on the source model's task (same items), judge on the model under test.

    Only items correct on clean input under test are attacked. Every step runs on the source (no
    early stop); `queries` is 1 per attacked item (one forward pass of the model under test).
    Returns the arrays and the mean number of source queries per attacked item.
    """
    if list(source.sample_ids) != list(items.sample_ids):
        raise RuntimeError("transfer: the source model's items differ from the items under test")
    task, x = items.task, items.x
    clean_broken = task.broken_on_clean(clean_scores)
    todo = (~clean_broken).nonzero().squeeze(1)
    x_adv = x.clone()
    queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    source_queries = 0
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)

    def work(idx: torch.Tensor) -> None:
        nonlocal source_queries
        with chunk(meter, idx.numel()):
            out = attack.run(NoStopTask(source.task.subset(idx)), source.x[idx], norm, eps, generator=gen)
        x_adv[idx] = out.x_adv.detach()
        queries[idx] = 1
        source_queries += int(out.queries.sum())
        if meter is not None:
            meter.update(idx.numel())

    BatchSize.of(batch_size).chunks(todo, work, generator=gen)
    arrays = cell_arrays(items, clean_scores, x_adv, queries, f"transfer[{attack.name}]", norm, eps, batch_size)
    return arrays, source_queries / max(int(todo.numel()), 1)
