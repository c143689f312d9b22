"""Losses of the zoo's training recipes."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def triplet_semihard_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Triplet loss with online semi-hard mining (FaceNet) on L2-normalised embeddings.

    For every anchor-positive pair the negative is the closest one that is still farther than the
    positive (semi-hard); when no negative is, the hardest (closest) negative is used.
    Returns the mean over anchor-positive pairs; zero when every margin holds.
    """
    d = torch.cdist(embeddings, embeddings).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    if not pos_mask.any() or not neg_mask.any():
        return embeddings.sum() * 0.0
    a_idx, p_idx = pos_mask.nonzero(as_tuple=True)
    d_ap = d[a_idx, p_idx]
    d_an = d[a_idx]  # (P, N)
    big = torch.finfo(d.dtype).max
    neg = neg_mask[a_idx]
    semihard = neg & (d_an > d_ap[:, None])
    sh = torch.where(semihard, d_an, torch.full_like(d_an, big)).min(dim=1).values
    hardest = torch.where(neg, d_an, torch.full_like(d_an, big)).min(dim=1).values
    d_neg = torch.where(semihard.any(dim=1), sh, hardest)
    return torch.relu(d_ap - d_neg + margin).mean()


def _direction_kernels(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Eight fixed 3x3 kernels (8, 1, 3, 3): each is `neighbour - centre` for one of the 8 neighbours."""
    k = torch.zeros(8, 1, 3, 3, device=device, dtype=dtype)
    neighbours = [(r, c) for r in range(3) for c in range(3) if (r, c) != (1, 1)]
    for i, (r, c) in enumerate(neighbours):
        k[i, 0, r, c] = 1.0
        k[i, 0, 1, 1] = -1.0
    return k


def contrastive_depth_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CDCN's contrastive depth loss: MSE between the 8-direction local depth differences of two maps.

    `pred` and `target` are (N, H, W). Zero when the maps are equal (or differ by a constant, which has
    the same local differences); it penalises wrong depth *shape*, which the plain MSE term does not
    weigh separately.
    """
    k = _direction_kernels(pred.device, pred.dtype)
    dp = F.conv2d(pred.unsqueeze(1), k)
    dt = F.conv2d(target.unsqueeze(1), k)
    return F.mse_loss(dp, dt)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """GAN discriminator loss (BCE on patch logits): real pairs -> 1, generated pairs -> 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: the discriminator should call the generated pairs real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def map_loss(pred: torch.Tensor, target: torch.Tensor, p: int = 2) -> torch.Tensor:
    """Mean squared (p=2) or absolute (p=1) error of label maps, ignoring NaN labels (unknown depth).

    Zero (with a gradient path) when no label pixel is known.
    """
    known = ~torch.isnan(target)
    diff = (pred - torch.nan_to_num(target)).abs()
    err = diff.pow(2) if p == 2 else diff
    return (err * known).sum() / known.sum().clamp(min=1)


def known_maps_contrastive_depth_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`contrastive_depth_loss` over the samples whose label map is fully known (no NaN)."""
    rows = ~torch.isnan(target).flatten(1).any(dim=1)
    if not rows.any():
        return pred.sum() * 0.0
    return contrastive_depth_loss(pred[rows], target[rows])
