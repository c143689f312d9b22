"""Adapters for adversarial-robustness-toolbox (ART): Square, HopSkipJump, Boundary and PGD.

ART works on numpy through a `PyTorchClassifier` around the task's classifier (two classes,
clip values (0, 1), cross-entropy loss). ART's Square, HopSkipJump and Boundary evaluate arbitrary
subsets and candidate batches, so they run one sample at a time (each row ART predicts is one query
of that sample) under a hard per-sample `max_queries`. ART's PGD runs on the whole batch.
HopSkipJump and Boundary start from the task's starting point for the sample (`Task.starts`: an input
the protocol knows to reach the goal, e.g. the impostor pair's reference image) when it reaches the goal,
else from uniform noise drawn from the seeded torch RNG (ART's own draw is unseeded).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from attacks.backends.common import BackendAttack, CountingClassifier, LibraryPGD, LibrarySquare, check_count, check_positive
from attacks.registry import register_attack
from bench.errors import BadInputError

ART_NORMS = {"linf": np.inf, "l2": 2}


def art_classifier(lib, model: CountingClassifier, x: torch.Tensor):
    """The task classifier as an ART `PyTorchClassifier` on the inputs' device."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=2,
        clip_values=(0.0, 1.0), channels_first=True, device_type="gpu" if x.is_cuda else "cpu",
    )


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32)


def art_labels(n: int) -> np.ndarray:
    """One-hot true labels: class 0 (keep) for every row."""
    y = np.zeros((n, 2), dtype=np.float32)
    y[:, 0] = 1
    return y


def seeded_start(model: CountingClassifier, x: torch.Tensor, tries: int, chunk: int = 10):
    """A uniform-noise image the task already sends to the goal, drawn from the seeded torch RNG.

    ART's decision-based attacks draw their starting point from an unseeded `np.random.RandomState`;
    handing them this one (through `x_adv_init`) makes runs reproducible. Each try is one query, as in
    ART. Returns None when no try is adversarial (the attack then fails, as ART's own search would).
    """
    for start in range(0, tries, chunk):
        cand = torch.rand((min(chunk, tries - start),) + tuple(x.shape[1:]), device=x.device, dtype=x.dtype)
        with torch.no_grad():
            logits = model(cand)
        hit = (logits[:, 1] > logits[:, 0]).nonzero()
        if hit.numel():
            return to_numpy(cand[hit[0]])
    return None


@register_attack
@dataclass
class ARTSquare(LibrarySquare):
    """Square attack (Andriushchenko et al., 2020): score-based random search over square patches."""

    name = "art-square"
    backend = "art"
    norms = ("linf", "l2")
    description = "ART Square attack: score-based random search (black-box), one sample at a time"

    def generate(self, lib, model, x, norm, eps):
        from art.attacks.evasion import SquareAttack

        attack = SquareAttack(
            art_classifier(lib, model, x), norm=ART_NORMS[norm], max_iter=self.max_queries, eps=eps,
            p_init=self.p_init, nb_restarts=self.restarts, batch_size=x.shape[0], verbose=self.verbose,
        )
        return attack.generate(to_numpy(x), art_labels(x.shape[0]))


def generate_from_start(attack, model: CountingClassifier, x: torch.Tensor, init_size: int):
    """Run a decision-based ART attack on one sample from an adversarial start, handed over as `x_adv_init`.

    The start is the task's own (`CountingClassifier.checked_starts`, one query) when it reaches the goal,
    else one drawn by `seeded_start` (ART's own draw is unseeded); the clean input when none of
    `init_size` draws reaches the goal either. The attack then moves the start toward x.
    """
    points, ok = model.checked_starts()
    start = to_numpy(points) if bool(ok.all()) else seeded_start(model, x, init_size)
    if start is None:
        return x
    return attack.generate(to_numpy(x), art_labels(x.shape[0]), x_adv_init=start)


@register_attack
@dataclass
class ARTHopSkipJump(BackendAttack):
    """HopSkipJump (Chen et al., 2020): decision-based, minimal perturbation; success within eps."""

    name = "art-hopskipjump"
    backend = "art"
    norms = ("linf", "l2")
    black_box = True
    per_sample = True
    query_cap = "max_queries"
    description = "ART HopSkipJump: decision-based minimal-perturbation attack, success within the budget"

    max_queries: int = 5000
    max_iter: int = 50
    max_eval: int = 1000
    init_eval: int = 100
    init_size: int = 100

    def validate(self) -> None:
        check_count(self.name, max_queries=self.max_queries, max_iter=self.max_iter, max_eval=self.max_eval,
                    init_eval=self.init_eval, init_size=self.init_size)
        if self.init_eval > self.max_eval:
            raise BadInputError(f"{self.name}: init_eval ({self.init_eval}) must not exceed max_eval ({self.max_eval})")

    def generate(self, lib, model, x, norm, eps):
        from art.attacks.evasion import HopSkipJump

        attack = HopSkipJump(
            art_classifier(lib, model, x), batch_size=64, targeted=False, norm=ART_NORMS[norm],
            max_iter=self.max_iter, max_eval=self.max_eval, init_eval=self.init_eval, init_size=self.init_size,
            verbose=self.verbose,
        )
        return generate_from_start(attack, model, x, self.init_size)


@register_attack
@dataclass
class ARTBoundary(BackendAttack):
    """Boundary attack (Brendel et al., 2018), ART's version: decision-based L2 walk along the boundary."""

    name = "art-boundary"
    backend = "art"
    norms = ("l2",)
    black_box = True
    per_sample = True
    query_cap = "max_queries"
    description = "ART Boundary attack: decision-based L2 minimal-perturbation attack, success within the budget"

    max_queries: int = 5000
    max_iter: int = 1000
    delta: float = 0.01
    epsilon: float = 0.01  # ART's step toward the original, not the budget
    num_trial: int = 25
    init_size: int = 100

    def validate(self) -> None:
        check_count(self.name, max_queries=self.max_queries, max_iter=self.max_iter, num_trial=self.num_trial,
                    init_size=self.init_size)
        check_positive(self.name, delta=self.delta, epsilon=self.epsilon)

    def generate(self, lib, model, x, norm, eps):
        from art.attacks.evasion import BoundaryAttack

        attack = BoundaryAttack(
            art_classifier(lib, model, x), batch_size=64, targeted=False, delta=self.delta, epsilon=self.epsilon,
            max_iter=self.max_iter, num_trial=self.num_trial, init_size=self.init_size, verbose=self.verbose,
        )
        return generate_from_start(attack, model, x, self.init_size)


@register_attack
@dataclass
class ARTPGD(LibraryPGD):
    """ART's PGD (PyTorch implementation) for cross-checking the native one: same steps, step size and start."""

    name = "art-pgd"
    backend = "art"
    norms = ("linf", "l2")
    description = "ART projected gradient descent (white-box, cross-check of native pgd)"

    def generate(self, lib, model, x, norm, eps):
        from art.attacks.evasion import ProjectedGradientDescentPyTorch

        attack = ProjectedGradientDescentPyTorch(
            art_classifier(lib, model, x), norm=ART_NORMS[norm], eps=eps, eps_step=self.step_size * eps,
            max_iter=self.steps, targeted=False, num_random_init=int(self.random_start), batch_size=x.shape[0],
            verbose=self.verbose,
        )
        return attack.generate(to_numpy(x), art_labels(x.shape[0]))
