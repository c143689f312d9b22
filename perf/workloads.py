"""What the cases attack: a shipped zoo model's evaluation items, built the way the runner builds them."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.data.protocols import get_protocol
from bench.precision import fast_view, fold_batchnorm, resolve_forward
from bench.runner import RunConfig, goal_items, load_model, resolve_model
from bench.tasks.base import Task


@dataclass
class Workload:
    """The clean-correct items of one goal of a shipped model, on a device, at most `batch` of them."""

    model_name: str
    profile: str
    protocol: str
    goal: str
    threshold: float
    task: Task
    x: torch.Tensor
    view: Task  # what the runner's attacks see: the task on the default fast forward path (BatchNorm folded)
    bn_folded: int = 0

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    def subset(self, index: torch.Tensor) -> "Workload":
        return Workload(self.model_name, self.profile, self.protocol, self.goal, self.threshold,
                        self.task.subset(index), self.x[index], self.view.subset(index), self.bn_folded)

    def describe(self) -> dict:
        return {"model": self.model_name, "profile": self.profile, "protocol": self.protocol, "goal": self.goal,
                "threshold": self.threshold, "batch": self.batch, "input_shape": list(self.x.shape[1:]),
                "bn_folded": self.bn_folded}


_CACHE: dict[tuple, Workload] = {}


def shipped_workload(model: str, goal: str, batch: int, device: torch.device, profile: str = "tiny",
                     seed: int = 0) -> Workload:
    """A zoo model's shipped weights, its default protocol's test items for `goal`, its card's dev threshold.

    Items already broken on clean input are dropped (the runner does not attack them); the first
    `batch` of the rest are kept. `view` is the task as the runner's attacks see it with the default
    forward options on `device` (bench/precision.py). Built once per process and argument set.
    """
    key = (model, goal, batch, str(device), profile, seed)
    if key not in _CACHE:
        cfg = RunConfig(model=model, samples=max(2 * batch, 16), seed=seed, device=str(device), profile=profile)
        mut = resolve_model(cfg)
        loaded = load_model(mut, cfg, device)
        threshold = float(loaded.card["dev"]["threshold"])
        protocol = get_protocol(mut.default_protocol)
        items = goal_items(protocol, loaded.module, goal, threshold, cfg, mut.input_size, device)
        todo = (~items.task.success(items.x)).nonzero().squeeze(1)[:batch]
        task = items.task.subset(todo)
        options = resolve_forward("fp32", None, False, device)
        folded = fold_batchnorm(loaded.module, items.x[:4])
        _CACHE[key] = Workload(mut.name, mut.profile, protocol.name, goal, threshold, task, items.x[todo].contiguous(),
                               fast_view(task, options, device, folded.module), folded.folded)
    return _CACHE[key]
