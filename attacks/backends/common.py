"""What every library adapter shares: query counting, seeding, silencing and the budget check.

A library attack sees a task only through `task.as_classifier()` (two logits [keep, goal], true
label 0). The adapter never trusts the library's own result: the returned points are projected into
the budget ball and [0, 1], and success is recomputed with `task.success`.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import random
import warnings
from dataclasses import dataclass, fields
from typing import ClassVar, Iterator, Optional

import numpy as np
import torch
from torch import nn

from attacks.base import Attack, AttackOutput, Budget, eps_view, project
from bench.config import NORMS
from bench.errors import BadInputError, FacebenchError
from bench.tasks.base import Task

BUDGET_SLACK = 1e-6  # a queried point counts as inside the budget up to this (float) tolerance
LIBRARY_LOGGERS = {"art": ("art",), "foolbox": ("foolbox",), "torchattacks": ("torchattacks",)}
LIBRARY_PACKAGES = {"art": "adversarial-robustness-toolbox", "foolbox": "foolbox", "torchattacks": "torchattacks"}


class BackendUnavailableError(FacebenchError):
    """A library backend that cannot be imported with the installed packages."""


class QueryBudgetExhausted(Exception):
    """Raised inside a library's model call once a sample has used its query budget."""


def import_library(name: str):
    """Import a backend library quietly; a failure is one clear line, not a traceback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(name)
        except Exception as e:  # ImportError, or a library broken by the installed torch/numpy
            raise BackendUnavailableError(
                f"backend {name!r} ({LIBRARY_PACKAGES.get(name, name)}) cannot be imported: {type(e).__name__}: {e}"
            ) from None


class CountingClassifier(nn.Module):
    """`task.as_classifier()` that counts the rows each sample contributes and keeps its best point.

    Rows are attributed to samples in one of two ways, the only two a `MarginClassifier` accepts:
    a batch with exactly one row per item (batched libraries: every sample gets one query per call),
    or, for a one-item task, any number of candidate rows (all of them that item's queries). Adapters
    of libraries that query arbitrary subsets or candidate batches therefore run one sample at a
    time; `rows(index)` is a view that queries only some of the items (one row each per call). Each
    row seen inside the budget ball and [0, 1] is a point the attacker found; the one
    with the largest margin is kept, so the result is the best point any query reached.
    With `max_queries`, a sample's rows beyond its budget are not evaluated and the call raises
    `QueryBudgetExhausted`. `checked_starts()` gives decision-based attacks the task's starting points.
    """

    def __init__(self, task: Task, x0: torch.Tensor, norm: str, eps: float, max_queries: Optional[int] = None,
                 scale: float = 10.0) -> None:
        super().__init__()
        starts = getattr(task, "starts", None)
        self.starts = None if starts is None else starts.detach().to(device=x0.device, dtype=x0.dtype)
        if self.starts is not None and self.starts.shape != x0.shape:
            raise ValueError(f"the task's starting points have shape {tuple(self.starts.shape)}, its inputs {tuple(x0.shape)}")
        self.task = task.with_starts(None) if starts is not None else task  # queries need no starts
        self.classifier = self.task.as_classifier(scale)
        self.scale = scale
        self.n = len(task)
        self.x0 = x0.detach()
        self.norm = norm
        self.eps = float(eps)
        self.max_queries = max_queries
        self.queries = torch.zeros(self.n, dtype=torch.long, device=x0.device)
        self.best_x = x0.detach().clone()
        self.best_m = torch.full((self.n,), -torch.inf, device=x0.device)
        # libraries find the device from the parameters; this one holds nothing
        self.anchor = nn.Parameter(torch.zeros(0, device=x0.device), requires_grad=False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == self.n:
            owner = torch.arange(self.n, device=self.queries.device)
        elif self.n == 1:
            owner = torch.zeros(x.shape[0], dtype=torch.long, device=self.queries.device)
        else:
            raise RuntimeError(f"library queried {x.shape[0]} rows for {self.n} items; run this adapter per sample")
        return self.query(x, owner)

    def query(self, x: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """The two logits of rows `x`, row r a query of item `owner[r]`: counted, budgeted and tracked."""
        x = x.to(self.x0.dtype)  # ART's random search drifts to float64
        owner = owner.to(self.queries.device)
        exhausted = False
        if self.max_queries is not None and x.shape[0]:
            room = self.max_queries - self.queries[owner]  # per row
            if bool((owner == owner[0]).all()):  # one item's candidates: as many as it has room for
                keep = int(room[0].clamp_min(0))
                if keep < x.shape[0]:
                    exhausted, x, owner = True, x[:keep], owner[:keep]
            elif bool((room <= 0).any()):
                exhausted, x, owner = True, x[:0], owner[:0]
        if x.shape[0] == 0:
            raise QueryBudgetExhausted
        self.queries.index_add_(0, owner, torch.ones_like(owner))
        whole = self.n == 1 or (owner.numel() == self.n and bool((owner == torch.arange(self.n, device=owner.device)).all()))
        classifier = self.classifier if whole else self.task.subset(owner).as_classifier(self.scale)
        logits = classifier(x)
        self._track(x.detach(), logits.detach()[:, 1] / self.scale, owner)
        if exhausted:
            raise QueryBudgetExhausted
        return logits

    def rows(self, index: torch.Tensor) -> nn.Module:
        """A classifier over the items in `index` only: each call is one row per listed item, counted against it."""
        return _Rows(self, index)

    def reaches_goal(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Whether each row of `x` reaches the goal of item `index[r]` (one counted query each)."""
        with torch.no_grad():
            logits = self.query(x, index)
        return logits[:, 1] > logits[:, 0]

    def checked_starts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The task's starting point per sample and whether it reaches the goal, checked by one query per given start.

        Samples without a start (no `starts`, or a row of NaN) get x0 and False, at no query.
        """
        points, ok = self.x0.clone(), torch.zeros(self.n, dtype=torch.bool, device=self.x0.device)
        if self.starts is None:
            return points, ok
        given = torch.isfinite(self.starts.flatten(1)).all(1).nonzero().squeeze(1)
        if given.numel():
            points[given] = self.starts[given]
            ok[given] = self.reaches_goal(points[given], given)
        return points, ok

    def _track(self, x: torch.Tensor, margin: torch.Tensor, owner: torch.Tensor) -> None:
        d = (x - self.x0[owner]).flatten(1)
        used = d.abs().amax(1) if self.norm == "linf" else d.norm(dim=1)
        inside = (used <= self.eps + BUDGET_SLACK) & (x.flatten(1).amin(1) >= 0) & (x.flatten(1).amax(1) <= 1)
        m = torch.where(inside, margin, torch.full_like(margin, -torch.inf))
        for i in owner.unique().tolist():  # a handful of owners per call
            rows = (owner == i).nonzero().squeeze(1)
            j = rows[m[rows].argmax()]
            if bool(m[j] > self.best_m[i]):
                self.best_m[i] = m[j]
                self.best_x[i] = x[j]


class _Rows(nn.Module):
    """`CountingClassifier.rows`: the counting classifier restricted to some of its items."""

    def __init__(self, counting: CountingClassifier, index: torch.Tensor) -> None:
        super().__init__()
        self.counting = [counting]  # not a submodule: no second registration of its parameters
        self.index = index.to(counting.queries.device)
        self.anchor = nn.Parameter(torch.zeros(0, device=counting.x0.device), requires_grad=False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.index.numel():
            raise RuntimeError(f"library queried {x.shape[0]} rows for a view of {self.index.numel()} items")
        return self.counting[0].query(x, self.index)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch (CPU and CUDA) for a library call, and restore their state after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def quiet(library: str, verbose: bool) -> Iterator[None]:
    """Silence a library's warnings and logging (its progress bars are switched off by the adapter)."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS.get(library, ())]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(_Sink()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


class _Sink:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def seed_from(generator: Optional[torch.Generator]) -> int:
    """One seed for the library drawn from the run's generator (0 without one)."""
    if generator is None:
        return 0
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))


def in_budget(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: torch.Tensor) -> torch.Tensor:
    """`x_adv` moved into the budget ball around `x` and into [0, 1] (a no-op for points already there)."""
    return (x + project((x_adv - x).detach(), x, norm, eps)).detach()


def check_positive(attack: str, **values: float) -> None:
    for name, v in values.items():
        if not v > 0:
            raise BadInputError(f"{attack}: {name} must be positive, got {v}")


def check_count(attack: str, **counts: int) -> None:
    """Step, iteration and query counts must be at least one."""
    for key, value in counts.items():
        if value < 1:
            raise BadInputError(f"{attack}: {key} must be >= 1, got {value}")


def check_relative_step(attack: str, step_size: float) -> None:
    if not 0 < step_size <= 1:
        raise BadInputError(f"{attack}: step_size is relative to eps and must be in (0, 1], got {step_size}")


@dataclass
class BackendAttack(Attack):
    """An attack run by a library on a task's `as_classifier()` view.

    Subclasses set `backend` (the library's import name), `per_sample` (the library queries
    arbitrary subsets, so each sample runs alone), `query_cap` (the field holding a hard
    per-sample query budget, for black-box attacks) and implement `generate`.
    """

    backend: ClassVar[str] = ""
    query_cap: ClassVar[Optional[str]] = None

    verbose: bool = False  # show the library's own progress and logging; not part of the attack's identity

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "verbose"}

    def generate(self, lib, model: CountingClassifier, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
        """Run the library attack on `model` (true label 0 for every row); return its adversarial points."""
        raise NotImplementedError

    def run(self, task: Task, x: torch.Tensor, norm: str, eps: Budget, generator: Optional[torch.Generator] = None) -> AttackOutput:
        """Run on every sample; success recomputed by the task, points projected into the budget.

        `queries` is the number of forward passes (model rows) each sample used; a gradient is one
        forward plus one backward and counts once.
        """
        if norm not in NORMS:
            raise BadInputError(f"unknown norm {norm!r} (known: {', '.join(NORMS)})")
        eps_all = eps_view(eps, x)
        values = eps_all.flatten().unique().tolist()
        for e in values if isinstance(eps, torch.Tensor) else [float(eps)]:
            self.check(norm, float(e))
        lib = import_library(self.backend)
        x = x.detach().contiguous()  # torchattacks' L2 code views inputs flat
        x_adv = x.clone()
        queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        seed = seed_from(generator)
        cap = getattr(self, self.query_cap) if self.query_cap else None
        with seeded(seed), quiet(self.backend, self.verbose):
            for e in values:
                group = (eps_all.flatten() == e).nonzero().squeeze(1)
                chunks = [group[i : i + 1] for i in range(group.numel())] if self.per_sample else [group]
                for idx in chunks:
                    sub, xs = task.subset(idx), x[idx]
                    model = CountingClassifier(sub, xs, norm, e, cap)
                    try:
                        out = self.generate(lib, model, xs, norm, float(e))
                        out = torch.as_tensor(out, dtype=xs.dtype).to(xs.device).reshape(xs.shape)
                        out = torch.where(torch.isfinite(out), out, xs)  # a library's NaNs fall back to x
                    except QueryBudgetExhausted:
                        out = model.best_x
                    best = self._pick(sub, in_budget(out, xs, norm, eps_all[idx]), model.best_x)
                    x_adv[idx] = in_budget(best, xs, norm, eps_all[idx])
                    queries[idx] = model.queries
        success = task.success(x_adv)
        return AttackOutput(x_adv, success, queries)

    @staticmethod
    def _pick(task: Task, out: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """The library's (projected) output, or the best in-budget point it queried if that is better.

        For white-box attacks this gives the library the same best-so-far rule as the native
        engine; for black-box ones it keeps a success found by a query even if the library's final
        point (a minimal-perturbation search's, say) lies outside the budget.
        """
        with torch.no_grad():
            take = task.margin(best) > task.margin(out)
        return torch.where(take.view(-1, *([1] * (out.dim() - 1))), best, out)


@dataclass
class LibraryPGD(BackendAttack):
    """The parameters every library's PGD shares with the native one (cross-checks use the same values)."""

    steps: int = 10
    step_size: float = 0.25  # relative to eps, as native pgd
    random_start: bool = True

    def validate(self) -> None:
        check_count(self.name, steps=self.steps)
        check_relative_step(self.name, self.step_size)


@dataclass
class LibrarySquare(BackendAttack):
    """Square attack (Andriushchenko et al., 2020), score-based random search: the parameters of both libraries'."""

    black_box = True
    per_sample = True
    query_cap = "max_queries"

    max_queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1

    def validate(self) -> None:
        check_count(self.name, max_queries=self.max_queries, restarts=self.restarts)
        if not 0 < self.p_init <= 1:
            raise BadInputError(f"{self.name}: p_init must be in (0, 1], got {self.p_init}")


@dataclass
class LibraryDeepFool(BackendAttack):
    """DeepFool (Moosavi-Dezfooli et al., 2016): minimal perturbation, success within the budget."""

    steps: int = 50
    overshoot: float = 0.02

    def validate(self) -> None:
        check_count(self.name, steps=self.steps)
        if self.overshoot < 0:
            raise BadInputError(f"{self.name}: overshoot must be >= 0, got {self.overshoot}")


def labels_zero(n: int, device: torch.device) -> torch.Tensor:
    """The true label of every row of a task classifier."""
    return torch.zeros(n, dtype=torch.long, device=device)
