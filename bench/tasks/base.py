"""The threat-model interface every attack works against."""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import ClassVar, Optional

import torch
from torch import nn

from bench.goals import GOALS


class Task(ABC):
    """A model + a batch of evaluation items + an operating point + an attacker's goal.

    Row i of every input `x` belongs to item i of the task. `margin(x)` is the attacker's
    differentiable per-sample margin: the attack succeeds on a sample exactly when its
    decision reaches the goal, which is when the margin is positive (ties go to the decision rule).

    `starts` (optional, set with `with_starts`) holds per item an input the protocol knows to reach the
    goal (an impostor pair's reference image, a live frame for spoof-to-live, ...), for decision-based
    attacks to start from; a row of NaN means none for that item. Attacks check a start through the
    task before using it; `subset` carries the starts of the items it keeps.
    """

    goal: str
    threshold: float
    starts: Optional[torch.Tensor] = None
    items: ClassVar[str] = ""  # the item kind (bench.goals.ITEM_KINDS) whose goals this task judges

    @classmethod
    def serves(cls, goal: str) -> bool:
        """Whether this task judges `goal` (a goal of its item kind, in bench.goals)."""
        return goal in GOALS and GOALS[goal].items == cls.items

    @classmethod
    def wants(cls, goal: str) -> str:
        """The decision the attacker wants for `goal` (its record's `wants`); a goal this task does not judge is an error."""
        if not cls.serves(goal):
            raise ValueError(f"{cls.__name__} judges the goals {goals_of_items(cls.items)}, not {goal!r}")
        return GOALS[goal].wants

    @abstractmethod
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The model's decision score per item (similarity for FR, liveness logit for FAS)."""

    @abstractmethod
    def margin_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Differentiable per-sample margin; positive means the attacker's goal is reached."""

    @abstractmethod
    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Whether each decision at the operating threshold is the attacker's goal."""

    @abstractmethod
    def subset(self, index: torch.Tensor) -> "Task":
        """The same task restricted to the items in `index` (in that order)."""

    @abstractmethod
    def __len__(self) -> int: ...

    def with_starts(self, starts: Optional[torch.Tensor]) -> "Task":
        """This task (a shallow copy) with per-item starting points `starts` (N, ...) for decision-based attacks; None: none."""
        if starts is not None and starts.shape[0] != len(self):
            raise ValueError(f"{starts.shape[0]} starting points for a task of {len(self)} items")
        if starts is None and self.starts is None:
            return self
        task = copy.copy(self)
        task.starts = None if starts is None else starts.detach()
        return task

    def with_model(self, module: nn.Module) -> "Task":
        """This task (a shallow copy) computing its scores with `module` instead of its model: the same
        function computed differently (the BatchNorm-folded copy, bench/precision.py). References and
        templates are kept as they are. A task that holds no `model` attribute is returned unchanged."""
        if not hasattr(self, "model"):
            return self
        task = copy.copy(self)
        task.model = module
        return task

    def starts_for(self, index: torch.Tensor) -> Optional[torch.Tensor]:
        """The starting points of the items in `index` (what `subset` carries), or None."""
        return None if self.starts is None else self.starts[index.to(self.starts.device)]

    def broken_on_clean(self, scores: torch.Tensor) -> torch.Tensor:
        """Items already wrong on clean input: counted as broken and not attacked (default: the goal is reached)."""
        return self.success_from_scores(scores)

    def sample_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """One float per item for the store (default: the decision score itself)."""
        return scores

    def margin(self, x: torch.Tensor) -> torch.Tensor:
        return self.margin_from_scores(self.scores(x))

    def success(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.success_from_scores(self.scores(x))

    def num_targets(self) -> int:
        """How many distinct targets a targeted attack can aim at (e.g. the classes other than the true one).

        A binary decision (verification, liveness) has one: the goal itself. Tasks that expose several
        class scores (identification) override this and `retarget`.
        """
        return 1

    def retarget(self, clean_scores: torch.Tensor, rank: int) -> "Task":
        """This task with its margin aimed at each sample's `rank`-th most likely other class.

        `clean_scores` are this task's scores on the clean inputs (they fix the ranking, so the target
        does not move while attacking). Success stays the task's own goal; only the margin that
        gradient attacks climb changes. Binary tasks have nothing to retarget and return themselves.
        """
        return self

    def as_classifier(self, scale: float = 10.0) -> nn.Module:
        """An `nn.Module` with two logits per sample, [keep, goal]; the true label is 0.

        An untargeted attack on label 0 from any classification library flips it to class 1,
        which is exactly the attacker's goal at the operating threshold.
        """
        return MarginClassifier(self, scale)



def goals_of_items(items: str) -> tuple[str, ...]:
    return tuple(g for g in GOALS if GOALS[g].items == items)


class TaskView(Task):
    """A view of a task that changes only how its scores are computed (EOT averaging, the fast forward
    path, ...): decisions, margins, thresholds, targets and starts are the wrapped task's. Subclasses
    implement `scores` and `rewrap` (the same view around another task)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.goal = task.goal
        self.threshold = task.threshold
        self.starts = getattr(task, "starts", None)

    @abstractmethod
    def rewrap(self, task: Task) -> "TaskView":
        """This view around `task`."""

    def __len__(self) -> int:
        return len(self.task)

    def margin_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return self.task.margin_from_scores(scores)

    def success_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return self.task.success_from_scores(scores)

    def broken_on_clean(self, scores: torch.Tensor) -> torch.Tensor:
        return self.task.broken_on_clean(scores)

    def sample_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return self.task.sample_scores(scores)

    def num_targets(self) -> int:
        return self.task.num_targets()

    def retarget(self, clean_scores: torch.Tensor, rank: int) -> "TaskView":
        return self.rewrap(self.task.retarget(clean_scores, rank)).with_starts(self.starts)

    def subset(self, index: torch.Tensor) -> "TaskView":
        return self.rewrap(self.task.subset(index)).with_starts(self.starts_for(index))

    def with_model(self, module: nn.Module) -> "TaskView":
        return self.rewrap(self.task.with_model(module)).with_starts(self.starts)

class MarginClassifier(nn.Module):
    """Binary classifier view of a task: logit 1 minus logit 0 is the scaled attacker margin."""

    def __init__(self, task: Task, scale: float) -> None:
        super().__init__()
        self.task = task.with_starts(None) if getattr(task, "starts", None) is not None else task  # queries need no starts
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.task)
        if x.shape[0] == n:
            task = self.task
        elif n == 1:  # a library querying one item with many candidates
            task = self.task.subset(torch.zeros(x.shape[0], dtype=torch.long))
        else:
            raise ValueError(f"batch of {x.shape[0]} does not match the task's {n} items")
        m = task.margin(x) * self.scale
        return torch.stack([torch.zeros_like(m), m], dim=1)
