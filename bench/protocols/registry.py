"""The protocol registry: every named protocol, looked up by name.

`bench.protocols` imports the modules that register the synthetic and the real-data protocols, so the
registry is complete whichever module of the package is imported first.
"""
from __future__ import annotations

from bench.protocols.base import Protocol
from bench.registry import Registry

PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    """Add `protocol` under its name (a name registered twice is an error)."""
    return PROTOCOLS.add(protocol.name, protocol)


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; an unknown name is a user error that lists the known ones."""
    return PROTOCOLS.get(name)
