"""Losses of the zoo's training recipes."""
from __future__ import annotations

import torch


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
