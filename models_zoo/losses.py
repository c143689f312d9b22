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


@torch.no_grad()
def semihard_triplets(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (anchor, positive, negative) index triplets that `triplet_semihard_loss` mines: every anchor-positive
    pair with its semi-hard negative (the closest one farther than the positive), else its hardest one.

    Fixing them lets an attack ascend one smooth loss: re-mined at every step, a negative the attack pulls
    closer stops being semi-hard and is swapped for a farther one, which undoes the step.
    """
    d = torch.cdist(embeddings, embeddings).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask, neg_mask = same & ~eye, ~same
    a_idx, p_idx = pos_mask.nonzero(as_tuple=True)
    if not neg_mask.any():
        a_idx = p_idx = a_idx[:0]
    d_an = d[a_idx]
    big = torch.finfo(d.dtype).max
    neg = neg_mask[a_idx]
    semihard = neg & (d_an > d[a_idx, p_idx][:, None])
    sh = torch.where(semihard, d_an, torch.full_like(d_an, big)).min(dim=1).indices
    hardest = torch.where(neg, d_an, torch.full_like(d_an, big)).min(dim=1).indices
    return a_idx, p_idx, torch.where(semihard.any(dim=1), sh, hardest)


def triplet_margin_loss(embeddings: torch.Tensor, triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                        margin: float = 0.2) -> torch.Tensor:
    """Mean of relu(d(a, p)^2 - d(a, n)^2 + margin) over given index triplets (zero when there are none)."""
    a, p, n = triplets
    if a.numel() == 0:
        return embeddings.sum() * 0.0
    d_ap = (embeddings[a] - embeddings[p]).pow(2).sum(dim=1)
    d_an = (embeddings[a] - embeddings[n]).pow(2).sum(dim=1)
    return torch.relu(d_ap - d_an + margin).mean()


def supervised_contrastive_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.5,
                                anchors: torch.Tensor | None = None) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, the L_out form) on rows `z` (L2-normalised here).

    Every row with the same label is a positive of the anchor, every other row a negative; the anchor's
    loss is the mean over its positives of -log softmax(cos / T) over all rows but itself. The mean runs
    over the anchors (all rows, or the boolean mask `anchors`) that have at least one positive; zero
    (with a gradient path) when none has.
    """
    z = F.normalize(z, dim=1)
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    valid = pos.any(dim=1) if anchors is None else pos.any(dim=1) & anchors
    if not valid.any():
        return z.sum() * 0.0
    per_anchor = -log_prob.masked_fill(~pos, 0.0).sum(dim=1) / pos.sum(dim=1).clamp(min=1)
    return per_anchor[valid].mean()


def nt_xent_loss(view_a: torch.Tensor, view_b: torch.Tensor, *extra_views: torch.Tensor,
                 temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (SimCLR) over views of the same N instances: row i of every view is a positive of row i of
    the others, all other rows are negatives. Two views give SimCLR's loss exactly; extra views (e.g. an
    adversarial one, RoCL) join each instance's positive set."""
    views = (view_a, view_b) + extra_views
    instance = torch.arange(view_a.shape[0], device=view_a.device).repeat(len(views))
    return supervised_contrastive_loss(torch.cat(views), instance, temperature)


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
