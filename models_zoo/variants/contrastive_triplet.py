"""`contrastive-triplet`: adversarial contrastive pre-training, then triplet-loss adversarial fine-tuning
(condition (c) of the FR method).

Stage 1 (RoCL-style, no labels): two augmented views of every image; PGD (Linf 8/255, step 2/255) perturbs
the first view to maximise its NT-Xent loss against the second; the network plus a projection head is then
trained with NT-Xent (temperature 0.5) over the three views, the adversarial view joining each image's
positive set. The projection head is discarded. Stage 2 is `triplet-adv`'s recipe (clean + adversarial
triplet loss) for a few epochs, from the pre-trained weights.

With `label_fraction` > 0 (`contrastive-triplet-semi`) a fraction of the identities is labelled and stage 1
adds a supervised contrastive term whose anchors are the labelled images: every view of every image of the
same identity is a positive. Batches then keep a labelled identity's images together in groups of `k`, so
that a batch holds same-identity pairs. Fine-tuning is the same in both (labels of the whole train split).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch
from torch import nn

from bench.data.protocols import FaceSet, FRProtocol
from bench.errors import BadInputError
from models_zoo.adversarial import LINF_EPS, LINF_STEP, device_generator, pgd_maximise
from models_zoo.augment import ViewAugmentation
from models_zoo.facenet import EmbeddingNet, facenet
from models_zoo.losses import nt_xent_loss, supervised_contrastive_loss
from models_zoo.registry import register_variant
from models_zoo.training import OPTIMIZER, LossParts, fit, specialised_recipe
from models_zoo.variants.triplet_adv import CLEAN_WEIGHT, attack_card, resolve_attack_steps, train_triplet_adv

PROJECTION_DIM = 128


class ProjectionHead(nn.Module):
    """SimCLR's MLP head g: Linear - ReLU - Linear, on the embedding before its L2 normalisation."""

    def __init__(self, dim_in: int, dim_out: int = PROJECTION_DIM) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim_in, dim_in), nn.ReLU(inplace=True), nn.Linear(dim_in, dim_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ContrastiveLearner(nn.Module):
    """The embedding network with a projection head on top: what stage 1 trains (the head is dropped after)."""

    def __init__(self, model: EmbeddingNet, projection_dim: int = PROJECTION_DIM) -> None:
        super().__init__()
        self.model = model
        self.projector = ProjectionHead(model.head.out_features, projection_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.model.representation(x))


def labelled_identities(identities: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random `fraction` of the distinct identities (at least two when the fraction is positive)."""
    ids = np.unique(identities)
    if fraction <= 0:
        return ids[:0]
    n = min(len(ids), max(2, int(round(fraction * len(ids)))))
    return np.sort(rng.choice(ids, n, replace=False))


def grouped_batches(identities: np.ndarray, labelled: np.ndarray, batch: int, k: int, rng: np.random.Generator):
    """`batches(epoch)` for `fit`: every image once per epoch in shuffled order, the images of a labelled
    identity kept together in groups of `k` (so that a batch holds same-identity pairs); with nothing
    labelled, a plain permutation."""
    n = len(identities)
    steps = max(1, n // batch)
    is_labelled = np.isin(identities, labelled)
    singles = np.flatnonzero(~is_labelled)

    def batches(epoch: int):
        units = [singles[i : i + 1] for i in range(len(singles))]
        for ident in labelled:
            members = rng.permutation(np.flatnonzero(identities == ident))
            units += [members[i : i + k] for i in range(0, len(members), k)]
        order = np.concatenate([units[i] for i in rng.permutation(len(units))])
        return (order[s * batch : (s + 1) * batch] for s in range(steps))

    return batches, steps


def pretrain_contrastive(learner: ContrastiveLearner, train: FaceSet, *, epochs: int, lr: float, batch: int, k: int,
                         temperature: float, eps: float, step_size: float, attack_steps: int, labelled: np.ndarray,
                         supervised_weight: float, augment: ViewAugmentation, device: torch.device,
                         rng: np.random.Generator, generator: torch.Generator, progress: bool) -> dict[str, list[float]]:
    """Stage 1: adversarial NT-Xent over (view 1, view 2, adversarial view 1), plus the supervised contrastive
    term on the `labelled` identities' images. Trains `learner` (network + projection head) in place and
    returns the per-epoch means of each term."""
    identities = torch.from_numpy(train.identities).to(device)
    is_labelled = torch.from_numpy(np.isin(train.identities, labelled)).to(device)
    batches, steps = grouped_batches(train.identities, labelled, batch, k, rng)
    parts = LossParts(steps)

    def loss_of(m: ContrastiveLearner, x: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        v1, v2 = augment(x, generator), augment(x, generator)
        m.eval()
        with torch.no_grad():
            target = m(v2)
        v_adv = pgd_maximise(lambda xa: nt_xent_loss(m(xa), target, temperature=temperature), v1, eps=eps,
                             step_size=step_size, steps=attack_steps, generator=generator)
        m.train()
        z1, z2, za = m(torch.cat([v1, v2, v_adv])).chunk(3)
        instance = nt_xent_loss(z1, z2, za, temperature=temperature)
        with torch.no_grad():  # diagnostics: how far the adversarial view has drifted from its pair
            terms = {"clean_pair": nt_xent_loss(z1, z2, temperature=temperature),
                     "adv_pair": nt_xent_loss(za, z2, temperature=temperature)}
        loss = instance
        if len(labelled):
            rows = torch.from_numpy(np.asarray(idx)).to(device)
            lab = is_labelled[rows]
            # labelled images share their identity's label; every other image is its own class
            label = torch.where(lab, -1 - identities[rows], rows)
            supervised = supervised_contrastive_loss(torch.cat([z1, z2, za]), label.repeat(3), temperature,
                                                     anchors=lab.repeat(3))
            loss = instance + supervised_weight * supervised
            terms["supervised"] = supervised
        parts.add(loss=loss, instance=instance, **terms)
        return loss

    fit(learner, train.images, batches, loss_of, epochs=epochs, steps_per_epoch=steps, lr=lr, device=device, rng=rng,
        progress=progress)
    return parts.history()


def stage_epochs(epochs: int, pretrain_epochs: Optional[int] = None, finetune_epochs: Optional[int] = None) -> tuple[int, int]:
    """(pre-training, fine-tuning) epochs: fine-tuning half of `epochs` (rounded down) and pre-training the
    rest unless given, each at least one (so `epochs=1` trains one epoch of each)."""
    finetune = max(1, epochs // 2) if finetune_epochs is None else finetune_epochs
    pretrain = max(1, epochs - finetune) if pretrain_epochs is None else pretrain_epochs
    if pretrain < 1 or finetune < 1:
        raise BadInputError(f"both stages need at least one epoch (pretrain {pretrain}, finetune {finetune})")
    return pretrain, finetune


def contrastive_triplet_recipe(model: EmbeddingNet, protocol: FRProtocol, *, profile: str, size: int, epochs: int,
                               device: torch.device, seed: int, progress: bool = True, label_fraction: float = 0.0,
                               pretrain_epochs: Optional[int] = None, finetune_epochs: Optional[int] = None,
                               lr: float = 2e-3, pretrain_lr: float = 2e-3, batch: int = 64, p: int = 16, k: int = 4,
                               margin: float = 0.2, temperature: float = 0.5, supervised_weight: float = 1.0,
                               eps: float = LINF_EPS, step_size: float = LINF_STEP,
                               attack_steps: Optional[int] = None, clean_weight: float = CLEAN_WEIGHT) -> dict:
    """Adversarial contrastive pre-training (+ a supervised term on `label_fraction` of the identities),
    then `triplet-adv` fine-tuning.

    `epochs` is split between the stages: `finetune_epochs` (default half, at least one) and
    `pretrain_epochs` (default the rest, at least one). `attack_steps` (default 3 tiny, 7 paper) is the
    PGD length of both stages.
    """
    if not 0.0 <= label_fraction <= 1.0:
        raise BadInputError(f"--label-fraction must be in [0, 1], got {label_fraction}")
    steps = resolve_attack_steps(profile, attack_steps)
    stage1, stage2 = stage_epochs(epochs, pretrain_epochs, finetune_epochs)
    train = protocol.train_set(size)
    labelled = labelled_identities(train.identities, label_fraction, np.random.default_rng([seed, 2]))
    augment = ViewAugmentation()
    learner = ContrastiveLearner(model).to(device)
    start = time.time()
    history = pretrain_contrastive(learner, train, epochs=stage1, lr=pretrain_lr, batch=batch, k=k, temperature=temperature,
                                   eps=eps, step_size=step_size, attack_steps=steps, labelled=labelled,
                                   supervised_weight=supervised_weight, augment=augment, device=device,
                                   rng=np.random.default_rng([seed, 1]), generator=device_generator(device, seed + 1),
                                   progress=progress)
    pretrain_wall = time.time() - start
    pretrain_loss = f"NT-Xent (T={temperature:g}) over view 1, view 2 and adversarial view 1 (all positives of each other)"
    if len(labelled):
        pretrain_loss += (f" + {supervised_weight:g} * supervised contrastive (T={temperature:g}) anchored on the labelled "
                          "identities' images (same identity = positive)")
    info: dict = {
        "stage_epochs": {"pretrain": stage1, "finetune": stage2},
        "label_fraction": label_fraction,
        "labelled_identities": int(len(labelled)),
        "identities": int(len(np.unique(train.identities))),
        "pretrain_history": history,
        "pretrain_loss": pretrain_loss,
        "pretrain_optimizer": f"{OPTIMIZER} {pretrain_lr}",
        "pretrain_batch": batch if not len(labelled) else f"{batch} (labelled identities' images in groups of {k})",
        "augmentations": augment.describe(),
        "projection_head": f"Linear({model.head.out_features}, {model.head.out_features}) - ReLU - "
                           f"Linear({model.head.out_features}, {PROJECTION_DIM}) on the unnormalised embedding; "
                           "discarded after pre-training",
        "pretrain_adversarial": attack_card(eps, step_size, steps, "NT-Xent of view 1 against view 2 (batch negatives)",
                                            "view 1 of every image"),
    }
    start = time.time()
    finetune = train_triplet_adv(model, protocol, profile=profile, size=size, epochs=stage2, device=device, seed=seed,
                                 progress=progress, lr=lr, p=p, k=k, margin=margin, eps=eps, step_size=step_size,
                                 attack_steps=steps, clean_weight=clean_weight, init=None)
    info.update(finetune)
    info["stage_wall_time_s"] = {"pretrain": round(pretrain_wall, 1), "finetune": round(time.time() - start, 1)}
    info["loss"] = "stage 1: " + pretrain_loss + "; stage 2: " + finetune["loss"]
    return info


train_contrastive_triplet = specialised_recipe(contrastive_triplet_recipe, "train_contrastive_triplet",
                                               fixed={"label_fraction": 0.0})


@register_variant(
    "contrastive-triplet",
    task="fr",
    description="FaceNet: RoCL-style adversarial contrastive pre-training (NT-Xent, no labels), then a few "
    "epochs of triplet-loss adversarial fine-tuning",
    input_size={"tiny": 64, "paper": 160},
    default_protocol="synth-fr",
    citation="Adversarial contrastive pre-training + triplet-loss adversarial fine-tuning for face recognition "
    "(facebench's FR seed method, condition (c); stage 1 after Kim et al. RoCL, NeurIPS 2020; bibliographic "
    "reference not recorded in the repository yet)",
    recipe=train_contrastive_triplet,
    zoo_epochs={"tiny": 4},  # 2 pre-training + 2 fine-tuning
)
def contrastive_triplet(profile: str) -> EmbeddingNet:
    return facenet(profile)
