"""The multi-loss anti-spoofing baseline (AENet kind): one ResNet-18-class backbone, five heads."""
from __future__ import annotations

import timm
import torch
from timm.layers import ConvNormAct
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from models_zoo.backbones import fast_pooling
from models_zoo.pseudo_depth import to_signed

SPOOF_TYPES = ("live", "print", "replay")
"""Classes of the spoof-type head (FASSet.species); any other species is left out of that loss."""
ILLUMINATIONS = 4
"""Classes of the illumination head (FASSet.illumination; -1 = unknown, left out of that loss)."""


class MapDecoder(nn.Module):
    """Backbone feature map (stride 32) -> a [0, 1] map (N, H, W) at stride 8: 1x1 reduce, two x2 upsamplings."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            ConvNormAct(in_channels, width, 1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            ConvNormAct(width, width // 2, 3),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(width // 2, 1, 3, padding=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(features)).squeeze(1)


class MultiLossNet(nn.Module):
    """Heads: liveness logit (the forward), spoof type (3), illumination (4), depth map, reflection map."""

    def __init__(self, backbone: ResNet, map_width: int) -> None:
        super().__init__()
        self.backbone = backbone
        c = backbone.num_features
        self.live = nn.Linear(c, 1)
        self.spoof_type = nn.Linear(c, len(SPOOF_TYPES))
        self.illumination = nn.Linear(c, ILLUMINATIONS)
        self.depth = MapDecoder(c, map_width)
        self.reflection = MapDecoder(c, map_width)

    def outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head's output on RGB in [0, 1] (the training view of the network)."""
        fmap = self.backbone.forward_features(to_signed(x))
        pooled = self.backbone.forward_head(fmap)
        return {
            "live": self.live(pooled).squeeze(1),
            "spoof_type": self.spoof_type(pooled),
            "illumination": self.illumination(pooled),
            "depth": self.depth(fmap),
            "reflection": self.reflection(fmap),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.live(self.backbone.forward_head(self.backbone.forward_features(to_signed(x)))).squeeze(1)

    def depth_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.depth(self.backbone.forward_features(to_signed(x)))


def multiloss_backbone(profile: str) -> ResNet:
    """timm resnet18 (paper); a narrow ResNet-18 layout (2-2-2-2 basic blocks, 16-128 channels) at tiny."""
    if profile == "paper":
        return fast_pooling(timm.create_model("resnet18", pretrained=False, num_classes=0))
    return fast_pooling(ResNet(block=BasicBlock, layers=(2, 2, 2, 2), channels=(16, 32, 64, 128), stem_width=16,
                               num_classes=0))


def multiloss_net(profile: str) -> MultiLossNet:
    return MultiLossNet(multiloss_backbone(profile), map_width=64 if profile == "paper" else 32)
