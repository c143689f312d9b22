"""What the cases attack: a shipped zoo model's evaluation items, built the way the runner builds them."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.protocols import get_protocol
from bench.batching import batched_scores
from bench.tasks import VerificationTask
from models_zoo.checkpoint import model_eval
from bench.precision import attack_model, fast_view, resolve_forward
from models_zoo.factory import load_model, resolve_model
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
    weights: str = "shipped"

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    def subset(self, index: torch.Tensor) -> "Workload":
        return Workload(self.model_name, self.profile, self.protocol, self.goal, self.threshold,
                        self.task.subset(index), self.x[index], self.view.subset(index), self.bn_folded, self.weights)

    def describe(self) -> dict:
        return {"model": self.model_name, "profile": self.profile, "protocol": self.protocol, "goal": self.goal,
                "threshold": self.threshold, "batch": self.batch, "input_shape": list(self.x.shape[1:]),
                "bn_folded": self.bn_folded, "weights": self.weights}


_CACHE: dict[tuple, Workload] = {}


def runner_view(task: Task, model: torch.nn.Module, example: torch.Tensor, device: torch.device) -> tuple[Task, int]:
    """The task as the runner's attacks see it with the default forward options on `device` (the
    BatchNorm-folded copy, prepared like the runner prepares it), and how many BatchNorms were folded."""
    options = resolve_forward("fp32", None, False, device)
    folded = attack_model(model, options, example)
    return fast_view(task, options, device, folded.module), folded.folded


def shipped_workload(model: str, goal: str, batch: int, device: torch.device, profile: str = "tiny",
                     seed: int = 0) -> Workload:
    """A zoo model's shipped weights, its default protocol's test items for `goal`, its card's dev threshold.

    Items already broken on clean input are dropped (the runner does not attack them); the first
    `batch` of the rest are kept. `view` is the task as the runner's attacks see it with the default
    forward options on `device` (bench/precision.py). Built once per process and argument set.
    """
    key = (model, goal, batch, str(device), profile, seed)
    if key not in _CACHE:
        mut = resolve_model(model, profile=profile)
        loaded = load_model(mut, None, device)
        threshold = float(loaded.card["dev"]["threshold"])
        protocol = get_protocol(mut.default_protocol)
        items = protocol.goal_items(goal, loaded.module, threshold, max(2 * batch, 16), seed, mut.input_size, device)
        todo = (~items.task.success(items.x)).nonzero().squeeze(1)[:batch]
        task = items.task.subset(todo)
        view, folded = runner_view(task, loaded.module, items.x[:4], device)
        _CACHE[key] = Workload(mut.name, mut.profile, protocol.name, goal, threshold, task, items.x[todo].contiguous(),
                               view, folded)
    return _CACHE[key]


def paper_workload(model: str, goal: str, batch: int, device: torch.device, seed: int = 0) -> Workload:
    """The paper profile of an FR zoo variant (ResNet50 at 160 px for facenet-baseline) for timing: no paper
    weights are shipped, so the network is randomly initialised (seeded); a step costs the same whatever the
    weights. The threshold is the median clean score of the goal's items (so half are clean-correct, and an
    attack breaks some of them); the first `batch` clean-correct items are kept."""
    key = (model, goal, batch, str(device), "paper", seed)
    if key not in _CACHE:
        mut = resolve_model(model, profile="paper")
        if mut.task != "fr" or not VerificationTask.serves(goal):
            raise ValueError(f"the paper-profile workload is for FR verification goals, not {model} / {goal}")
        torch.manual_seed(seed)
        module = model_eval(mut.spec.build("paper")).to(device)
        protocol = get_protocol(mut.default_protocol)
        items = protocol.goal_items(goal, module, 0.0, max(2 * batch, 16), seed, mut.input_size, device)
        clean = batched_scores(items.task, items.x, 32)
        task = VerificationTask(module, items.task.references, float(clean.median()), goal)
        todo = (~task.success(items.x)).nonzero().squeeze(1)[:batch]
        task = task.subset(todo)
        view, folded = runner_view(task, module, items.x[:4], device)
        _CACHE[key] = Workload(mut.name, "paper", protocol.name, goal, task.threshold, task, items.x[todo].contiguous(),
                               view, folded, "random init (timing only; no paper weights are shipped)")
    return _CACHE[key]


def workload(model: str, goal: str, batch: int, device: torch.device, profile: str = "tiny", seed: int = 0) -> Workload:
    """The workload of a case at `profile`: the shipped tiny weights, or the paper profile's network (random init)."""
    if profile == "paper":
        return paper_workload(model, goal, batch, device, seed)
    return shipped_workload(model, goal, batch, device, profile, seed)
