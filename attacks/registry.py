"""The attack registry: attacks by name, with typed and validated parameters."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

from attacks.base import Attack
from bench.errors import BadInputError
from bench.registry import Registry

ATTACKS: Registry[type] = Registry("attack")


def register_attack(cls: type) -> type:
    """Class decorator: register an `Attack` dataclass under its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    ATTACKS.add(cls.name, cls)
    return cls


def declares(name: str, capability: str) -> bool:
    """Whether the registered attack `name` declares `capability` (an `Attack.CAPABILITIES` flag); False for a
    name that is no registered attack (the cell kinds: cascade, transfer)."""
    if capability not in Attack.CAPABILITIES:
        raise ValueError(f"unknown attack capability {capability!r} (known: {', '.join(Attack.CAPABILITIES)})")
    return name in ATTACKS and bool(getattr(ATTACKS.get(name), capability))


def _coerce(name: str, attack: str, value: Any, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union:  # Optional[T]
        if value is None:
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            from bench.config import parse_eps

            try:
                return float(value)
            except ValueError:
                return parse_eps(value)
    elif kind is str:
        return str(value)
    else:
        return value
    raise BadInputError(f"attack {attack!r}: parameter {name!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")


def make_attack(name: str, params: Optional[dict] = None) -> Attack:
    """Build attack `name` from a parameter dict; unknown or invalid parameters are refused."""
    cls = ATTACKS.get(name)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    params = dict(params or {})
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadInputError(
            f"attack {name!r} has no parameter {', '.join(map(repr, unknown))} (parameters: {', '.join(sorted(known)) or 'none'})"
        )
    kwargs = {k: _coerce(k, name, v, hints[k]) for k, v in params.items()}
    attack = cls(**kwargs)
    attack.validate()
    return attack


def describe_params(name: str) -> str:
    """The attack's parameters with their defaults (what identifies a cell; run-only switches such as a
    library's `verbose` are left out, as `Attack.params` leaves them out)."""
    return ", ".join(f"{k}={v!r}" for k, v in ATTACKS.get(name)().params().items())
