"""Datasets and protocols: the embedded face world and the named evaluation splits."""
from bench.data.protocols import PROTOCOLS, FRProtocol, Protocol, get_protocol, register_protocol

__all__ = ["PROTOCOLS", "FRProtocol", "Protocol", "get_protocol", "register_protocol"]
