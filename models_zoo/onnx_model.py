"""An ONNX model as a model under test (`--model path/to/model.onnx --task fr|fas`).

The graph is read with `onnx` (protobuf, no pickle), converted to a differentiable torch module with `onnx2torch`,
and checked on a few random inputs to give the outputs `onnxruntime` gives (within `RTOL`, `ATOL`); a model that
cannot be converted faithfully is refused in one line. The converted network is wrapped in its input convention
(`models_zoo.adapt.InputAdapter`): its own input size (from the graph when it is fixed there, else the sidecar or
`--preprocess`) and normalisation; an FR model's embedding is L2-normalised, an FAS model's `(N, 1)` logit
flattened. Its provenance is the file's sha256.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from bench.errors import ModelFactoryError
from bench.modelref import InputConvention
from models_zoo.adapt import InputAdapter, adapt_input
from models_zoo.checkpoint import sha256_file

RTOL, ATOL = 1e-3, 1e-4  # converted vs onnxruntime: |torch - ort| <= ATOL + RTOL * |ort|, every output value
CHECK_INPUTS = 4  # random images the conversion is checked on
OPSET_HINT = "re-export it with opset 17 or lower (onnx2torch's range)"


def _libraries():
    """onnx, onnxruntime and onnx2torch, or one line saying how to install them."""
    try:
        import onnx
        import onnxruntime
        from onnx2torch import convert
    except ModuleNotFoundError as e:
        raise ModelFactoryError(f"ONNX models need onnx, onnxruntime and onnx2torch ({e.name} is not installed): "
                                "pip install 'facebench[onnx]'") from None
    return onnx, onnxruntime, convert


def _static(dim) -> Optional[int]:
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def _graph_input(graph, where: str) -> tuple[str, Optional[int], Optional[int]]:
    """The graph's one image input: its name, fixed batch size and fixed square size (None where not fixed)."""
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelFactoryError(f"{where}: facebench feeds one image tensor; the graph has {len(inputs)} inputs "
                                f"({', '.join(i.name for i in inputs)})")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [_static(d) for d in dims]
    if len(shape) != 4 or shape[1] not in (3, None):
        shown = "x".join("?" if s is None else str(s) for s in shape)
        raise ModelFactoryError(f"{where}: its input must be images (N, 3, H, W); the graph's is {shown}")
    height, width = shape[2], shape[3]
    if height is not None and width is not None and height != width:
        raise ModelFactoryError(f"{where}: its input is {height}x{width}; facebench's images are square")
    return inputs[0].name, shape[0], height if height is not None else width


class OneAtATime(nn.Module):
    """A network exported with a fixed batch of 1, run on each image of a batch in turn."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(x[i:i + 1]) for i in range(x.shape[0])])


class FlatLogit(nn.Module):
    """An anti-spoofing network's `(N, 1)` liveness logit as `(N,)`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.flatten(1).squeeze(1) if out.ndim == 2 and out.shape[1] == 1 else out


def _check_conversion(net: nn.Module, session, input_name: str, x: torch.Tensor, where: str) -> None:
    """The converted module's outputs against onnxruntime's on `x` (already adapted to the network's input)."""
    expected = session.run(None, {input_name: x.numpy()})[0]
    with torch.no_grad():
        got = net(x)
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    if got.shape != expected.shape:
        raise ModelFactoryError(f"{where}: the converted module's output has shape {got.shape}, onnxruntime's "
                                f"{expected.shape}")
    excess = np.abs(got - expected) - (ATOL + RTOL * np.abs(expected))
    if not np.all(np.isfinite(got)) or np.max(excess) > 0:
        worst = float(np.nanmax(np.abs(got - expected)))
        raise ModelFactoryError(f"{where}: the converted torch module differs from onnxruntime by up to {worst:.3g} "
                                f"(allowed: {ATOL:g} + {RTOL:g} x |output|); facebench cannot attack it faithfully")


def load_onnx(path: Path, convention: Optional[InputConvention], task: str, input_size: int) -> tuple[nn.Module, str, InputConvention]:
    """The ONNX file as a checked, adapted torch module; returns (module, the file's sha256, the convention used)."""
    onnx, onnxruntime, convert = _libraries()
    where = f"ONNX model {str(path)!r}"
    try:
        proto = onnx.load(str(path))
    except Exception as e:
        raise ModelFactoryError(f"{where}: not a readable ONNX file ({type(e).__name__}: {e})") from None
    input_name, batch, size = _graph_input(proto.graph, where)
    convention = convention or InputConvention()
    if size is not None and convention.size not in (None, size):
        raise ModelFactoryError(f"{where}: its graph takes {size} px, but the stated size is {convention.size}")
    convention = replace(convention, size=convention.size or size)
    if batch not in (None, 1):
        raise ModelFactoryError(f"{where}: its graph has a fixed batch of {batch}; export it with a dynamic batch "
                                "dimension (or a batch of 1)")
    for node in proto.graph.node:  # trailing empty optional inputs mean "absent": onnx2torch wants them left out
        while len(node.input) and node.input[-1] == "":
            node.input.pop()
    try:
        net = convert(proto).eval()
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelFactoryError(f"{where}: onnx2torch cannot convert it ({type(e).__name__}: {first}); "
                                f"{OPSET_HINT}") from None
    if batch == 1:
        net = OneAtATime(net)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelFactoryError(f"{where}: onnxruntime cannot run it ({type(e).__name__}: {e})") from None
    images = torch.rand((CHECK_INPUTS, 3, input_size, input_size), generator=torch.Generator().manual_seed(0))
    x = adapt_input(images, convention).contiguous()
    checks = [x[i:i + 1] for i in range(len(x))] if batch == 1 else [x]
    for sample in checks:
        _check_conversion(net, session, input_name, sample, where)
    if task == "fas":
        net = FlatLogit(net)
    return InputAdapter(net, convention, l2_normalise=task == "fr"), sha256_file(path), convention


__all__ = ["ATOL", "CHECK_INPUTS", "RTOL", "load_onnx"]
