"""Datasets and protocols: the embedded face world and the named evaluation splits."""
from bench.data.protocols import PROTOCOLS, FASProtocol, FASSet, FRProtocol, Protocol, get_protocol, register_protocol
from bench.data import synth_fas  # noqa: F401  (registers the synthetic anti-spoofing protocols)
from bench.data import real_protocols  # noqa: F401  (registers the protocols over the real datasets)

__all__ = ["PROTOCOLS", "FASProtocol", "FASSet", "FRProtocol", "Protocol", "get_protocol", "register_protocol"]
