"""`contrastive-triplet`: adversarial contrastive pre-training, then triplet-loss adversarial fine-tuning
(condition (c) of the FR method).

Stage 1 (RoCL-style, no labels): two augmented views of every image; PGD (Linf 8/255, step 2/255) perturbs
the first view to maximise its NT-Xent loss against the second; the network plus a projection head is then
trained with NT-Xent (temperature 0.5) over the three views, the adversarial view joining each image's
positive set. The projection head is discarded. Stage 2 fine-tunes the pre-trained weights with labels:
2a, a clean triplet warm-up (semi-hard mining, `facenet-baseline`'s loss and lr), then 2b, `triplet-adv`'s
recipe (clean + adversarial triplet loss, its lr) for a few epochs.

The warm-up is a departure from the method (a curriculum): at the tiny budget adversarial triplet training
straight from the contrastive weights collapses (every embedding the same, docs/zoo.md), as it does from
random weights; it does not from a discriminative start, which the warm-up provides.

With `label_fraction` > 0 (`contrastive-triplet-semi`) a fraction of the identities is labelled and stage 1
adds a supervised contrastive term whose anchors are the labelled images: every view of every image of the
same identity is a positive. Batches then keep a labelled identity's images together in groups of `k`, so
that a batch holds same-identity pairs. Stage 2 is the same in both (labels of the whole train split).
"""
from __future__ import annotations

import inspect
import time
from fractions import Fraction
from typing import Optional

import numpy as np
import torch
from torch import nn

from bench.config import epochs_value
from bench.data.sets import FaceSet
from bench.protocols import FRProtocol
from bench.errors import BadInputError
from models_zoo.adversarial import LINF_EPS, LINF_STEP, device_generator, pgd_maximise
from models_zoo.augment import ViewAugmentation
from models_zoo.facenet import EmbeddingNet, facenet
from models_zoo.losses import nt_xent_loss, supervised_contrastive_loss
from models_zoo.registry import get_variant, register_variant
from models_zoo.training import OPTIMIZER, LossParts, fit, specialised_recipe, train_triplet
from models_zoo.variants.triplet_adv import (CLEAN_WEIGHT, WARM_START_LR, attack_card, resolve_attack_steps,
                                             train_triplet_adv)

PROJECTION_DIM = 128
STAGE_SHARE = 32
"""Pre-training and adversarial fine-tuning each get 1/STAGE_SHARE of the epochs; the clean warm-up the rest."""
ZOO_STAGE_SHARE = 42
"""The variants' default `stage_share`: of the zoo's 21 epochs (4000 identities), 0.5 pre-training + 20 clean
warm-up + 0.5 adversarial fine-tuning, the steps of the former 2 + 80 + 2 epochs on 1000 identities."""
WARMUP_LR = 2e-3
"""Peak lr of the clean warm-up: `facenet-baseline`'s."""
FINETUNE_LR = WARM_START_LR
"""Peak lr of the adversarial fine-tuning: `triplet-adv`'s (it fine-tunes a discriminative network too)."""
CURRICULUM = ("departure from the method: stage 2 starts with clean triplet epochs (warm-up) before the clean + "
              "adversarial fine-tuning, because adversarial triplet training from the contrastive weights collapses "
              "at the tiny budget (docs/zoo.md)")


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


def pretrain_contrastive(learner: ContrastiveLearner, train: FaceSet, *, epochs: float, lr: float, batch: int, k: int,
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


def stage_epochs(epochs: float, pretrain_epochs: Optional[float] = None, warmup_epochs: Optional[float] = None,
                 finetune_epochs: Optional[float] = None, stage_share: Optional[float] = None) -> tuple[float, float, float]:
    """(pre-training, clean warm-up, adversarial fine-tuning) epochs out of `epochs`; any of them may be a
    fraction of an epoch (`fit` runs part of one).

    Unless given, pre-training and adversarial fine-tuning each get `epochs // STAGE_SHARE` (at least one),
    or with `stage_share` exactly `epochs / stage_share` (a fraction allowed: 21 epochs at a share of 42 give
    0.5 + 20 + 0.5), and the clean warm-up the rest (none when nothing is left), so `epochs=1` trains one
    epoch of pre-training and one of fine-tuning. Pre-training and fine-tuning need a positive length each.
    Whole lengths come back as ints, fractions as floats (`epochs_value`), as the model card records them.
    `finetune_epochs=0` (given explicitly) stops after the warm-up: the checkpoint that `init` fine-tunes from.
    """
    if stage_share is not None and not stage_share > 0:
        raise BadInputError(f"the stage share must be positive, got {stage_share}")
    share = max(1, int(epochs // STAGE_SHARE)) if stage_share is None else epochs / stage_share
    pretrain = share if pretrain_epochs is None else pretrain_epochs
    finetune = share if finetune_epochs is None else finetune_epochs
    if not (pretrain > 0 and (finetune > 0 or (finetune == 0 and finetune_epochs is not None))):
        raise BadInputError(f"pre-training and fine-tuning need a positive number of epochs each (pretrain {pretrain}, "
                            f"finetune {finetune}; --finetune-epochs 0 stops after the warm-up)")
    # the rest in exact arithmetic (21 - 0.1 - 0.1 is not 20.8 in floats), rounded once
    rest = float(Fraction(epochs) - Fraction(pretrain) - Fraction(finetune))
    warmup = max(0, rest) if warmup_epochs is None else warmup_epochs
    if warmup < 0:
        raise BadInputError(f"the clean warm-up cannot have a negative number of epochs ({warmup})")
    return epochs_value(pretrain), epochs_value(warmup), epochs_value(finetune)


def zoo_stage_epochs(variant: str, profile: str) -> tuple[float, float, float]:
    """The stages the zoo schedule of a contrastive-triplet variant trains at `profile`: its zoo epochs split by
    `stage_epochs` with its recipe's default `stage_share` (what `facebench zoo build` trains)."""
    spec = get_variant(variant)
    share = inspect.signature(spec.recipe).parameters["stage_share"].default
    return stage_epochs(spec.zoo_epochs[profile], stage_share=share)


def contrastive_triplet_recipe(model: EmbeddingNet, protocol: FRProtocol, *, profile: str, size: int, epochs: float,
                               device: torch.device, seed: int, progress: bool = True, label_fraction: float = 0.0,
                               pretrain_epochs: Optional[float] = None, warmup_epochs: Optional[float] = None,
                               finetune_epochs: Optional[float] = None, stage_share: Optional[float] = None,
                               lr: float = FINETUNE_LR,
                               warmup_lr: float = WARMUP_LR, pretrain_lr: float = 2e-3, batch: int = 64, p: int = 16,
                               k: int = 4, margin: float = 0.2, temperature: float = 0.5, supervised_weight: float = 1.0,
                               eps: float = LINF_EPS, step_size: float = LINF_STEP,
                               attack_steps: Optional[int] = None, clean_weight: float = CLEAN_WEIGHT,
                               init: Optional[str] = None) -> dict:
    """Adversarial contrastive pre-training (+ a supervised term on `label_fraction` of the identities),
    then a clean triplet warm-up, then `triplet-adv` fine-tuning.

    `epochs` is split by `stage_epochs`: 1/32 each (at least one) for pre-training and adversarial
    fine-tuning, the rest for the clean warm-up, or with `stage_share` exactly 1/`stage_share` each (a
    fraction of an epoch allowed); `pretrain_epochs`, `warmup_epochs` and `finetune_epochs` set a stage's
    epochs instead (fractions allowed). `attack_steps` (default 3 tiny, 7 paper) is the PGD length of stages
    1 and 2b; `warmup_lr` is the warm-up's peak lr (the baseline's), `lr` the adversarial fine-tuning's
    (`triplet-adv`'s).

    `finetune_epochs=0` stops after the warm-up; `init` (the .safetensors of such a run, with its card) skips
    stages 1 and 2a, loading their weights instead, and trains stage 2b only: a run of every stage at once and a
    run with `--finetune-epochs 0` followed by one with `--init` train the same network (the claims share the
    first two stages of a seed across fine-tuning lengths this way). The given stage epochs and label fraction
    must be those of `init`'s card, which the card of the fine-tuned network carries on (`stages_from`).
    """
    if not 0.0 <= label_fraction <= 1.0:
        raise BadInputError(f"--label-fraction must be in [0, 1], got {label_fraction}")
    steps = resolve_attack_steps(profile, attack_steps)
    if init is not None:
        return _finetune_from(model, protocol, init, profile=profile, size=size, epochs=epochs, device=device, seed=seed,
                              progress=progress, label_fraction=label_fraction, pretrain_epochs=pretrain_epochs,
                              warmup_epochs=warmup_epochs, finetune_epochs=finetune_epochs, stage_share=stage_share,
                              finetune=dict(lr=lr, p=p, k=k, margin=margin, eps=eps, step_size=step_size,
                                            attack_steps=steps, clean_weight=clean_weight))
    stage1, warmup, stage2 = stage_epochs(epochs, pretrain_epochs, warmup_epochs, finetune_epochs, stage_share)
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
    walls = {"pretrain": round(time.time() - start, 1)}
    info: dict = {
        "stage_epochs": {"pretrain": stage1, "warmup": warmup, "finetune": stage2},
        # the share, when it set a stage's length (not when every stage was given)
        **({"stage_share": stage_share} if stage_share is not None and None in (pretrain_epochs, finetune_epochs) else {}),
        **_pretrain_record(model, train, labelled, history, augment, label_fraction=label_fraction, lr=pretrain_lr, batch=batch, k=k,
                           temperature=temperature, supervised_weight=supervised_weight,
                           adversarial=attack_card(eps, step_size, steps, "NT-Xent of view 1 against view 2 (batch "
                                                   "negatives)", "view 1 of every image")),
    }
    pretrain_loss = info["pretrain_loss"]
    warmup_loss = f"triplet loss (semi-hard mining, margin {margin:g}) of the clean batch, no adversarial examples"
    if warmup:
        start = time.time()
        clean = train_triplet(model, protocol, profile=profile, size=size, epochs=warmup, device=device, seed=seed,
                              progress=progress, lr=warmup_lr, p=p, k=k, margin=margin)
        walls["warmup"] = round(time.time() - start, 1)
        info.update({"warmup_history": clean["loss_history"], "warmup_optimizer": clean["optimizer"],
                     "warmup_loss": warmup_loss})
    info["stage_wall_time_s"] = walls
    info["loss"] = "stage 1: " + pretrain_loss + ("; stage 2a (clean warm-up): " + warmup_loss if warmup else "")
    if not stage2:
        info["init"] = "as built (random)"
        info["loss"] += "; no adversarial fine-tuning (--finetune-epochs 0: a start for --init)"
        return info
    return _adversarial_finetuning(model, protocol, info, profile=profile, size=size, epochs=stage2, device=device,
                                   seed=seed, progress=progress, lr=lr, p=p, k=k, margin=margin, eps=eps,
                                   step_size=step_size, attack_steps=steps, clean_weight=clean_weight)


def _pretrain_record(model: EmbeddingNet, train: FaceSet, labelled: np.ndarray, history: dict, augment: ViewAugmentation,
                     *, label_fraction: float, lr: float, batch: int, k: int, temperature: float, supervised_weight: float,
                     adversarial: dict) -> dict:
    """What the model card says of stage 1."""
    loss = f"NT-Xent (T={temperature:g}) over view 1, view 2 and adversarial view 1 (all positives of each other)"
    if len(labelled):
        loss += (f" + {supervised_weight:g} * supervised contrastive (T={temperature:g}) anchored on the labelled "
                 "identities' images (same identity = positive)")
    width = model.head.out_features
    return {
        "curriculum": CURRICULUM,
        "label_fraction": label_fraction,
        "labelled_identities": int(len(labelled)),
        "identities": int(len(np.unique(train.identities))),
        "pretrain_history": history,
        "pretrain_loss": loss,
        "pretrain_optimizer": f"{OPTIMIZER} {lr}",
        "pretrain_batch": batch if not len(labelled) else f"{batch} (labelled identities' images in groups of {k})",
        "augmentations": augment.describe(),
        "projection_head": f"Linear({width}, {width}) - ReLU - Linear({width}, {PROJECTION_DIM}) on the unnormalised "
                           "embedding; discarded after pre-training",
        "pretrain_adversarial": adversarial,
    }


def _adversarial_finetuning(model: EmbeddingNet, protocol: FRProtocol, info: dict, *, profile: str, size: int,
                            epochs: float, device: torch.device, seed: int, progress: bool, **options) -> dict:
    """Stage 2b, `triplet-adv`'s training, on the network stages 1 and 2a left; completes the card's `info`."""
    warmup = info["stage_epochs"]["warmup"]
    start = time.time()
    finetune = train_triplet_adv(model, protocol, profile=profile, size=size, epochs=epochs, device=device, seed=seed,
                                 progress=progress, init=None, **options)
    before = info["loss"]
    info = {**info, **finetune, "stage_wall_time_s": {**info["stage_wall_time_s"], "finetune": round(time.time() - start, 1)}}
    info["init"] = "stage 1's weights (the projection head dropped)" + (" after the clean warm-up" if warmup else "")
    info["loss"] = before + "; stage 2" + ("b" if warmup else "") + ": " + finetune["loss"]
    return info


START_FIELDS = ("stage_epochs", "stage_share", "curriculum", "label_fraction", "labelled_identities", "identities",
                "pretrain_history", "pretrain_loss", "pretrain_optimizer", "pretrain_batch", "augmentations",
                "projection_head", "pretrain_adversarial", "warmup_history", "warmup_optimizer", "warmup_loss",
                "stage_wall_time_s", "loss")
"""What the card of a `--finetune-epochs 0` run says about stages 1 and 2a, carried on by the runs that `--init` from it."""


def _finetune_from(model: EmbeddingNet, protocol: FRProtocol, init: str, *, profile: str, size: int, epochs: float,
                   device: torch.device, seed: int, progress: bool, label_fraction: float,
                   pretrain_epochs: Optional[float], warmup_epochs: Optional[float], finetune_epochs: Optional[float],
                   stage_share: Optional[float], finetune: dict) -> dict:
    """Load `init` (a `--finetune-epochs 0` run of this recipe) into `model` and train stage 2b on it."""
    from pathlib import Path

    from models_zoo.checkpoint import card_path, load_checkpoint

    path = Path(init)
    if path.suffix != ".safetensors" or not card_path(path).is_file():
        raise BadInputError(f"--init {init}: the contrastive recipes start from their own stages 1 and 2a: a .safetensors "
                            "file with its card, trained with --finetune-epochs 0")
    card = load_checkpoint(model, path, profile=profile)
    before = card.get("training") or {}
    stages = before.get("stage_epochs") or {}
    if stages.get("finetune") != 0 or "pretrain_history" not in before:
        raise BadInputError(f"--init {init}: not a run of contrastive pre-training and warm-up alone (its card: "
                            f"{card.get('variant')!r}, stages {stages or 'none'}); train one with --finetune-epochs 0")
    for flag, given, found in (("--label-fraction", label_fraction, before.get("label_fraction")),
                               ("--pretrain-epochs", pretrain_epochs, stages["pretrain"]),
                               ("--warmup-epochs", warmup_epochs, stages["warmup"])):
        if given is not None and given != found:
            raise BadInputError(f"--init {init} was trained with {flag} {found}, not {given}")
    if card.get("seed") != seed:
        raise BadInputError(f"--init {init} was trained with --seed {card.get('seed')}, not {seed}: a seed's stages "
                            "go together")
    _, _, stage2 = stage_epochs(epochs, stages["pretrain"], stages["warmup"], finetune_epochs, stage_share)
    if not stage2:
        raise BadInputError(f"--init {init}: nothing to train (--finetune-epochs 0)")
    info = {key: before[key] for key in START_FIELDS if key in before}
    info["stage_epochs"] = {**stages, "finetune": stage2}
    info["loss"] = info["loss"].replace("; no adversarial fine-tuning (--finetune-epochs 0: a start for --init)", "")
    info = _adversarial_finetuning(model, protocol, info, profile=profile, size=size, epochs=stage2, device=device,
                                   seed=seed, progress=progress, **finetune)
    info["stages_from"] = {"init": path.name, "sha256": card["sha256"], "variant": card.get("variant"),
                           "wall_time_s": card.get("wall_time_s"), "dev": card.get("dev"),
                           "note": "stages 1 and 2a were trained by this run (their card), not again"}
    return info


train_contrastive_triplet = specialised_recipe(contrastive_triplet_recipe, "train_contrastive_triplet",
                                               fixed={"label_fraction": 0.0},
                                               defaults={"stage_share": ZOO_STAGE_SHARE})


@register_variant(
    "contrastive-triplet",
    task="fr",
    description="FaceNet: RoCL-style adversarial contrastive pre-training (NT-Xent, no labels), then a clean "
    "triplet warm-up and a few epochs of triplet-loss adversarial fine-tuning",
    input_size={"tiny": 64, "paper": 160},
    default_protocol="synth-fr",
    citation="Adversarial contrastive pre-training + triplet-loss adversarial fine-tuning for face recognition "
    "(facebench's FR seed method, condition (c); stage 1 after Kim et al. RoCL, NeurIPS 2020; bibliographic "
    "reference not recorded in the repository yet)",
    recipe=train_contrastive_triplet,
    zoo_epochs={"tiny": 21},  # zoo_stage_epochs: 0.5 pre-training + 20 clean warm-up + 0.5 adversarial fine-tuning
    labels={"pre-training": (), "clean warm-up": ("identity",), "adversarial fine-tuning": ("identity",)},
)
def contrastive_triplet(profile: str) -> EmbeddingNet:
    return facenet(profile)
