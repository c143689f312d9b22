"""Central difference convolution and CDCN, a depth regressor made of it (liveness = mean depth)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.backbones import MaxPool2d
from models_zoo.pseudo_depth import to_signed


class CentralDifferenceConv2d(nn.Conv2d):
    """out = conv(x) - theta * (sum of the kernel's weights) * x at the kernel centre.

    Equivalently theta * (the kernel applied to neighbour - centre differences) + (1 - theta) * conv(x):
    theta = 0 is a plain convolution, theta = 1 a pure central-difference one (blind to constant
    images). Odd kernels with 'same' padding only, so that the centre of each output's window is the
    input pixel the 1x1 term reads.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 bias: bool = False, theta: float = 0.7) -> None:
        if not isinstance(kernel_size, int) or kernel_size % 2 != 1:
            raise ValueError(f"central difference convolution needs an odd kernel, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
        self.theta = theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.theta == 0:
            return super().forward(x)
        # the centre term is linear in x at the window's centre: fold it into the kernel (one conv, exact)
        k = self.kernel_size[0] // 2
        centre = torch.zeros_like(self.weight[:1, :1])
        centre[..., k, k] = 1.0
        weight = self.weight - self.theta * self.weight.sum(dim=(2, 3), keepdim=True) * centre
        return self._conv_forward(x, weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", theta={self.theta}"


def cdc_bn_relu(cin: int, cout: int, theta: float) -> nn.Sequential:
    return nn.Sequential(CentralDifferenceConv2d(cin, cout, theta=theta), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CDCFeatures(nn.Module):
    """CDC stem and three CDC blocks (3 convs + max-pool each, at 1/2, 1/4, 1/8 of the input), the three
    block outputs resized to 1/8 and concatenated (CDCN's multi-scale features)."""

    def __init__(self, stem: int, block: Sequence[int], theta: float) -> None:
        super().__init__()
        self.stem = cdc_bn_relu(3, stem, theta)
        blocks, cin = [], stem
        for _ in range(3):
            layers, c = [], cin
            for w in block:
                layers.append(cdc_bn_relu(c, w, theta))
                c = w
            blocks.append(nn.Sequential(*layers, MaxPool2d(3, stride=2, padding=1)))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        self.num_features = 3 * block[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(to_signed(x))
        outs = []
        for b in self.blocks:
            h = b(h)
            outs.append(h)
        side = outs[-1].shape[-2:]
        return torch.cat([F.interpolate(o, size=side, mode="bilinear", align_corners=False) for o in outs], dim=1)


class CDCN(nn.Module):
    """RGB in [0, 1] -> depth map (N, H/8, W/8) in [0, 1]; liveness logit = scale * (mean depth - offset).

    `logit_scale` is fixed (not learnt: no loss of the recipe reaches it); `logit_offset` is set by the
    recipe after training to the midpoint of the training split's live and spoof mean depths. Both are
    buffers, saved with the weights. A monotone map of the mean depth, so higher = live and the dev EER
    threshold is the same as on the mean depth itself.
    """

    def __init__(self, features: CDCFeatures, head: Sequence[int], theta: float, logit_scale: float = 10.0) -> None:
        super().__init__()
        self.backbone = features
        layers, c = [], features.num_features
        for w in head:
            layers.append(cdc_bn_relu(c, w, theta))
            c = w
        layers.append(CentralDifferenceConv2d(c, 1, theta=theta))
        self.head = nn.Sequential(*layers)
        self.register_buffer("logit_scale", torch.tensor(float(logit_scale)))
        self.register_buffer("logit_offset", torch.tensor(0.5))

    def depth_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.backbone(x))).squeeze(1)

    def logit_of_depth(self, depth: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * (depth.mean(dim=(1, 2)) - self.logit_offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit_of_depth(self.depth_map(x))


THETA = 0.7
CDCN_PROFILES = {
    # paper: CDCN's widths (64 stem, blocks 128-196-128, head 128-64); tiny: about a tenth (CPU-sized)
    "tiny": dict(stem=8, block=(12, 16, 12), head=(16, 8)),
    "paper": dict(stem=64, block=(128, 196, 128), head=(128, 64)),
}


def cdcn(profile: str) -> CDCN:
    p = CDCN_PROFILES[profile]
    return CDCN(CDCFeatures(p["stem"], p["block"], THETA), p["head"], THETA)
