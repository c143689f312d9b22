"""FaceNet-style embedding networks (FR variants)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.backbones import resnet_backbone

FACE_MEAN = (0.5, 0.5, 0.5)
FACE_STD = (0.5, 0.5, 0.5)


class EmbeddingNet(nn.Module):
    """RGB in [0, 1] (normalised inside) -> L2-normalised embedding (N, D)."""

    def __init__(self, backbone: nn.Module, dim: int = 128) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, dim)
        self.register_buffer("mean", torch.tensor(FACE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(FACE_STD).view(1, 3, 1, 1), persistent=False)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding before L2 normalisation (what a contrastive projection head builds on)."""
        return self.head(self.backbone((x - self.mean) / self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.representation(x), dim=1)


def facenet(profile: str) -> EmbeddingNet:
    return EmbeddingNet(resnet_backbone(profile), dim=128 if profile == "tiny" else 512)
