"""A face recognition model of your own, ready for `facebench run` (see docs/adding-a-model.md).

`build()` takes no arguments and returns an nn.Module that follows facebench's FR convention:
RGB images as floats in [0, 1], shape (N, 3, H, W), normalised inside forward, and L2-normalised
embeddings (N, D) out.

Run this file to write the model's weights as safetensors (here untrained; train yours first):

    python examples/my_fr_model.py my_fr.safetensors
"""
import sys

import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn


class MyFaceEmbedder(nn.Module):
    """A narrow timm ResNet-18 and a linear head: image in [0, 1] -> unit-length 64-d embedding."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.backbone = timm.create_model("resnet18", pretrained=False, num_classes=0, channels=(16, 32, 64, 128))
        self.head = nn.Linear(self.backbone.num_features, dim)
        # the normalisation your backbone was trained with; facebench always feeds [0, 1]
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone((x - self.mean) / self.std)
        return F.normalize(self.head(features), dim=1)


def build() -> nn.Module:
    """The factory `facebench run --model examples/my_fr_model.py:build` calls (with no arguments)."""
    return MyFaceEmbedder()


if __name__ == "__main__":
    torch.manual_seed(0)
    model = build()
    # ... train the model here ...
    save_file(model.state_dict(), sys.argv[1] if len(sys.argv) > 1 else "my_fr.safetensors")
