"""Input adaptation as part of the model under test: facebench's images (float RGB in [0, 1], NCHW, at the run's
image size) resized to a network's own input size and normalised as it expects, inside the forward that attacks
differentiate. Attack budgets therefore stay in facebench's [0, 1] image space at the run's size, whatever the
network takes. The convention is data (`bench.modelref.InputConvention`); ONNX models and the zoo's external
entries are wrapped in an `InputAdapter`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.modelref import InputConvention

RESIZE_MODE = "bilinear"  # antialiased when shrinking (the same as plain bilinear when enlarging)


def adapt_input(x: torch.Tensor, convention: InputConvention) -> torch.Tensor:
    """`x` (N, 3, H, W) in [0, 1], RGB, resized to the convention's size and normalised as the network expects."""
    size = convention.size
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode=RESIZE_MODE, align_corners=False, antialias=True)
    if convention.channels == "BGR":
        x = x.flip(1)
    mean = torch.tensor(convention.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(convention.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * convention.scale - mean) / std


class InputAdapter(nn.Module):
    """`net` behind its input convention: `forward(x)` = `net(adapt_input(x))`, with an FR network's embedding
    L2-normalised (`l2_normalise`; facebench scores FR by cosine similarity, which normalising does not change)."""

    def __init__(self, net: nn.Module, convention: InputConvention, l2_normalise: bool = False) -> None:
        super().__init__()
        self.net = net
        self.convention = convention
        self.l2_normalise = l2_normalise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(adapt_input(x, self.convention))
        return F.normalize(out, dim=1) if self.l2_normalise else out

    def extra_repr(self) -> str:
        return self.convention.describe() + (", L2-normalised output" if self.l2_normalise else "")


__all__ = ["InputAdapter", "adapt_input"]
