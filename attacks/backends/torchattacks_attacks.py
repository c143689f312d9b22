"""Adapters for torchattacks: Square, DeepFool and PGD.

torchattacks takes a model returning logits and integer labels. Its PGD calls the
model on the whole batch (one query per sample per call); its Square attack evaluates only the
samples still unbroken and its DeepFool one image at a time, so those run one sample at a time
(Square under a hard per-sample `max_queries`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.backends.common import LibraryDeepFool, LibraryPGD, LibrarySquare, labels_zero
from attacks.registry import register_attack

TA_NORMS = {"linf": "Linf", "l2": "L2"}


@register_attack
@dataclass
class TorchattacksSquare(LibrarySquare):
    """Square attack (Andriushchenko et al., 2020), torchattacks' version: score-based random search."""

    name = "torchattacks-square"
    backend = "torchattacks"
    norms = ("linf", "l2")
    description = "torchattacks Square attack: score-based random search (black-box), one sample at a time"

    def generate(self, ta, model, x, norm, eps):
        # torchattacks seeds its own global torch RNG with `seed`; the adapter restores it afterwards
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        attack = ta.Square(model, norm=TA_NORMS[norm], eps=eps, n_queries=self.max_queries, n_restarts=self.restarts,
                           p_init=self.p_init, loss="margin", seed=seed, verbose=self.verbose)
        return attack(x, labels_zero(x.shape[0], x.device))


@register_attack
@dataclass
class TorchattacksDeepFool(LibraryDeepFool):
    """DeepFool (Moosavi-Dezfooli et al., 2016), torchattacks' L2 version; success within eps.

    torchattacks calls the model on one image at a time, so this adapter runs per sample.
    """

    name = "torchattacks-deepfool"
    backend = "torchattacks"
    norms = ("l2",)
    per_sample = True
    description = "torchattacks DeepFool (L2): minimal-perturbation white-box attack, success within the budget"

    def generate(self, ta, model, x, norm, eps):
        attack = ta.DeepFool(model, steps=self.steps, overshoot=self.overshoot)
        return attack(x, labels_zero(x.shape[0], x.device))


@register_attack
@dataclass
class TorchattacksPGD(LibraryPGD):
    """torchattacks' PGD / PGDL2 (cross-entropy) for cross-checking the native one."""

    name = "torchattacks-pgd"
    backend = "torchattacks"
    norms = ("linf", "l2")
    description = "torchattacks projected gradient descent (white-box, cross-check of native pgd)"

    def generate(self, ta, model, x, norm, eps):
        cls = ta.PGD if norm == "linf" else ta.PGDL2
        attack = cls(model, eps=eps, alpha=self.step_size * eps, steps=self.steps, random_start=self.random_start)
        return attack(x, labels_zero(x.shape[0], x.device))
