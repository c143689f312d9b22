"""Hand-built models whose behaviour under attack is known exactly."""
import torch
import torch.nn.functional as F
from torch import nn


class LinearEmbedder(nn.Module):
    """FR model: a fixed linear map of the flattened image, L2-normalised."""

    def __init__(self, in_features: int, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(dim, in_features, generator=g) / in_features**0.5, requires_grad=False)

    def forward(self, x):
        return F.normalize(x.flatten(1) @ self.weight.T, dim=1)


class LinearLiveness(nn.Module):
    """FAS model: liveness logit = w . x + b."""

    def __init__(self, w: torch.Tensor, b: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(w.flatten(), requires_grad=False)
        self.b = b

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b
