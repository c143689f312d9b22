"""The protocol type: a named split over a dataset, which calibrates a model and builds the items of a goal.

Each task's base class (`bench.protocols.fr.FRProtocol`, `bench.protocols.fas.FASProtocol`) says how
its protocols do that, so that callers (the runner, training, the perf workloads) never branch on a
protocol's type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import torch

from bench.data.sets import FaceSet, FASSet
from bench.errors import BadInputError
from bench.evaluation import FASDevResult, FRDevResult
from bench.tasks.items import GoalItems

DevResult = Union[FRDevResult, FASDevResult]
"""What `Protocol.calibrate` returns: the operating point (`.operating_point`), its card entries
(`.as_card()`) and its log line (`.describe()`)."""


@dataclass(frozen=True)
class Protocol:
    """A named split over a dataset: its task, its threshold rule and a description of each split."""

    name: str
    task: str
    description: str
    threshold_rule: str
    splits: dict = field(default_factory=dict)

    def data_fingerprint(self, size: int) -> Optional[str]:
        """A hash of the data the dev and test splits are read from at `size` px, or None where the protocol has none.

        It is part of every cell's configuration, and so of its id (`bench.planning.cell_config`): a cell computed
        on other data (the embedded world after a change, say) is another cell, never reused for this one. The
        embedded world's protocols have one (`bench.data.synth.export.content_fingerprint`); the real datasets'
        do not, since their official releases are fixed and read where the user keeps them."""
        return None

    @property
    def base_protocol(self) -> str:
        """The protocol whose train split, dev split and threshold rule this one uses, attacking other items: its own
        name, or the one it shares them with (`synth-fr-dev`: `synth-fr`). A model trained, or a model card
        measured, on either is the same (`bench.runner.comparable_card`, the claims' trainings)."""
        return self.name

    def dev_split(self, size: int) -> Union[FaceSet, FASSet]:
        """The dev split: what the threshold is fitted on (and a model's outputs are checked on first)."""
        raise NotImplementedError

    def calibrate(self, model: torch.nn.Module, dev_split: Union[FaceSet, FASSet], device: torch.device) -> DevResult:
        """The model's operating point on `dev_split` (by the protocol's threshold rule) and its dev figures there."""
        raise NotImplementedError

    def test_metrics(self, model: torch.nn.Module, size: int, device: torch.device, threshold: float) -> Optional[dict]:
        """Clean metrics on the whole test split at `threshold`, stored with a run; None where the task has none."""
        return None

    def goal_items(self, goal: str, model: torch.nn.Module, threshold: float, samples: int, seed: int, size: int,
                   device: torch.device) -> GoalItems:
        """The `samples` items of `goal` chosen by `seed`, with the task that judges them at `threshold` (the run's
        operating threshold; for a k-fold protocol, `bench.protocols.kfold`, one per fold); the task
        carries the starts of decision-based attacks (not for dodging, where a random image already reaches the
        goal): see `bench.tasks.starts`. A `BadInputError` where the protocol cannot serve the goal."""
        raise BadInputError(f"protocol {self.name!r} does not provide items for goal {goal!r}")
