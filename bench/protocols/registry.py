"""The protocol registry: every named protocol, looked up by name.

`bench.protocols` imports the modules that register the synthetic and the real-data protocols, so the
registry is complete whichever module of the package is imported first.

A protocol *family* is a protocol named by an argument: `bin:PATH` (any insightface verification `.bin`). Its
prefix is registered with `register_protocol_family`, with the protocol that describes it (named `bin:PATH`, listed
with the others) and a function that makes the protocol of one argument; `get_protocol("bin:/data/agedb_30.bin")`
returns that protocol (one per name and process).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from bench.errors import BadInputError
from bench.protocols.base import Protocol
from bench.registry import Registry

PROTOCOLS: Registry[Protocol] = Registry("protocol")
FAMILY_SEPARATOR = ":"


@dataclass(frozen=True)
class ProtocolFamily:
    """Protocols named `<prefix>:<argument>`: `listed` describes them (its name is the pattern, e.g. `bin:PATH`),
    `make(argument)` returns the protocol of one argument (a one-line `FacebenchError` for a bad one)."""

    prefix: str
    listed: Protocol
    make: Callable[[str], Protocol]


PROTOCOL_FAMILIES: Registry[ProtocolFamily] = Registry("protocol family")


def register_protocol(protocol: Protocol) -> Protocol:
    """Add `protocol` under its name (a name registered twice is an error)."""
    return PROTOCOLS.add(protocol.name, protocol)


def register_protocol_family(prefix: str, listed: Protocol, make: Callable[[str], Protocol]) -> ProtocolFamily:
    """Add the family of protocols named `<prefix>:<argument>`; `listed` (named by its pattern) is listed with the
    protocols."""
    if FAMILY_SEPARATOR in prefix or not listed.name.startswith(prefix + FAMILY_SEPARATOR):
        raise ValueError(f"protocol family {prefix!r}: its listed protocol must be named {prefix}:<argument>")
    register_protocol(listed)
    return PROTOCOL_FAMILIES.add(prefix, ProtocolFamily(prefix, listed, make))


def family_of(name: str) -> str | None:
    """The family prefix of a protocol name (`bin` for `bin:/x.bin`), or None when `name` names no family."""
    prefix, sep, _ = name.partition(FAMILY_SEPARATOR)
    return prefix if sep and prefix in PROTOCOL_FAMILIES else None


@lru_cache(maxsize=32)
def _member(prefix: str, argument: str) -> Protocol:
    if not argument:
        raise BadInputError(f"protocol {prefix}{FAMILY_SEPARATOR} needs its argument: "
                            f"{PROTOCOL_FAMILIES.get(prefix).listed.name}")
    return PROTOCOL_FAMILIES.get(prefix).make(argument)


def get_protocol(name: str) -> Protocol:
    """The protocol called `name` (or the member of a family, `bin:/data/agedb_30.bin`); an unknown name is a user
    error that lists the known ones."""
    prefix = family_of(name)
    if prefix is not None:
        return _member(prefix, name[len(prefix) + 1:])
    return PROTOCOLS.get(name)
