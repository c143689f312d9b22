"""Face anti-spoofing protocols: labelled frames per split; liveness score higher = live."""
from __future__ import annotations

import numpy as np
import torch

from bench.data.sets import FASSet, choose_items
from bench.evaluation import FASDevResult, fas_dev_result, fas_test_metrics, images_to_tensor
from bench.goals import GOALS
from bench.protocols.base import Protocol
from bench.tasks.items import GoalItems
from bench.tasks.spoof import SpoofTask
from bench.tasks.starts import spoof_starts


class FASProtocol(Protocol):
    """An anti-spoofing protocol: labelled frames per split; liveness score higher = live.

    The threshold is the dev split's EER (`calibrate`); the goals' items are test frames, spoof or live.
    """

    frames_per_video: int = 1

    def __init__(self, *, frames_per_video: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "frames_per_video", frames_per_video)

    def frames(self, split: str, size: int) -> FASSet:
        raise NotImplementedError

    def dev_split(self, size: int) -> FASSet:
        return self.frames("dev", size)

    def calibrate(self, model: torch.nn.Module, dev_split: FASSet, device: torch.device) -> FASDevResult:
        """The dev-set EER threshold (frame level) and the dev error rates there."""
        return fas_dev_result(model, dev_split, device)

    def test_metrics(self, model: torch.nn.Module, size: int, device: torch.device, threshold: float) -> dict:
        """Clean error rates on the whole test split at the dev threshold (the leaderboard's generalization figures)."""
        return fas_test_metrics(model, self.frames("test", size), device, threshold)

    def goal_items(self, goal: str, model: torch.nn.Module, threshold: float, samples: int, seed: int, size: int,
                   device: torch.device) -> GoalItems:
        spec = GOALS.get(goal)
        if spec is None or spec.items != "frames":
            return super().goal_items(goal, model, threshold, samples, seed, size, device)
        spoof = spec.select == "spoof"  # spoof frames to pass as live, or live frames to get rejected
        test = self.frames("test", size)
        pool = np.flatnonzero(~test.live if spoof else test.live)
        chosen = np.sort(pool[choose_items(len(pool), samples, seed, 2 if spoof else 3)])
        x = images_to_tensor(test.images[chosen]).to(device)
        starts = images_to_tensor(test.images[spoof_starts(test, chosen, goal)]).to(device)
        task = SpoofTask(model, threshold, goal, len(chosen)).with_starts(starts)
        return GoalItems(goal, x, task, [test.sample_ids[i] for i in chosen])
