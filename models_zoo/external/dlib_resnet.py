"""dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) rebuilt in torch.

The file is read by `bench.data.real.dlib_format.read_net` (plain Python, no pickle, no dlib); this module checks
that its layers are those of dlib's network (`anet_type` of dlib's `dnn_face_recognition_ex.cpp`, written out in
`LAYOUT`) and runs them with dlib's conventions:

- input: a 150 x 150 RGB chip (`face_chip`), in facebench's [0, 1]; dlib reads 0-255 pixels as
  `(pixel - mean) / 256` with the per-channel mean stored in the file's input layer;
- batch norm was folded into per-channel affine layers (`gamma * x + beta`) before the file was saved;
- convolutions and pools with stride 2 pad nothing (dlib's default padding is `size / 2` only at stride 1), so
  sizes shrink 150 -> 72 -> 35 -> 17 -> 8 -> 3 (and 4 on the pooled shortcut of the last level);
- a residual add (`add_prev`) of two tensors of different shapes is the size of the larger in each dimension,
  the smaller zero-padded at the end (more channels, and the shortcut's extra row and column at the last level);
- the last layer is a fully connected layer without bias whose weights are stored input-major (256 x 128), after
  a global average pool: the output is dlib's 128-d descriptor, not normalised; two faces are the same person
  when the Euclidean distance of their descriptors is below `NATIVE_THRESHOLD` (the file's `dist_thresh`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.real.dlib_format import DlibFormatError, DlibNet, read_net
from models_zoo.backbones import max_pool2d
from models_zoo.checkpoint import model_eval

NATIVE_THRESHOLD = 0.6
"""dlib's distance threshold: descriptors closer than this (Euclidean) are the same person."""

INPUT_SIZE = 150
DESCRIPTOR_SIZE = 128


def _layout() -> list[str]:
    """dlib's `anet_type` from the input up: `tagN` remembers the tensor, `skipN` goes back to it, `add_prevN` adds
    it (the plain kinds are dlib's layers)."""
    residual = ["tag1", "con", "affine", "relu", "con", "affine", "add_prev1", "relu"]
    residual_down = ["tag1", "con", "affine", "relu", "con", "affine", "tag2", "skip1", "avg_pool", "add_prev2",
                     "relu"]
    levels = [residual * 3,  # 32 filters
              residual_down + residual * 3,  # 64
              residual_down + residual * 2,  # 128
              residual_down + residual * 2,  # 256
              residual_down]  # 256
    return ["con", "affine", "relu", "max_pool"] + sum(levels, []) + ["avg_pool", "fc"]


LAYOUT = _layout()


def _file_kind(step: str) -> str:
    """How a step of `LAYOUT` appears in the file (tags and skips carry no number there)."""
    if step.startswith(("tag", "skip")):
        return "tag_or_skip"
    return "add_prev" if step.startswith("add_prev") else step


class Affine(nn.Module):
    """dlib's `affine_` in convolution mode: `gamma * x + beta` per channel (batch norm folded)."""

    def __init__(self, gamma: np.ndarray, beta: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("gamma", torch.from_numpy(gamma.copy()).view(1, -1, 1, 1))
        self.register_buffer("beta", torch.from_numpy(beta.copy()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class Pool(nn.Module):
    """dlib's `max_pool_` / `avg_pool_` (no padding here; window 0 = the whole map, `avg_pool_everything`)."""

    def __init__(self, kind: str, fields: dict) -> None:
        super().__init__()
        if fields["padding_y"] or fields["padding_x"]:
            raise DlibFormatError(f"a padded {kind} (not in dlib's face ResNet)")
        self.kind = kind
        self.window = (fields["nr"], fields["nc"])
        self.stride = (fields["stride_y"], fields["stride_x"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.window == (0, 0):
            return x.mean(dim=(2, 3), keepdim=True)
        pool = max_pool2d if self.kind == "max_pool" else F.avg_pool2d
        return pool(x, self.window, self.stride)


class FullyConnected(nn.Module):
    """dlib's `fc_` without bias: the input flattened, times the input-major weights (inputs x outputs)."""

    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(weight.copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight


def padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's `add_prev_`: the sum over the larger shape, each tensor zero-padded at the end of each dimension."""
    shape = [max(sa, sb) for sa, sb in zip(a.shape[1:], b.shape[1:])]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (s - ts for s, ts in zip(shape, t.shape[1:]))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return pad(a) + pad(b)


def _conv(layer) -> nn.Conv2d:
    f, weight = layer.fields, layer.arrays["weight"]
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], (f["nr"], f["nc"]), stride=(f["stride_y"], f["stride_x"]),
                     padding=(f["padding_y"], f["padding_x"]), bias="bias" in layer.arrays)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(layer.arrays["bias"]))
    return conv


def _module(step: str, layer) -> nn.Module:
    if step == "con":
        return _conv(layer)
    if step == "affine":
        if layer.fields["mode"] != 0 or layer.fields["disabled"]:
            raise DlibFormatError("an affine layer not in convolution mode, or disabled (not dlib's face ResNet)")
        return Affine(layer.arrays["gamma"], layer.arrays["beta"])
    if step in ("max_pool", "avg_pool"):
        return Pool(step, layer.fields)
    if step == "fc":
        if "bias" in layer.arrays:
            raise DlibFormatError("a fully connected layer with a bias (dlib's face ResNet has none)")
        return FullyConnected(layer.arrays["weight"])
    if step == "relu":
        if layer.fields["disabled"]:
            raise DlibFormatError("a disabled relu (not dlib's face ResNet)")
        return nn.ReLU()
    return nn.Identity()  # tags, skips and adds: done by DlibResNet.forward


class DlibResNet(nn.Module):
    """The network of `LAYOUT` with the weights of a dlib file: (N, 3, 150, 150) RGB in [0, 1] -> (N, 128)."""

    def __init__(self, net: DlibNet) -> None:
        super().__init__()
        found = net.kinds
        expected = [_file_kind(step) for step in LAYOUT]
        if found != expected:
            at = next((i for i, (a, b) in enumerate(zip(found, expected)) if a != b), min(len(found), len(expected)))
            raise DlibFormatError(f"not dlib's face recognition ResNet: {len(found)} layers, layer {at} from the "
                                  f"input is {found[at] if at < len(found) else 'missing'} "
                                  f"(expected {expected[at] if at < len(expected) else 'nothing'})")
        if (net.input.get("nr"), net.input.get("nc")) != (INPUT_SIZE, INPUT_SIZE):
            raise DlibFormatError(f"an input layer of {net.input.get('nr')}x{net.input.get('nc')} (expected 150x150)")
        self.steps = list(LAYOUT)
        self.layers = nn.ModuleList(_module(step, layer) for step, layer in zip(LAYOUT, net.layers))
        mean = [net.input["avg_red"], net.input["avg_green"], net.input["avg_blue"]]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.dist_thresh = float(net.loss["dist_thresh"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * 255.0 - self.mean) / 256.0
        tags: dict[str, torch.Tensor] = {}
        for step, layer in zip(self.steps, self.layers):
            if step.startswith("tag"):
                tags[step[3:]] = x
            elif step.startswith("skip"):
                x = tags[step[4:]]
            elif step.startswith("add_prev"):
                x = padded_add(x, tags[step[8:]])
            else:
                x = layer(x)
        return x


def build_dlib_resnet(path: Union[str, Path]) -> nn.Module:
    """dlib's face recognition ResNet from its `.dat` file, in eval mode: (N, 3, 150, 150) float RGB in [0, 1]
    (a `face_chip`) -> (N, 128) dlib's descriptor, differentiable with respect to the input."""
    return model_eval(DlibResNet(read_net(path)))
