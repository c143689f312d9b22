"""The evaluation items of one goal, ready to attack: inputs, the task that judges them, their sample ids."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.data.sets import choose_items
from bench.protocols import FASProtocol, FRProtocol, Protocol
from bench.errors import BadInputError
from bench.evaluation import embed, images_to_tensor
from bench.goals import GOALS
from bench.tasks.base import Task
from bench.tasks.identification import DECISION_RULE, IdentificationTask, gallery_templates
from bench.tasks.spoof import SpoofTask
from bench.tasks.starts import identification_starts, spoof_starts
from bench.tasks.verification import VerificationTask


@dataclass
class GoalItems:
    """The evaluation items of one goal, ready to attack: inputs, their task and sample ids."""

    goal: str
    x: torch.Tensor
    task: Task
    sample_ids: list[str]
    rule: str = ""  # the decision rule when it is not the run's threshold (identification: top-1)

    def shard(self, start: int, stop: int) -> "GoalItems":
        """The items start..stop-1 (a shard of a cell), with their task restricted to them."""
        idx = torch.arange(start, stop, device=self.x.device)
        return GoalItems(self.goal, self.x[idx], self.task.subset(idx), list(self.sample_ids[start:stop]), self.rule)


def goal_items(protocol: Protocol, model: torch.nn.Module, goal: str, threshold: float, samples: int, seed: int,
               size: int, device: torch.device) -> GoalItems:
    """The items of one goal and their task; the task carries the starts of decision-based attacks (not for dodging,
    where a random image already reaches the goal): see `bench.tasks.starts`."""
    spec = GOALS.get(goal)
    if isinstance(protocol, FRProtocol) and spec is not None and spec.items == "pairs":
        pairs = protocol.test_pairs(spec.select, samples, seed, size)
        refs = embed(model, pairs.references, device).to(device)
        x = images_to_tensor(pairs.probes).to(device)
        task = VerificationTask(model, refs, threshold, goal)
        if goal == "impersonation":  # the reference image scores 1 against its own embedding
            task = task.with_starts(images_to_tensor(pairs.references).to(device))
        return GoalItems(goal, x, task, list(pairs.pair_ids))
    if isinstance(protocol, FRProtocol) and goal in IdentificationTask.goals:
        ident = protocol.identification(samples, seed, size)
        k = len(ident.identities)
        templates = gallery_templates(embed(model, ident.gallery, device), torch.as_tensor(ident.gallery_labels), k).to(device)
        labels = torch.as_tensor(ident.probe_labels, device=device)
        targets = torch.as_tensor(ident.targets, device=device) if goal == "target-identity" else None
        x = images_to_tensor(ident.probes).to(device)
        starts = images_to_tensor(ident.gallery[identification_starts(ident, goal)]).to(device)
        task = IdentificationTask(model, templates, labels, goal, targets).with_starts(starts)
        return GoalItems(goal, x, task, list(ident.probe_ids), rule=f"{DECISION_RULE}, {k} identities")
    if isinstance(protocol, FASProtocol) and goal in SpoofTask.goals:
        test = protocol.frames("test", size)
        pool = np.flatnonzero(~test.live if goal == "spoof-to-live" else test.live)
        chosen = np.sort(pool[choose_items(len(pool), samples, seed, 2 if goal == "spoof-to-live" else 3)])
        x = images_to_tensor(test.images[chosen]).to(device)
        starts = images_to_tensor(test.images[spoof_starts(test, chosen, goal)]).to(device)
        task = SpoofTask(model, threshold, goal, len(chosen)).with_starts(starts)
        return GoalItems(goal, x, task, [test.sample_ids[i] for i in chosen])
    raise BadInputError(f"protocol {protocol.name!r} does not provide items for goal {goal!r}")
