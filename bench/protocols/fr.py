"""Face-recognition protocols: face sets to train and calibrate on, verification pairs and identification items."""
from __future__ import annotations

from bench.data.sets import FaceSet, IdentificationSet, PairSet
from bench.errors import BadInputError
from bench.protocols.base import Protocol


class FRProtocol(Protocol):
    """A face-verification protocol: train and dev face sets, and genuine / impostor test pairs."""

    def train_set(self, size: int) -> FaceSet:
        raise NotImplementedError

    def dev_set(self, size: int) -> FaceSet:
        raise NotImplementedError

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        raise NotImplementedError

    def identification(self, n: int | None, seed: int, size: int) -> IdentificationSet:
        """Gallery and `n` probes from the test identities, chosen by `seed` (protocols that can form them)."""
        raise BadInputError(f"protocol {self.name!r} does not provide identification items (gallery and probes); "
                            "use synth-fr for the misidentify and target-identity goals")
