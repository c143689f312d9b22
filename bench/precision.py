"""The fast path of the attacks' forward passes: BatchNorm folding, channels_last, bf16 autocast, torch.compile.

Each is an option of the run (`--fold-bn/--no-fold-bn`, `--precision`, `--channels-last/--no-channels-last`,
`--compile`):

- **BatchNorm folding** (on by default, CPU and CUDA): the attacks differentiate a copy of the model in
  which every eval-mode BatchNorm that directly follows a convolution (and is its only user, found by
  tracing the model with torch.fx) is folded into that convolution's weights and bias. It is the same
  function up to float rounding (the copy is checked against the model on random inputs before use;
  a model that cannot be traced, or whose copy disagrees, is attacked as it is, and the run says so);
  it saves the BatchNorm's forward and backward in every attack step (about 0.8x the time of PGD on
  the tiny FaceNet on CPU, docs/performance.md). Every stored decision is still made by the model as
  loaded, on the final inputs. Like channels_last it only changes float rounding, so it is not part of
  a cell's id; tests/test_gpu_path.py checks that attacks find the same successes within one sample in
  a hundred.

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

import copy
from dataclasses import dataclass
from typing import Optional

import torch

from bench.config import PRECISIONS
from bench.errors import BadInputError
from bench.tasks import Task
from bench.tasks.base import TaskView


@dataclass(frozen=True)
class ForwardOptions:
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    fold_bn: bool = False

    @property
    def plain(self) -> bool:
        """Whether the attacks' scores are the task's own (no autocast, no memory format change)."""
        return self.precision == "fp32" and not self.channels_last


def resolve_forward(precision: str, channels_last: Optional[bool], compile: bool, device: torch.device,
                    fold_bn: bool = True) -> ForwardOptions:
    """The run's forward options on `device` (channels_last: None = on for CUDA only)."""
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")
    return ForwardOptions(precision, device.type == "cuda" if channels_last is None else bool(channels_last), bool(compile),
                          bool(fold_bn))


# how far a folded copy's outputs may be from the model's on random inputs (relative to the output scale)
FOLD_TOLERANCE = 1e-3


@dataclass
class Folded:
    """The outcome of folding a model's BatchNorms: the copy to attack (None: attack the model itself),
    how many BatchNorms were folded, and why nothing was folded when so."""

    module: Optional[torch.nn.Module]
    folded: int
    note: str = ""

    def describe(self) -> dict:
        return {"bn_folded": self.folded, **({"bn_fold_note": self.note} if self.note else {})}


def _count_bn(model: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def fold_batchnorm(model: torch.nn.Module, example: torch.Tensor) -> Folded:
    """A copy of `model` (in eval mode) with each convolution-then-BatchNorm pair folded into one convolution.

    The pairs are found on the torch.fx graph (a BatchNorm whose input is a convolution's output used by
    nothing else); the copy is compared with the model on `example` (a small random batch) and refused
    when they differ by more than FOLD_TOLERANCE of the output scale. Never raises: a model that cannot be
    traced or folded is attacked as it is."""
    n_bn = _count_bn(model)
    if n_bn == 0:
        return Folded(None, 0)
    if model.training:
        return Folded(None, 0, "the model is in training mode")
    try:
        from torch.fx.experimental.optimization import fuse

        folded = fuse(copy.deepcopy(model))
    except Exception as e:  # not traceable by torch.fx (data-dependent control flow, ...)
        return Folded(None, 0, f"torch.fx could not trace or fold the model ({type(e).__name__})")
    count = n_bn - _count_bn(folded)
    if count == 0:
        return Folded(None, 0, "no BatchNorm directly follows a convolution")
    try:
        with torch.no_grad():
            a, b = model(example), folded(example)
        a, b = (torch.utils._pytree.tree_leaves(v) for v in (a, b))
        ok = len(a) == len(b) and all(
            torch.is_tensor(u) and torch.is_tensor(v) and u.shape == v.shape
            and float((u.float() - v.float()).abs().max()) <= FOLD_TOLERANCE * max(1.0, float(u.float().abs().max()))
            for u, v in zip(a, b))
    except Exception as e:
        return Folded(None, 0, f"the folded copy fails on an example batch ({type(e).__name__})")
    if not ok:
        return Folded(None, 0, "the folded copy's outputs differ from the model's")
    for p in folded.parameters():
        p.requires_grad_(False)
    return Folded(folded.eval(), count)


def prepare_model(model: torch.nn.Module, options: ForwardOptions) -> torch.nn.Module:
    """The model in the options' memory format, compiled when asked (the same weights)."""
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if options.compile:
        model = torch.compile(model)
    return model


def attack_model(model: torch.nn.Module, options: ForwardOptions, example: torch.Tensor) -> Folded:
    """The copy of `model` the attacks differentiate under `options`: BatchNorm-folded when `options.fold_bn`
    (see `fold_batchnorm`) and prepared like the model itself (`prepare_model`); `module` is None when the
    attacks use the model as it is."""
    if not options.fold_bn:
        return Folded(None, 0)
    folded = fold_batchnorm(model, example)
    if folded.module is not None:
        folded.module = prepare_model(folded.module, options)
    return folded


class FastTask(TaskView):
    """What the attacks see on the fast path: the task's scores under bf16 autocast, on channels_last
    inputs (the model the task holds being the BatchNorm-folded copy when there is one, see `fast_view`).
    Success, margins, thresholds, subsets and starts delegate to the wrapped task; scores come back in fp32."""

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
        with torch.autocast(self.device_type, dtype=getattr(torch, dtype)):
            s = self.task.scores(x)
        return s.float()


def fast_view(task: Task, options: ForwardOptions, device: torch.device,
              attack_module: Optional[torch.nn.Module] = None) -> Task:
    """The attacks' view of `task` under `options`: the task on `attack_module` (the BatchNorm-folded copy
    of its model, when there is one), under autocast / channels_last when asked; the task itself when
    nothing applies."""
    if attack_module is not None:
        task = task.with_model(attack_module)
    return task if options.plain else FastTask(task, options, device.type)
