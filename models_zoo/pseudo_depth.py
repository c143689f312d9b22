"""Pseudo-depth generation networks: a small U-Net generator, a PatchGAN discriminator on (RGB, depth)
pairs, and the liveness classifier that reuses the generator as its backbone."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]: the normalisation of every network in this module (mean 0.5, std 0.5)."""
    return x * 2 - 1


class UNetDepthGenerator(nn.Module):
    """RGB in [0, 1] -> pseudo-depth (N, H, W) in [0, 1] at 1 / 2**`depth_level` of the input size.

    Encoder: one stride-2 stage per entry of `widths` (stage i at 1 / 2**(i+1) of the input).
    Decoder: from the bottleneck, x2 bilinear upsampling steps back to the depth resolution, each
    concatenating the encoder stage of that resolution (the U-Net skip), then a 1x1 conv and a sigmoid.
    """

    def __init__(self, widths: Sequence[int], decoder_widths: Sequence[int], depth_level: int) -> None:
        super().__init__()
        if len(decoder_widths) != len(widths) - depth_level:
            raise ValueError(f"{len(widths)} encoder stages and depth at level {depth_level} need "
                             f"{len(widths) - depth_level} decoder widths, got {len(decoder_widths)}")
        self.depth_level = depth_level
        cin, stages = 3, []
        for i, w in enumerate(widths):
            layers = [ConvNormAct(cin, w, 3, stride=2)]
            if i < 2:  # a second conv where the maps are large and the channels few (cheap in parameters)
                layers.append(ConvNormAct(w, w, 3))
            stages.append(nn.Sequential(*layers))
            cin = w
        self.encoder = nn.ModuleList(stages)
        ups = []
        for j, w in enumerate(decoder_widths):
            skip = widths[len(widths) - 2 - j]
            ups.append(ConvNormAct(cin + skip, w, 3))
            cin = w
        self.decoder = nn.ModuleList(ups)
        self.depth_head = nn.Conv2d(cin, 1, 1)
        self.num_features = widths[-1] + cin  # pooled bottleneck + pooled last decoder map

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bottleneck map, last decoder map at the depth resolution) of RGB in [0, 1]."""
        h = to_signed(x)
        skips = []
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
        bottleneck = h
        for j, conv in enumerate(self.decoder):
            skip = skips[len(skips) - 2 - j]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = conv(torch.cat([h, skip], dim=1))
        return bottleneck, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, decoded = self.features(x)
        return torch.sigmoid(self.depth_head(decoded)).squeeze(1)

    def depth_map(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN on (RGB resized to the depth size, depth): a map of real/fake logits, one per patch.

    Spectral norm on every conv and LeakyReLU(0.2), no normalisation layers.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        layers, cin = [], 4
        for w in widths:
            layers += [spectral_norm(nn.Conv2d(cin, w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            cin = w
        layers.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        rgb = F.interpolate(rgb, size=depth.shape[-2:], mode="area")
        return self.net(torch.cat([to_signed(rgb), to_signed(depth.unsqueeze(1))], dim=1))


class PseudoDepthLivenessNet(nn.Module):
    """Liveness logit (N,) from the generator's pooled bottleneck and decoder features via a small MLP.

    `backbone` is the (pre-trained) generator; `depth_map` is its pseudo-depth output.
    """

    def __init__(self, generator: UNetDepthGenerator, hidden: int = 64) -> None:
        super().__init__()
        self.backbone = generator
        self.head = nn.Sequential(nn.Linear(generator.num_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottleneck, decoded = self.backbone.features(x)
        pooled = torch.cat([bottleneck.mean(dim=(2, 3)), decoded.mean(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)

    def depth_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


GENERATOR_PROFILES = {
    # depth at 16x16 from 64 px (tiny) and at 32x32 from 256 px (paper), two decoder steps each
    "tiny": dict(widths=(8, 16, 32, 32), decoder_widths=(32, 16), depth_level=2),
    "paper": dict(widths=(32, 64, 128, 128, 128), decoder_widths=(80, 48), depth_level=3),
}
DISCRIMINATOR_WIDTHS = {"tiny": (16, 32), "paper": (32, 64, 128)}
HEAD_HIDDEN = {"tiny": 32, "paper": 64}


def pseudo_depth_net(profile: str) -> PseudoDepthLivenessNet:
    return PseudoDepthLivenessNet(UNetDepthGenerator(**GENERATOR_PROFILES[profile]), HEAD_HIDDEN[profile])
