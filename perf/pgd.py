"""PGD contenders on one workload: a bare torch loop, native pgd, each library direct and through our adapters.

All of them run the same attack: Linf PGD, `steps` steps of `step_size * eps`, uniform random start.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn

from attacks import make_attack
from attacks.backends.common import import_library
from perf.timing import Contender
from perf.workloads import Workload

LIBRARIES = ("torchattacks", "foolbox", "art")
ADAPTERS = {"torchattacks": "torchattacks-pgd", "foolbox": "foolbox-pgd", "art": "art-pgd"}


def bare_loop(w: Workload, eps: float, steps: int, step_size: float, seed: int = 0) -> Callable[[], torch.Tensor]:
    """The physical floor: `steps` forward + backward passes of the task margin with a sign step and the
    projection, on the whole batch, no early stop, no bookkeeping, no final evaluation."""
    task, x = w.task, w.x

    def run() -> torch.Tensor:
        g = torch.Generator(device=x.device).manual_seed(seed)
        delta = (torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * eps
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            xa = (x + delta).requires_grad_(True)
            grad, = torch.autograd.grad(task.margin(xa).sum(), xa)
            delta = (x + (delta + step_size * eps * grad.sign()).clamp(-eps, eps)).clamp(0, 1) - x
        return x + delta

    return run


def native(w: Workload, eps: float, steps: int, step_size: float, seed: int = 0) -> Callable[[], object]:
    attack = make_attack("pgd", {"steps": steps, "step_size": step_size, "random_start": True})
    return lambda: attack.run(w.task, w.x, "linf", eps, torch.Generator(device=w.x.device).manual_seed(seed))


def adapter(library: str, w: Workload, eps: float, steps: int, step_size: float, seed: int = 0) -> Callable[[], object]:
    attack = make_attack(ADAPTERS[library], {"steps": steps, "step_size": step_size, "random_start": True})
    return lambda: attack.run(w.task, w.x, "linf", eps, torch.Generator(device=w.x.device).manual_seed(seed))


def direct(library: str, w: Workload, eps: float, steps: int, step_size: float) -> Callable[[], object]:
    """The library's own PGD called on `task.as_classifier()` with the least glue it needs."""
    clf = w.task.as_classifier().eval()  # the model inside is in eval mode already; this keeps foolbox quiet
    x = w.x
    labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    if library == "torchattacks":
        ta = import_library("torchattacks")
        with contextlib.redirect_stdout(io.StringIO()):  # it prints that a parameterless module has no device
            attack = ta.PGD(clf, eps=eps, alpha=step_size * eps, steps=steps, random_start=True)
        attack.set_device(x.device)
        return lambda: attack(x, labels)
    if library == "foolbox":
        fb = import_library("foolbox")
        model = fb.PyTorchModel(clf, bounds=(0.0, 1.0), device=x.device)
        attack = fb.attacks.LinfPGD(rel_stepsize=step_size, steps=steps, random_start=True)
        return lambda: attack(model, x, labels, epsilons=eps)
    if library == "art":
        import_library("art")
        from art.attacks.evasion import ProjectedGradientDescentPyTorch
        from art.estimators.classification import PyTorchClassifier

        classifier = PyTorchClassifier(model=clf, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=2,
                                       clip_values=(0.0, 1.0), channels_first=True,
                                       device_type="gpu" if x.is_cuda else "cpu")
        attack = ProjectedGradientDescentPyTorch(classifier, norm=np.inf, eps=eps, eps_step=step_size * eps, max_iter=steps,
                                                 targeted=False, num_random_init=1, batch_size=x.shape[0], verbose=False)
        xn = x.detach().cpu().numpy().astype(np.float32)
        yn = np.eye(2, dtype=np.float32)[np.zeros(x.shape[0], dtype=int)]

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return attack.generate(xn, yn)

        return run
    raise ValueError(f"unknown library {library!r}")


def contenders(w: Workload, eps: float, steps: int, step_size: float, libraries: tuple[str, ...] = LIBRARIES,
               with_adapters: bool = True) -> list[Contender]:
    n = w.batch
    out = [Contender("bare torch loop", bare_loop(w, eps, steps, step_size), n, "baseline",
                     note=f"{steps} x (forward + backward + step), no early stop"),
           Contender("native pgd", native(w, eps, steps, step_size), n, "native")]
    for lib in libraries:
        out.append(Contender(f"{lib} PGD (direct)", direct(lib, w, eps, steps, step_size), n, "library", lib,
                             note="library on task.as_classifier()"))
        if with_adapters:
            out.append(Contender(ADAPTERS[lib], adapter(lib, w, eps, steps, step_size), n, "adapter", lib,
                                 note="our adapter (query counting, best-so-far, success by the task)"))
    return out
