"""Building an external zoo entry (`bench.external.ExternalWeights`): its weights read from the installed package,
checked against the pinned sha256, turned into a torch network by the entry's builder in memory (nothing is written,
nothing is unpickled: the builder reads the file's own format), and wrapped in its input convention."""
from __future__ import annotations

import importlib
from pathlib import Path

from torch import nn

from bench.errors import CheckpointError
from bench.external import ExternalWeights
from models_zoo.adapt import InputAdapter
from models_zoo.checkpoint import sha256_file


def external_weights(name: str, ext: ExternalWeights) -> Path:
    """The entry's weights file, installed and of the pinned sha256; else one `CheckpointError` line saying how."""
    path = ext.locate()
    if path is None:
        raise CheckpointError(f"model {name!r} reads its weights from the package {ext.distribution}, which is not "
                              f"installed: {ext.install_hint()}")
    digest = sha256_file(path)
    if digest != ext.sha256:
        raise CheckpointError(f"model {name!r}: {path} has sha256 {digest[:12]}, not the pinned {ext.sha256[:12]} of "
                              f"{ext.distribution} {ext.version} (reinstall it: {ext.install_hint()})")
    return path


def external_builder(name: str, ext: ExternalWeights):
    """The entry's builder function, imported now; one `CheckpointError` line when it is not there."""
    module, _, attr = ext.builder.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise CheckpointError(f"model {name!r}: its network builder {module} is not in this facebench") from None
        raise CheckpointError(f"model {name!r}: its network builder {module} needs {e.name}, which is not installed: "
                              f"{ext.install_hint()}") from None
    builder = getattr(mod, attr, None)
    if not callable(builder):
        raise CheckpointError(f"model {name!r}: {module} has no function {attr}")
    return builder


def build_external(name: str, task: str, ext: ExternalWeights) -> nn.Module:
    """The entry's network from its checked weights, behind its input convention (FR: L2-normalised embedding)."""
    path = external_weights(name, ext)
    builder = external_builder(name, ext)
    try:
        net = builder(path)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"model {name!r}: building the network from {path.name} failed: "
                              f"{type(e).__name__}: {first}") from None
    if not isinstance(net, nn.Module):
        raise CheckpointError(f"model {name!r}: {ext.builder} returned {type(net).__name__}, not a torch.nn.Module")
    return InputAdapter(net, ext.convention, l2_normalise=task == "fr")


__all__ = ["build_external", "external_builder", "external_weights"]
