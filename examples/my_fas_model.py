"""An anti-spoofing model of your own, ready for `facebench run --task fas` (see docs/adding-a-model.md).

`build()` returns an nn.Module that follows facebench's FAS convention: RGB images as floats in
[0, 1], shape (N, 3, H, W), normalised inside forward, and one liveness logit per image, shape (N,),
higher = live.
"""
import timm
import torch
from torch import nn


class MyLivenessNet(nn.Module):
    """A narrow timm ResNet-18 with a one-logit liveness head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = timm.create_model("resnet18", pretrained=False, num_classes=0, channels=(16, 32, 64, 128))
        self.head = nn.Linear(self.backbone.num_features, 1)
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone((x - self.mean) / self.std)).squeeze(1)  # (N, 1) -> (N,)


def build() -> nn.Module:
    """The factory `facebench run --model examples.my_fas_model:build --task fas` calls."""
    return MyLivenessNet()
