"""`triplet-adv`: FaceNet trained with the triplet loss on adversarial anchors (condition (b) of the FR method).

Every step mines the batch's semi-hard triplets on the clean images (eval mode), crafts a PGD perturbation
(Linf 8/255, step 2/255, random start) of the whole P x K batch that maximises the triplet loss of those
triplets, and updates the network on the same triplets of the perturbed batch: the loss the attack raises
is the one the update lowers. In a P x K batch every image is an anchor (and the positive or negative of
others), so the whole batch is perturbed. The triplets stay fixed during the attack because re-mining at
every step undoes it (see `semihard_triplets`).

Two departures from the method, both because the tiny network collapses without them (docs/zoo.md): the
update mixes the clean batch's loss in (`clean_weight`, default 0.5, Goodfellow et al.'s mixture), and the
zoo variant is adversarial fine-tuning of `facenet-baseline`'s weights (`init`) rather than training from
random weights.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from bench.protocols import FRProtocol
from bench.errors import BadInputError
from models_zoo.adversarial import LINF_EPS, LINF_STEP, device_generator, pgd_maximise
from models_zoo.facenet import EmbeddingNet, facenet
from models_zoo.losses import semihard_triplets, triplet_margin_loss
from models_zoo.registry import register_variant
from models_zoo.training import OPTIMIZER, LossParts, fit, pk_batches, pk_steps, specialised_recipe, warm_start

ATTACK_STEPS = {"tiny": 3, "paper": 7}
CLEAN_WEIGHT = 0.5
"""Weight of the clean batch's triplet loss. Adversarial anchors alone (0) collapse the tiny network: the
loss falls to the margin with every embedding the same (docs/zoo.md)."""
WARM_START = "facenet-baseline"
WARM_START_LR = 5e-4
"""PGD steps while training: the method's 7 at paper scale, 3 at tiny to keep the CPU cost sane."""


def attack_card(eps: float, step_size: float, steps: int, maximises: str, perturbed: str) -> dict:
    """How a recipe's training-time attack was configured (goes into the model card)."""
    return {"attack": "PGD", "norm": "linf", "eps": f"{eps * 255:g}/255", "step_size": f"{step_size * 255:g}/255",
            "steps": steps, "random_start": True, "maximises": maximises, "perturbed": perturbed,
            "model_mode_while_crafting": "eval (BatchNorm running statistics, not updated)"}


def resolve_attack_steps(profile: str, attack_steps: Optional[int]) -> int:
    steps = ATTACK_STEPS[profile] if attack_steps is None else attack_steps
    if steps < 1:
        raise BadInputError(f"--attack-steps must be at least 1, got {steps}")
    return steps


def adversarial_triplet_loss(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, *, margin: float,
                             eps: float, step_size: float, steps: int, generator: Optional[torch.Generator],
                             parts: Optional[LossParts] = None, clean_weight: float = 0.0) -> torch.Tensor:
    """The triplet loss of the batch perturbed by PGD to maximise it, on the semi-hard triplets mined on the
    clean batch. Mining and crafting run in eval mode; the returned loss is computed in whatever mode the
    model was in (train mode in a recipe). `parts` records the clean (eval) and adversarial loss."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        clean = model(x)
    triplets = semihard_triplets(clean, labels)
    x_adv = pgd_maximise(lambda xa: triplet_margin_loss(model(xa), triplets, margin), x, eps=eps, step_size=step_size,
                         steps=steps, generator=generator)
    model.train(was_training)
    if clean_weight > 0:
        emb_clean, emb_adv = model(torch.cat([x, x_adv])).chunk(2)
        adversarial = triplet_margin_loss(emb_adv, triplets, margin)
        loss = clean_weight * triplet_margin_loss(emb_clean, triplets, margin) + (1 - clean_weight) * adversarial
    else:
        loss = adversarial = triplet_margin_loss(model(x_adv), triplets, margin)
    if parts is not None:
        parts.add(clean=triplet_margin_loss(clean, triplets, margin), adversarial=adversarial)
    return loss


def train_triplet_adv(model: EmbeddingNet, protocol: FRProtocol, *, profile: str, size: int, epochs: float,
                      device: torch.device, seed: int, progress: bool = True, lr: float = 2e-3, p: int = 16, k: int = 4,
                      margin: float = 0.2, eps: float = LINF_EPS, step_size: float = LINF_STEP,
                      attack_steps: Optional[int] = None, clean_weight: float = CLEAN_WEIGHT,
                      init: Optional[str] = None) -> dict:
    """Triplet loss (semi-hard mining, P x K batches, as `train_triplet`) on PGD-perturbed batches, mixed with
    the clean batch's loss by `clean_weight` (0: adversarial only), starting from the weights `init` names
    (a zoo variant or a .safetensors path; None: as built)."""
    steps = resolve_attack_steps(profile, attack_steps)
    if not 0.0 <= clean_weight < 1.0:
        raise BadInputError(f"--clean-weight must be in [0, 1), got {clean_weight}")
    started_from = warm_start(model, init, profile)
    train = protocol.train_set(size)
    rng = np.random.default_rng(seed)
    generator = device_generator(device, seed)
    labels = torch.from_numpy(train.identities)
    steps_per_epoch = pk_steps(train.identities, p)
    parts = LossParts(steps_per_epoch)
    history = fit(
        model, train.images, lambda epoch: pk_batches(train.identities, p, k, rng),
        lambda m, x, idx: adversarial_triplet_loss(m, x, labels[idx].to(device), margin=margin, eps=eps,
                                                   step_size=step_size, steps=steps, generator=generator, parts=parts,
                                                   clean_weight=clean_weight),
        epochs=epochs, steps_per_epoch=steps_per_epoch, lr=lr, device=device, rng=rng, progress=progress,
    )
    loss = "triplet loss of the PGD-perturbed batch, on the semi-hard triplets mined on the clean batch"
    if clean_weight > 0:
        loss = f"{clean_weight:g} * clean + {1 - clean_weight:g} * adversarial " + loss + " (both halves in one train-mode pass)"
    return {"loss_history": history, "loss_terms": parts.history(), "optimizer": f"{OPTIMIZER} {lr}",
            "batch": f"P={p} x K={k}", "margin": margin, "clean_weight": clean_weight,
            "init": started_from or "as built (random)",
            "loss": loss,
            "adversarial": attack_card(eps, step_size, steps, "the triplet loss of the semi-hard triplets mined on the "
                                       "clean batch (fixed during the attack)",
                                       "the whole P x K batch (every image is an anchor)")}


@register_variant(
    "triplet-adv",
    task="fr",
    description="FaceNet adversarially trained: triplet loss (semi-hard) on PGD anchors (Linf 8/255) that "
    "maximise it",
    input_size={"tiny": 64, "paper": 160},
    default_protocol="synth-fr",
    citation="Schroff et al. FaceNet (CVPR 2015) + Madry et al. PGD adversarial training (ICLR 2018): condition (b) "
    "of facebench's FR seed method (bibliographic reference not recorded in the repository yet)",
    recipe=specialised_recipe(train_triplet_adv, "train_triplet_adv",
                              defaults={"init": WARM_START, "lr": WARM_START_LR}),
    zoo_epochs={"tiny": 16},
    labels={"adversarial fine-tuning (from facenet-baseline, trained on identities)": ("identity",)},
)
def triplet_adv(profile: str) -> EmbeddingNet:
    return facenet(profile)
