"""Backbones from timm, sized per profile, and the max-pooling layer every zoo network uses."""
from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock, ResNet
from torch import nn


@torch.fx.wrap  # a leaf of torch.fx traces (BatchNorm folding traces the zoo networks): its branch is not traced
def max_pool2d(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> torch.Tensor:
    """`F.max_pool2d`, the same values, faster for the forward passes that need no gradient on a CPU.

    PyTorch's CPU max pooling of a contiguous (NCHW) batch runs about 3x slower than of the same batch in
    channels_last (measured with torch 2.14: 1.9 against 0.8 ms for 4 x 64 x 32 x 32 at kernel 3, stride 2,
    conversions both ways included), and the stem's pooling is about a third of the tiny ResNet's forward pass.
    Without gradient (evaluation, a black-box attack's queries) the batch is pooled in channels_last and handed back
    in its own layout: a maximum is exact, so the output is identical. With a gradient the plain path runs, so every
    gradient is exactly what it was.
    """
    plain = (x.device.type != "cpu" or x.dim() != 4 or x.is_contiguous(memory_format=torch.channels_last)
             or (torch.is_grad_enabled() and x.requires_grad))
    if plain:
        return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
    out = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), kernel_size, stride, padding, dilation,
                       ceil_mode=ceil_mode)
    return out.contiguous()


class MaxPool2d(nn.MaxPool2d):
    """`nn.MaxPool2d` through `max_pool2d` (the same parameters, no state)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


def swap_max_pooling(model: nn.Module, to: type) -> nn.Module:
    """`model` (changed in place) with every max-pooling layer of the other kind (`nn.MaxPool2d` or `MaxPool2d`)
    replaced by one of type `to` with the same parameters (layers that return indices are left as they are)."""
    other = nn.MaxPool2d if to is MaxPool2d else MaxPool2d
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is other and not child.return_indices:
                setattr(module, child_name, to(child.kernel_size, child.stride, child.padding, child.dilation,
                                               ceil_mode=child.ceil_mode))
    return model


def fast_pooling(model: nn.Module) -> nn.Module:
    """`model` (changed in place) with every `nn.MaxPool2d` replaced by `MaxPool2d` with the same parameters."""
    return swap_max_pooling(model, MaxPool2d)


def resnet_backbone(profile: str) -> nn.Module:
    """Feature extractor without a classifier: a narrow 4-stage ResNet (tiny) or ResNet50 (paper)."""
    if profile == "paper":
        return fast_pooling(timm.create_model("resnet50", pretrained=False, num_classes=0))
    return fast_pooling(ResNet(
        block=BasicBlock,
        layers=(1, 1, 1, 1),
        channels=(16, 32, 64, 128),
        stem_width=16,
        num_classes=0,
    ))
