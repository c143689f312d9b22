"""The fast path of the attacks' forward passes: channels_last, bf16 autocast, torch.compile.

Each is an option of the run (`--precision`, `--channels-last/--no-channels-last`, `--compile`):

- **channels_last** (memory format of the model and of the attacked images): on by default on CUDA,
  where convolutions run faster in it, off on CPU. It changes no arithmetic beyond the order of float
  reductions; tests/test_gpu_path.py checks that attacks find the same successes within one sample in
  a hundred.
- **bf16 autocast** of the forward pass the attacks differentiate (`--precision bf16`): off by default.
  Only what the attacks see runs in bf16 (their gradients and early stops); every stored decision is
  made by the fp32 task on the final inputs, at the fp32 threshold. It is part of the cell's
  configuration (a bf16 cell is a different cell). It stays off by default until a CUDA run shows it
  does not weaken any attack (docs/performance.md).
- **torch.compile** of the model (`--compile`): off by default; part of the cell's configuration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from bench.errors import BadInputError
from bench.tasks import Task
from bench.tasks.base import TaskView

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class ForwardOptions:
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    @property
    def plain(self) -> bool:
        return self.precision == "fp32" and not self.channels_last


def resolve_forward(precision: str, channels_last: Optional[bool], compile: bool, device: torch.device) -> ForwardOptions:
    """The run's forward options on `device` (channels_last: None = on for CUDA only)."""
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")
    return ForwardOptions(precision, device.type == "cuda" if channels_last is None else bool(channels_last), bool(compile))


def prepare_model(model: torch.nn.Module, options: ForwardOptions) -> torch.nn.Module:
    """The model in the options' memory format, compiled when asked (the same weights)."""
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if options.compile:
        model = torch.compile(model)
    return model


class FastTask(TaskView):
    """What the attacks see on the fast path: the task's scores under bf16 autocast, on channels_last
    inputs. Success, margins, thresholds, subsets and starts delegate to the wrapped task; scores come
    back in fp32."""

    def __init__(self, task: Task, options: ForwardOptions, device_type: str) -> None:
        super().__init__(task)
        self.options = options
        self.device_type = device_type

    def rewrap(self, task: Task) -> "FastTask":
        return FastTask(task, self.options, self.device_type)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        if self.options.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.options.precision]
        if dtype is None:
            return self.task.scores(x)
        with torch.autocast(self.device_type, dtype=dtype):
            s = self.task.scores(x)
        return s.float()


def fast_view(task: Task, options: ForwardOptions, device: torch.device) -> Task:
    """The attacks' view of `task` under `options` (the task itself when nothing applies)."""
    return task if options.plain else FastTask(task, options, device.type)
