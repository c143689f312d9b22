"""Binary liveness networks (FAS): RGB in [0, 1] -> liveness logit (N,), higher = live."""
from __future__ import annotations

import torch
from torch import nn

from models_zoo.backbones import resnet_backbone
from models_zoo.facenet import FACE_MEAN, FACE_STD


class LivenessNet(nn.Module):
    """A backbone with a linear liveness head; normalises its input inside."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, 1)
        self.register_buffer("mean", torch.tensor(FACE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(FACE_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone((x - self.mean) / self.std)).squeeze(1)


def liveness_resnet(profile: str) -> LivenessNet:
    return LivenessNet(resnet_backbone(profile))
