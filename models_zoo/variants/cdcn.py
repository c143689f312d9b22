"""`cdcn`: central difference convolutional network, a depth-only model (liveness = mean predicted depth)."""
from __future__ import annotations

import numpy as np
import torch

from bench.protocols import FASProtocol
from bench.evaluation import images_to_tensor
from models_zoo.cdc import CDCN, THETA, cdcn
from models_zoo.losses import known_maps_contrastive_depth_loss, map_loss
from models_zoo.registry import register_variant
from models_zoo.training import OPTIMIZER, LossParts, depth_side, downsample_maps, fit, shuffled_batches


@torch.no_grad()
def mean_depths(model: CDCN, images: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    """Mean predicted depth of each uint8 image (eval mode)."""
    model.eval()
    out = [model.depth_map(images_to_tensor(images[i : i + batch]).to(device)).mean(dim=(1, 2)).cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def train_cdcn(model: CDCN, protocol: FASProtocol, *, profile: str, size: int, epochs: float, device: torch.device,
               seed: int, progress: bool = True, lr: float = 2e-3, batch: int = 64, w_contrastive: float = 1.0) -> dict:
    """Depth MSE + contrastive depth loss against the pooled depth label (spoofs: zeros); then the logit's
    offset is set to the midpoint of the training split's live and spoof mean predicted depths."""
    train = protocol.frames("train", size)
    rng = np.random.default_rng(seed)
    side = depth_side(model, size, device)
    batches, steps = shuffled_batches(len(train), batch, rng)
    parts = LossParts(steps)

    def loss_of(m, x, idx, depth):
        pred = m.depth_map(x)
        terms = {"mse": map_loss(pred, depth), "contrastive": known_maps_contrastive_depth_loss(pred, depth)}
        parts.add(**terms)
        return terms["mse"] + w_contrastive * terms["contrastive"]

    history = fit(model, train.images, batches, loss_of, epochs=epochs, steps_per_epoch=steps, lr=lr, device=device,
                  rng=rng, progress=progress, maps=(downsample_maps(train.depth, side),))
    means = mean_depths(model, train.images, device)
    live_mean, spoof_mean = float(means[train.live].mean()), float(means[~train.live].mean())
    model.logit_offset.fill_((live_mean + spoof_mean) / 2)
    return {"loss_history": history, "loss_terms": parts.history(), "optimizer": f"{OPTIMIZER} {lr}", "batch": batch,
            "map_size": side, "theta": THETA, "loss": f"MSE(depth) + {w_contrastive:g} * contrastive depth loss",
            "logit": f"{float(model.logit_scale):g} * (mean depth - {float(model.logit_offset):.4f}); offset = midpoint "
                     f"of train live ({live_mean:.4f}) and spoof ({spoof_mean:.4f}) mean depths, scale fixed"}


@register_variant(
    "cdcn",
    task="fas",
    description="CDCN: central difference convolutions (theta 0.7) regressing a depth map; "
    "liveness = mean depth (MSE + contrastive depth loss)",
    input_size={"tiny": 64, "paper": 256},
    default_protocol="synth-ocim->o",
    citation="Yu et al. Searching Central Difference Convolutional Networks for Face Anti-Spoofing. CVPR 2020",
    recipe=train_cdcn,
    zoo_epochs={"tiny": 30},
    labels={"depth regression": ("depth",), "logit offset (live and spoof mean depths)": ("live",)},
)
def cdcn_variant(profile: str) -> CDCN:
    return cdcn(profile)

