"""Batched SimCLR-style augmentations on image tensors (float [0, 1], RGB, NCHW), drawn per sample."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ViewAugmentation:
    """Random resized crop + horizontal flip, then colour jitter (brightness, contrast, saturation; no hue)
    with probability `p_jitter` and grayscale with probability `p_gray`.

    The crop keeps `scale` of the face's area (milder than SimCLR's 0.08: an aligned face cropped to a
    twelfth is mostly not a face any more) at an aspect ratio in `ratio`, resampled bilinearly to the
    input size with one `grid_sample` for the whole batch.
    """

    scale: tuple[float, float] = (0.4, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    jitter: float = 0.4
    p_jitter: float = 0.8
    p_gray: float = 0.2

    def describe(self) -> dict:
        return {"kind": "random resized crop + flip, colour jitter (brightness/contrast/saturation), grayscale",
                **asdict(self)}

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        n = x.shape[0]

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator, device=x.device, dtype=x.dtype)

        def coin(p: float) -> torch.Tensor:
            return uniform(0.0, 1.0) < p

        area = uniform(*self.scale)
        aspect = torch.exp(uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the full width / height
        h = torch.sqrt(area / aspect).clamp(max=1.0)
        flip = torch.where(coin(0.5), -1.0, 1.0).to(x.dtype)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = w * flip
        theta[:, 1, 1] = h
        theta[:, 0, 2] = (1 - w) * uniform(-1.0, 1.0)
        theta[:, 1, 2] = (1 - h) * uniform(-1.0, 1.0)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

        j = self.jitter
        col = (n, 1, 1, 1)
        jittered = (out * uniform(1 - j, 1 + j).view(col)).clamp(0, 1)  # brightness
        mean = gray(jittered).mean(dim=(1, 2, 3), keepdim=True)
        jittered = ((jittered - mean) * uniform(1 - j, 1 + j).view(col) + mean).clamp(0, 1)  # contrast
        g = gray(jittered)
        jittered = ((jittered - g) * uniform(1 - j, 1 + j).view(col) + g).clamp(0, 1)  # saturation
        out = torch.where(coin(self.p_jitter).view(col), jittered, out)
        return torch.where(coin(self.p_gray).view(col), gray(out).expand_as(out), out)


def gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (N, 1, H, W) of RGB images."""
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)
