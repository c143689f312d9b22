"""Run configuration helpers: budgets written as fractions of 255, devices, seeds."""
from __future__ import annotations

import os
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    import torch

from bench.errors import BadInputError

DEFAULT_STORE = Path("results/facebench.h5")  # the results store (bench.store); here so the CLI names it without h5py
NORMS = ("linf", "l2")
PRECISIONS = {"fp32": None, "bf16": "bfloat16"}
"""The attacks' forward pass (bench/precision.py): the torch dtype each autocasts to, by name (None: no autocast)."""
EPS_TOLERANCE = 1e-6  # budgets are checked with a tolerance, never an exact float compare

_FRACTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def parse_eps(value: Union[str, float, int]) -> float:
    """Parse a budget such as ``8/255``, ``0.5`` or ``1`` into a float in [0, 1] image space."""
    if isinstance(value, (int, float)):
        eps = float(value)
    else:
        text = str(value).strip()
        match = _FRACTION.match(text)
        try:
            if match:
                num, den = float(match.group(1)), float(match.group(2))
                if den == 0:
                    raise ZeroDivisionError
                eps = num / den
            else:
                eps = float(text)
        except (ValueError, ZeroDivisionError):
            raise BadInputError(f"budget {value!r} is not a number or a fraction like 8/255") from None
    if not np.isfinite(eps) or eps <= 0:
        raise BadInputError(f"budget {value!r} must be a positive finite number")
    return eps


def check_budget(norm: str, eps: float) -> None:
    """Refuse a budget that makes no sense for its norm before any work is done."""
    if norm not in NORMS:
        raise BadInputError(f"unknown norm {norm!r} (known: {', '.join(NORMS)})")
    if norm == "linf" and not (0 < eps <= 1 + EPS_TOLERANCE):
        shown = f"{eps:g}" if format_eps("linf", eps) == f"{eps:g}" else f"{eps:g} ({format_eps('linf', eps)})"
        raise BadInputError(f"Linf budget {shown} is outside (0, 1]")
    if norm == "l2" and not eps > 0:
        raise BadInputError(f"L2 budget {eps:g} must be positive")


def format_eps(norm: str, eps: float, measured: bool = False) -> str:
    """Write a budget the way people read it: Linf as n/255, L2 as a decimal.

    `measured`: a measured perturbation size (a median minimal budget), not a budget someone chose: Linf with
    two significant digits of n/255, L2 with three, infinity as `inf`."""
    if measured:
        if eps == float("inf"):
            return "inf"
        return f"{eps * 255:.2g}/255" if norm == "linf" else f"{eps:.3g}"
    if norm == "linf":
        frac = Fraction(eps * 255).limit_denominator(8)
        if abs(float(frac) - eps * 255) < 1e-4:
            return f"{frac}/255" if frac.denominator == 1 else f"{float(frac):g}/255"
    return f"{eps:g}"


def epochs_value(epochs: float) -> Union[int, float]:
    """A number of training epochs as recorded (model cards, commands): an int when whole, else the fraction as a
    float (recipes trained through `models_zoo.training.fit` can run part of an epoch)."""
    return int(epochs) if float(epochs).is_integer() else float(epochs)


def resolve_device(name: str) -> "torch.device":
    """`auto` picks CUDA when there is one, else CPU; `cuda` without a GPU is a user error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise BadInputError(f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def sha256_file(path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks: how weights and model files are pinned."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_writable(path: Path, flag: str, folder: bool = False) -> Path:
    """Refuse in one line, before long work, an output that could not be written at its end: a file `path` (or,
    with `folder`, a folder) whose folder is a file, or that is a folder itself (a file), or under a folder it may
    not write in. Creates nothing (the writer creates the missing folders)."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        raise BadInputError(f"{flag} {path} is a {'file' if folder else 'folder'}")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BadInputError(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInputError(f"{flag} {path}: {existing} is not writable")
    return path


def write_atomic(path: Path, data: Union[str, bytes]) -> None:
    """Write a file through a temporary name in the same directory and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
