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


def bare_loop(w: Workload, eps: float, steps: int, step_size: float, seed: int = 0,
              folded: bool = False) -> Callable[[], torch.Tensor]:
    """The physical floor: `steps` forward + backward passes of the task margin with a sign step and the
    projection, on the whole batch, no early stop, no bookkeeping, no final evaluation. `folded`: on the
    forward the runner's attacks differentiate (`w.view`), else on the model as loaded."""
    task, x = (w.view if folded else w.task), w.x

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


def native(w: Workload, eps: float, steps: int, step_size: float, seed: int = 0, loaded: bool = False) -> Callable[[], object]:
    """Native PGD as the runner runs it (on `w.view`), or on the model as loaded (`loaded`, i.e. --no-fold-bn)."""
    attack = make_attack("pgd", {"steps": steps, "step_size": step_size, "random_start": True})
    task = w.task if loaded else w.view
    return lambda: attack.run(task, w.x, "linf", eps, torch.Generator(device=w.x.device).manual_seed(seed))


def adapter(library: str, w: Workload, eps: float, steps: int, step_size: float, seed: int = 0) -> Callable[[], object]:
    """A library's PGD through our adapter, as the runner runs it (on `w.view`)."""
    attack = make_attack(ADAPTERS[library], {"steps": steps, "step_size": step_size, "random_start": True})
    return lambda: attack.run(w.view, w.x, "linf", eps, torch.Generator(device=w.x.device).manual_seed(seed))


def direct(library: str, w: Workload, eps: float, steps: int, step_size: float, folded: bool = False) -> Callable[[], object]:
    """The library's own PGD called on `task.as_classifier()` with the least glue it needs: the model as a
    user hands it over, or (`folded`) the forward facebench's attacks differentiate."""
    clf = (w.view if folded else w.task).as_classifier().eval()  # the model inside is in eval mode already; this keeps foolbox quiet
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
    """The contenders of a PGD case. "native pgd" and the adapters run as the runner runs them (on the
    BatchNorm-folded forward when the model has one); the libraries direct get the model as loaded, as a
    user calling them would. When folding applies, three more rows show where the time goes: the bare loop
    on the folded forward (the floor of the forward native differentiates: the engine's own overhead),
    native on the model as loaded (`--no-fold-bn`) and torchattacks direct on the folded forward."""
    n = w.batch
    fold = w.bn_folded > 0
    out = [Contender("bare torch loop", bare_loop(w, eps, steps, step_size), n, "baseline",
                     note=f"{steps} x (forward + backward + step) on the model as loaded, no early stop")]
    if fold:
        out.append(Contender(BARE_FOLDED, bare_loop(w, eps, steps, step_size, folded=True), n, "floor",
                             note=f"the same loop on the forward native differentiates ({w.bn_folded} BatchNorms folded)"))
    out.append(Contender("native pgd", native(w, eps, steps, step_size), n, "native",
                         note="as the runner runs it" + (" (BatchNorm folded)" if fold else "")))
    if fold:
        out.append(Contender(NATIVE_LOADED, native(w, eps, steps, step_size, loaded=True), n, "reference",
                             note="the engine on the model as loaded (--no-fold-bn)"))
    for lib in libraries:
        out.append(Contender(f"{lib} PGD (direct)", direct(lib, w, eps, steps, step_size), n, "library", lib,
                             note="library on task.as_classifier() of the model as loaded"))
        if fold and lib == "torchattacks":
            out.append(Contender(TA_FOLDED, direct(lib, w, eps, steps, step_size, folded=True), n, "reference", lib,
                                 note="torchattacks on the folded forward (what folding alone buys a library)"))
        if with_adapters:
            out.append(Contender(ADAPTERS[lib], adapter(lib, w, eps, steps, step_size), n, "adapter", lib,
                                 note="our adapter as the runner runs it (query counting, best-so-far, success by the task)"))
    return out


BARE_FOLDED = "bare torch loop (folded)"
NATIVE_LOADED = "native pgd (--no-fold-bn)"
TA_FOLDED = "torchattacks PGD (direct, folded)"
