"""The evaluation items of one goal, ready to attack: inputs, the task that judges them, their sample ids.

A protocol builds them (`bench.protocols.base.Protocol.goal_items`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.tasks.base import Task


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
