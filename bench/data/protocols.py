"""Compatibility only: the protocol registry moved to `bench.protocols`.

`bench/leaderboard.py` and `bench/examples.py` still import it from here (they are being moved
elsewhere); delete this module once they import `bench.protocols`.
"""
from bench.protocols.registry import PROTOCOLS, get_protocol

__all__ = ["PROTOCOLS", "get_protocol"]
