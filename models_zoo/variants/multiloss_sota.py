"""`multiloss-sota`: the auxiliary-everything baseline (AENet kind) — ResNet-18 with five supervised heads."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.protocols import FASProtocol
from models_zoo.losses import map_loss
from models_zoo.multiloss import SPOOF_TYPES, MultiLossNet, multiloss_net
from models_zoo.registry import register_variant
from models_zoo.training import (OPTIMIZER, LossParts, depth_side, downsample_maps, fit, live_pos_weight,
                                 shuffled_batches)

DEFAULT_WEIGHTS = {"live": 1.0, "spoof_type": 1.0, "illumination": 0.5, "depth": 5.0, "reflection": 5.0}
"""Loss weights (not tuned): classification terms near 1; the map MSEs, an order of magnitude smaller
at the start of training, scaled up so that their gradients are not negligible beside them."""


def spoof_type_labels(species: np.ndarray) -> torch.Tensor:
    """FASSet.species -> class index of the spoof-type head; -1 (left out of the loss) for other species."""
    index = {s: i for i, s in enumerate(SPOOF_TYPES)}
    return torch.tensor([index.get(str(s), -1) for s in species], dtype=torch.long)


def train_multiloss(model: MultiLossNet, protocol: FASProtocol, *, profile: str, size: int, epochs: float,
                    device: torch.device, seed: int, progress: bool = True, lr: float = 2e-3, batch: int = 64,
                    w_live: float = DEFAULT_WEIGHTS["live"], w_spoof_type: float = DEFAULT_WEIGHTS["spoof_type"],
                    w_illumination: float = DEFAULT_WEIGHTS["illumination"], w_depth: float = DEFAULT_WEIGHTS["depth"],
                    w_reflection: float = DEFAULT_WEIGHTS["reflection"]) -> dict:
    """Weighted sum: BCE live (classes balanced) + CE spoof type + CE illumination + MSE depth + MSE reflection.

    Depth and reflection labels are area-pooled to the decoders' output size; unknown labels (NaN maps,
    illumination -1, species outside live / print / replay) are left out of their terms.
    """
    weights = {"live": w_live, "spoof_type": w_spoof_type, "illumination": w_illumination, "depth": w_depth,
               "reflection": w_reflection}
    train = protocol.frames("train", size)
    rng = np.random.default_rng(seed)
    side = depth_side(model, size, device)
    live = torch.from_numpy(train.live.astype(np.float32))
    kinds = spoof_type_labels(train.species)
    illumination = torch.from_numpy(np.asarray(train.illumination, dtype=np.int64))
    pos_weight = live_pos_weight(train.live).to(device)
    batches, steps = shuffled_batches(len(train), batch, rng)
    parts = LossParts(steps)

    def loss_of(m, x, idx, depth, reflection):
        out = m.outputs(x)
        terms = {
            "live": F.binary_cross_entropy_with_logits(out["live"], live[idx].to(device), pos_weight=pos_weight),
            "spoof_type": _ce(out["spoof_type"], kinds[idx].to(device)),
            "illumination": _ce(out["illumination"], illumination[idx].to(device)),
            "depth": map_loss(out["depth"], depth),
            "reflection": map_loss(out["reflection"], reflection),
        }
        parts.add(**terms)
        return sum(weights[k] * v for k, v in terms.items())

    history = fit(model, train.images, batches, loss_of, epochs=epochs, steps_per_epoch=steps, lr=lr, device=device,
                  rng=rng, progress=progress, maps=(downsample_maps(train.depth, side), downsample_maps(train.reflection, side)))
    return {"loss_history": history, "loss_terms": parts.history(), "loss_weights": weights, "optimizer": f"{OPTIMIZER} {lr}",
            "batch": batch, "map_size": side,
            "loss": "weighted sum: BCE live + CE spoof type + CE illumination + MSE depth + MSE reflection"}


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the labelled rows (label -1 = unknown); zero when none is labelled."""
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=-1)


@register_variant(
    "multiloss-sota",
    task="fas",
    description="ResNet-18 with live/spoof, spoof-type, illumination, depth-map and reflection-map heads "
    "(weighted multi-task loss, AENet-style)",
    input_size={"tiny": 64, "paper": 256},
    default_protocol="synth-ocim->o",
    citation="Zhang et al. CelebA-Spoof: Large-Scale Face Anti-Spoofing Dataset with "
    "Rich Annotations. ECCV 2020 (AENet)",
    recipe=train_multiloss,
    zoo_epochs={"tiny": 30},
    labels={"training": ("live", "spoof-type", "illumination", "depth", "reflection")},
)
def multiloss_sota(profile: str) -> MultiLossNet:
    return multiloss_net(profile)
