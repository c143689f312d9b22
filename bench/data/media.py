"""Compatibility only: the presentation media moved to `bench.data.synth.media`.

`bench/leaderboard.py` still imports `SUBTYPES` from here (it is being moved elsewhere); delete this
module once it imports `bench.data.synth.media`.
"""
from bench.data.synth.media import SUBTYPES

__all__ = ["SUBTYPES"]
