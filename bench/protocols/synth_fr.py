"""`synth-fr`: the embedded world's FR protocol (CelebA-like train, unseen-identity test pairs), registered on import."""
from __future__ import annotations

from bench.data.sets import GALLERY_PER_ID, FaceSet, IdentificationSet, PairSet
from bench.data.synth.fr import SYNTH_FR
from bench.data.synth.export import combined_fingerprint
from bench.data.synth.in_memory import synth_fr_identification
from bench.data.synth.readback import synth_fr_dev, synth_fr_pairs, synth_fr_train
from bench.protocols.fr import FRProtocol
from bench.protocols.registry import register_protocol


class SynthFRProtocol(FRProtocol):
    """`synth-fr`: the embedded world's FR protocol (CelebA-like train, unseen-identity test pairs)."""

    def data_fingerprint(self, size: int) -> str:
        return combined_fingerprint(("celeba", "lfw"), size)  # dev and train: the CelebA stand-in; test: LFW's

    def train_set(self, size: int) -> FaceSet:
        return synth_fr_train(size)

    def dev_set(self, size: int) -> FaceSet:
        return synth_fr_dev(size)

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        return synth_fr_pairs(kind, n, seed, size)

    def identification(self, n: int | None, seed: int, size: int) -> IdentificationSet:
        return synth_fr_identification(n, seed, size)


register_protocol(
    SynthFRProtocol(
        name="synth-fr",
        task="fr",
        description="embedded face world: train / dev identities (threshold) / test pairs on unseen identities",
        threshold_rule="verification threshold at FAR=1e-3 on all dev impostor pairs",
        splits={
            "train": f"{len(SYNTH_FR.train_ids)} identities x {SYNTH_FR.train_per_id} images",
            "dev": f"{len(SYNTH_FR.dev_ids)} identities x {SYNTH_FR.dev_per_id} images",
            "test": f"{SYNTH_FR.test_pairs_per_kind} genuine + {SYNTH_FR.test_pairs_per_kind} impostor pairs "
            f"over {len(SYNTH_FR.test_ids)} unseen identities",
            "identification": f"gallery of {len(SYNTH_FR.test_ids)} test identities x {GALLERY_PER_ID} images "
            f"(one template each); probes: their other {SYNTH_FR.test_per_id - GALLERY_PER_ID} images",
        },
    )
)
