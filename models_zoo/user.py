"""A user's own model: a `module:function` (or `path/to/file.py:function`) factory plus optional weights.

The factory is called with no arguments and must return an `nn.Module` that follows the FR or FAS
convention (see docs/adding-a-model.md). Its weights are the factory's own, or a safetensors file
loaded strictly; a sibling JSON card is optional, and its sha256 is checked when it has one.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import sysconfig
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

from safetensors.torch import save as safetensors_bytes
from torch import nn

from bench.errors import ModelFactoryError
from bench.modelref import is_factory_ref
from models_zoo.checkpoint import card_path, load_weights, read_card

FACTORY_WEIGHTS = "none (factory weights)"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "(no message)"


_LIBRARY_DIRS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")})


def _where(e: BaseException) -> str:
    """` (at file.py:12)`: where the exception was raised, in the user's code if possible, for a one-line error."""
    if isinstance(e, SyntaxError):  # its message already says file and line
        return ""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<")]
    own = [f for f in frames if not f.filename.startswith(_LIBRARY_DIRS)]
    frame = (own or frames or [None])[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""


@dataclass(frozen=True)
class FactoryRef:
    """A parsed `module:function` or `path/to/file.py:function` reference."""

    text: str
    module: str
    attr: str

    @property
    def is_path(self) -> bool:
        return self.module.endswith(".py") or "/" in self.module or os.sep in self.module

    @classmethod
    def parse(cls, text: str) -> "FactoryRef":
        module, _, attr = text.rpartition(":")
        if not module or not attr or not all(part.isidentifier() for part in attr.split(".")):
            raise ModelFactoryError(
                f"model factory {text!r} is not of the form module:function or path/to/file.py:function"
            )
        return cls(text, module, attr)


@contextmanager
def _on_sys_path(directory: str) -> Iterator[None]:
    """`directory` first on sys.path while importing (as `python -m` does for the current directory)."""
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        yield
    finally:
        if added and directory in sys.path:
            sys.path.remove(directory)


def _import_module(ref: FactoryRef) -> ModuleType:
    if ref.is_path:
        path = Path(ref.module).expanduser()
        if not path.is_file():
            raise ModelFactoryError(f"cannot import model factory {ref.text!r}: file {path} does not exist")
        path = path.resolve()
        name = f"_facebench_user_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ModelFactoryError(f"cannot import model factory {ref.text!r}: {path} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses, pickling-free torch internals and typing look modules up here
        try:
            with _on_sys_path(str(path.parent)):  # so the file can import its sibling modules
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    with _on_sys_path(os.getcwd()):
        importlib.invalidate_caches()
        return importlib.import_module(ref.module)


def load_factory(text: str) -> Callable[[], nn.Module]:
    """Import the factory named by `text`; every failure is one `ModelFactoryError` line naming it."""
    ref = FactoryRef.parse(text)
    try:
        module = _import_module(ref)
    except ModelFactoryError:
        raise
    except ModuleNotFoundError as e:
        if not (e.name and (ref.module == e.name or ref.module.startswith(e.name + "."))):  # a dependency of it is missing
            raise ModelFactoryError(f"cannot import model factory {text!r}: ModuleNotFoundError{_where(e)}: {_first_line(e)}") from None
        raise ModelFactoryError(
            f"cannot import model factory {text!r}: {_first_line(e)} (run from the directory that holds it, "
            f"put it on PYTHONPATH, or write path/to/file.py:{ref.attr})"
        ) from None
    except Exception as e:
        raise ModelFactoryError(f"cannot import model factory {text!r}: {type(e).__name__}{_where(e)}: {_first_line(e)}") from None
    obj: object = module
    for part in ref.attr.split("."):
        if not hasattr(obj, part):
            raise ModelFactoryError(f"model factory {text!r}: module {ref.module!r} has no attribute {ref.attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelFactoryError(f"model factory {text!r}: {ref.attr!r} is not callable (it is of type {type(obj).__name__})")
    return obj  # type: ignore[return-value]


def build_from_factory(text: str, factory: Callable[[], nn.Module]) -> nn.Module:
    """Call the factory with no arguments (keyword arguments keep their defaults) and check it gave a model."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature: just call them
        params = []
    required = [p.name for p in params
                if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise ModelFactoryError(
            f"model factory {text!r} must be callable with no arguments, but it requires {', '.join(required)}"
        )
    try:
        model = factory()
    except Exception as e:
        raise ModelFactoryError(f"model factory {text!r} raised {type(e).__name__}{_where(e)}: {_first_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ModelFactoryError(f"model factory {text!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 of the model's state_dict serialised as safetensors: identifies factory weights like a file hash."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return hashlib.sha256(safetensors_bytes(state)).hexdigest()


def load_user_checkpoint(model: nn.Module, weights: Path) -> tuple[str, dict]:
    """Load safetensors weights strictly into a user's model; returns (sha256 of the file, its card or {}).

    The card (same name, `.json`) is optional; when present its sha256, if any, must match the file.
    """
    weights = Path(weights)
    card = read_card(weights) if card_path(weights).exists() and weights.exists() else {}
    digest = load_weights(model, weights, card.get("sha256"))
    return digest, card


__all__ = [
    "FACTORY_WEIGHTS",
    "FactoryRef",
    "build_from_factory",
    "is_factory_ref",
    "load_factory",
    "load_user_checkpoint",
    "state_dict_sha256",
]
