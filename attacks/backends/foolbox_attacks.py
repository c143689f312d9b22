"""Adapters for foolbox 3: Boundary, DeepFool and PGD.

foolbox works on the whole batch through a `PyTorchModel` (bounds (0, 1), on the inputs' device):
every model call carries one row per sample, so each call is one query of every sample still in
the batch (Boundary walks only the samples with an adversarial start, through `CountingClassifier.rows`).
foolbox returns (raw, clipped, success); only the points are used, success is the task's.
"""
from __future__ import annotations

from dataclasses import dataclass

from attacks.backends.common import (BackendAttack, CountingClassifier, LibraryDeepFool, LibraryPGD, check_count, check_positive,
                                     labels_zero)
from attacks.registry import register_attack
from bench.errors import BadInputError


def foolbox_model(fb, model: CountingClassifier, x):
    return fb.PyTorchModel(model, bounds=(0.0, 1.0), device=x.device)


@register_attack
@dataclass
class FoolboxBoundary(BackendAttack):
    """Boundary attack (Brendel et al., 2018): decision-based L2 minimal perturbation; success within eps.

    The walk starts from each sample's task starting point (`Task.starts`, checked by one query) where it
    reaches the goal; the other samples get foolbox's own start (blended uniform noise, linear search
    toward x; then one query to check it). Samples with no adversarial start are not walked (foolbox
    would refuse the batch) and keep x. The batch walks together: every call to the model is one query
    per walking sample; `max_queries` stops the walk for the batch.
    """

    name = "foolbox-boundary"
    backend = "foolbox"
    norms = ("l2",)
    black_box = True
    query_cap = "max_queries"
    description = "foolbox Boundary attack: decision-based L2 minimal-perturbation attack, success within the budget"

    max_queries: int = 5000
    steps: int = 2500
    spherical_step: float = 0.01
    source_step: float = 0.01
    step_adaptation: float = 1.5

    def validate(self) -> None:
        check_count(self.name, max_queries=self.max_queries, steps=self.steps)
        check_positive(self.name, spherical_step=self.spherical_step, source_step=self.source_step)
        if self.step_adaptation <= 1:
            raise BadInputError(f"{self.name}: step_adaptation must be > 1, got {self.step_adaptation}")

    def generate(self, fb, model, x, norm, eps):
        attack = fb.attacks.BoundaryAttack(
            steps=self.steps, spherical_step=self.spherical_step, source_step=self.source_step,
            step_adaptation=self.step_adaptation, tensorboard=False,
        )
        start, ok = model.checked_starts()
        rest = (~ok).nonzero().squeeze(1)
        if rest.numel():  # foolbox's default start, on the samples the task gave none that works
            init = fb.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50)
            start[rest] = init.run(foolbox_model(fb, model.rows(rest), x), x[rest], labels_zero(rest.numel(), x.device))
            ok[rest] = model.reaches_goal(start[rest], rest)
        walk = ok.nonzero().squeeze(1)
        out = x.clone()
        if walk.numel():
            raw, _, _ = attack(foolbox_model(fb, model.rows(walk), x), x[walk], labels_zero(walk.numel(), x.device),
                               epsilons=eps, starting_points=start[walk])
            out[walk] = raw
        return out


@register_attack
@dataclass
class FoolboxDeepFool(LibraryDeepFool):
    """DeepFool (Moosavi-Dezfooli et al., 2016): linearise the boundary and step across it; success within eps."""

    name = "foolbox-deepfool"
    backend = "foolbox"
    norms = ("linf", "l2")
    description = "foolbox DeepFool (L2 or Linf): minimal-perturbation white-box attack, success within the budget"

    def generate(self, fb, model, x, norm, eps):
        cls = fb.attacks.LinfDeepFoolAttack if norm == "linf" else fb.attacks.L2DeepFoolAttack
        attack = cls(steps=self.steps, candidates=2, overshoot=self.overshoot, loss="logits")
        raw, _, _ = attack(foolbox_model(fb, model, x), x, labels_zero(x.shape[0], x.device), epsilons=eps)
        return raw


@register_attack
@dataclass
class FoolboxPGD(LibraryPGD):
    """foolbox's PGD (LinfPGD / L2PGD, cross-entropy) for cross-checking the native one."""

    name = "foolbox-pgd"
    backend = "foolbox"
    norms = ("linf", "l2")
    description = "foolbox projected gradient descent (white-box, cross-check of native pgd)"

    def generate(self, fb, model, x, norm, eps):
        cls = fb.attacks.LinfPGD if norm == "linf" else fb.attacks.L2PGD
        attack = cls(rel_stepsize=self.step_size, steps=self.steps, random_start=self.random_start)
        raw, _, _ = attack(foolbox_model(fb, model, x), x, labels_zero(x.shape[0], x.device), epsilons=eps)
        return raw
