"""`depth-gan-spoof`: adversarial pseudo-depth generation as backbone pre-training, then a binary classifier.

Stage 1 trains a small U-Net generator to map RGB to the pseudo-depth label (live: rendered depth,
spoof: zeros) with L1 (x100) plus, in `gan` mode, the loss of a PatchGAN discriminator on
(RGB, depth) pairs. Stage 2 drops the discriminator and fine-tunes generator + MLP head with BCE on
live / spoof labels only. `pretrain` selects the ablation: `none` (stage 2 from scratch), `l1`
(stage 1 without the discriminator), `gan` (the method).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from bench.progress import bar as progress_bar

from bench.config import epochs_value
from bench.data.sets import FASSet
from bench.protocols import FASProtocol
from bench.errors import BadInputError
from models_zoo.losses import discriminator_loss, generator_adversarial_loss, map_loss
from models_zoo.pseudo_depth import DISCRIMINATOR_WIDTHS, PatchDiscriminator, PseudoDepthLivenessNet, pseudo_depth_net
from models_zoo.registry import register_variant
from models_zoo.training import (LossParts, autocast, depth_side, downsample_maps, flipped_batch, mixed_precision,
                                 shuffled_batches, train_binary_fas)

PRETRAIN_MODES = ("none", "l1", "gan")


def pretrain_pseudo_depth(generator: torch.nn.Module, train: FASSet, *, epochs: int, discriminator: Optional[torch.nn.Module],
                          lr: float, batch: int, l1_weight: float, device: torch.device, rng: np.random.Generator,
                          progress: bool) -> dict[str, list[float]]:
    """Stage 1: `l1_weight` * L1 to the pseudo-depth label, plus the adversarial loss when a discriminator
    is given (then alternating D and G steps, each with its own Adam). Returns per-epoch loss means."""
    side = depth_side(generator, train.images.shape[1], device)
    depth = downsample_maps(train.depth, side)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999)) if discriminator is not None else None
    batches, steps = shuffled_batches(len(train), batch, rng)
    parts = LossParts(steps)
    amp = mixed_precision(device)
    bar = progress_bar(total=epochs * steps, show=progress, desc="pretrain", unit="step")
    for epoch in range(epochs):
        generator.train()
        for idx in batches(epoch):
            x, (d,) = flipped_batch(train.images, idx, (depth,), device, rng)
            with autocast(device, amp):
                fake = generator(x).float()
            terms = {}
            known = ~torch.isnan(d).flatten(1).any(dim=1)  # frames of unknown depth: no real pair to show D
            if discriminator is not None and known.any():
                with autocast(device, amp):
                    loss_d = discriminator_loss(discriminator(x[known], d[known]),
                                                discriminator(x[known], fake[known].detach())).float()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                with autocast(device, amp):
                    terms.update(d=loss_d, adv=generator_adversarial_loss(discriminator(x, fake)).float())
            terms["l1"] = map_loss(fake, d, p=1)
            loss_g = l1_weight * terms["l1"] + terms.get("adv", 0.0)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            parts.add(g=loss_g, **terms)
            bar.update(1)
            bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", l1=f"{float(terms['l1'].detach()):.4f}")
    bar.close()
    generator.eval()
    return parts.history()


def train_depth_gan_spoof(model: PseudoDepthLivenessNet, protocol: FASProtocol, *, profile: str, size: int, epochs: float,
                          device: torch.device, seed: int, progress: bool = True, pretrain: str = "gan",
                          pretrain_epochs: Optional[float] = None, lr: float = 2e-3, pretrain_lr: float = 1e-3,
                          batch: int = 64, l1_weight: float = 100.0) -> dict:
    """Pseudo-depth pre-training (`pretrain`: none / l1 / gan), then BCE fine-tuning of the whole network.

    `epochs` is split between the stages: `pretrain_epochs` (default half, at least one) and the rest
    (at least one; a fraction allowed) for fine-tuning; with `pretrain="none"` every epoch is fine-tuning.
    Pre-training runs whole epochs only.
    """
    if pretrain not in PRETRAIN_MODES:
        raise BadInputError(f"unknown --pretrain {pretrain!r} (known: {', '.join(PRETRAIN_MODES)})")
    stage1 = 0 if pretrain == "none" else epochs // 2 if pretrain_epochs is None else pretrain_epochs
    if not float(stage1).is_integer():  # its own loop (alternating G and D steps), unlike fine-tuning's `fit`
        raise BadInputError(f"depth-gan-spoof's pre-training runs whole epochs (--pretrain-epochs {stage1:g})")
    stage1 = 0 if pretrain == "none" else max(1, int(stage1))
    stage2 = epochs_value(max(1, epochs - stage1))
    info: dict = {"pretrain": pretrain, "stage_epochs": {"pretrain": stage1, "finetune": stage2}}
    if stage1:
        train = protocol.frames("train", size)
        discriminator = PatchDiscriminator(DISCRIMINATOR_WIDTHS[profile]).to(device) if pretrain == "gan" else None
        history = pretrain_pseudo_depth(model.backbone, train, epochs=stage1, discriminator=discriminator, lr=pretrain_lr,
                                        batch=batch, l1_weight=l1_weight, device=device,
                                        rng=np.random.default_rng([seed, 1]), progress=progress)
        info["pretrain_history"] = history
        info["pretrain_optimizer"] = f"Adam(0.5, 0.999) {pretrain_lr}" + (" for G and D" if discriminator is not None else "")
        info["pretrain_loss"] = f"{l1_weight:g} * L1(depth)" + (" + non-saturating GAN (PatchGAN D, spectral norm)"
                                                                 if discriminator is not None else "")
    finetune = train_binary_fas(model, protocol, profile=profile, size=size, epochs=stage2, device=device, seed=seed,
                                progress=progress, lr=lr, batch=batch)
    info.update(finetune)
    info["loss"] = "BCE (fine-tuning, binary labels only)"
    return info


@register_variant(
    "depth-gan-spoof",
    task="fas",
    description="small U-Net pseudo-depth generator pre-trained in a GAN (PatchGAN D on RGB+depth), "
    "then a binary live/spoof classifier on it",
    input_size={"tiny": 64, "paper": 256},
    default_protocol="synth-ocim->o",
    citation="Adversarial pseudo-depth generation as backbone pre-training for face anti-spoofing "
    "(facebench's FAS seed method; bibliographic reference not recorded in the repository yet)",
    recipe=train_depth_gan_spoof,
    zoo_epochs={"tiny": 30},
    labels={"pre-training (skipped with --pretrain none)": ("depth",), "fine-tuning": ("live",)},
)
def depth_gan_spoof(profile: str) -> PseudoDepthLivenessNet:
    return pseudo_depth_net(profile)
