"""Backbones from timm, sized per profile."""
from __future__ import annotations

import timm
from timm.models.resnet import BasicBlock, ResNet
from torch import nn


def resnet_backbone(profile: str) -> nn.Module:
    """Feature extractor without a classifier: a narrow 4-stage ResNet (tiny) or ResNet50 (paper)."""
    if profile == "paper":
        return timm.create_model("resnet50", pretrained=False, num_classes=0)
    return ResNet(
        block=BasicBlock,
        layers=(1, 1, 1, 1),
        channels=(16, 32, 64, 128),
        stem_width=16,
        num_classes=0,
    )
