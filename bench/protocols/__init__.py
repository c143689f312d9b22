"""Named evaluation protocols: splits over a dataset that yield training data, calibrate a model and build goal items.

Importing this package registers every protocol: the embedded world's (`synth_fr`, `synth_fas`) and
those over the real datasets (`real`).
"""
from bench.protocols.base import Protocol
from bench.protocols.fas import FASProtocol
from bench.protocols.fr import FRProtocol
from bench.protocols.registry import PROTOCOLS, get_protocol, register_protocol
from bench.protocols import real, synth_fas, synth_fr  # noqa: F401  (register the protocols)

__all__ = ["PROTOCOLS", "FASProtocol", "FRProtocol", "Protocol", "get_protocol", "register_protocol"]
