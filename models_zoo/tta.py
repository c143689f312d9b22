"""Flip test-time augmentation: a face-recognition model's embedding of an image and of its mirror image, summed,
then L2-normalised (as insightface's evaluation and most FR papers report their verification figures).

It wraps the network itself, so it is inside every forward pass a run makes: the clean decisions, the dev
calibration and the function the attacks differentiate (attacks see the pipeline that is measured)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FlipTTA(nn.Module):
    """`normalize(model(x) + model(mirror(x)))`, the mirror flipping the width axis of NCHW images; both halves go
    through the model as one batch."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.model(torch.cat([x, torch.flip(x, dims=[3])]))
        original, mirrored = both.chunk(2)
        return F.normalize(original + mirrored, dim=1)
