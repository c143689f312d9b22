"""`synth-fr`: the embedded world's FR protocol (CelebA-like train, unseen-identity test pairs), registered on import."""
from __future__ import annotations

from functools import lru_cache

from bench.data.sets import GALLERY_PER_ID, FaceSet, IdentificationSet, PairSet, pair_choice, pairs_within
from bench.data.synth.fr import SYNTH_FR
from bench.data.synth.export import combined_fingerprint
from bench.data.synth.in_memory import synth_fr_identification
from bench.data.synth.readback import synth_fr_dev, synth_fr_pairs, synth_fr_train
from bench.errors import BadInputError
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


@lru_cache(maxsize=4)
def _dev_pairs(kind: str, size: int) -> PairSet:
    return pairs_within(synth_fr_dev(size), kind, SYNTH_FR.test_pairs_per_kind)


class SynthFRDevProtocol(SynthFRProtocol):
    """`synth-fr-dev`: synth-fr whose attacked pairs are formed from its dev identities, never from the test ones.

    For choosing a training schedule or a checkpoint by robustness (`facebench run --protocol synth-fr-dev`,
    `facebench claims --protocols synth-fr-dev`) without reading a test pair: train, dev and threshold are
    synth-fr's. The threshold rule reads every dev impostor pair, so impostor pairs here are pairs it saw (the
    impersonation figures are those of the threshold's own data); the genuine pairs of dodging are not read by it.
    """

    @property
    def base_protocol(self) -> str:
        return "synth-fr"

    def data_fingerprint(self, size: int) -> str:
        return combined_fingerprint(("celeba",), size)  # every split here is the CelebA stand-in's

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        every = _dev_pairs(kind, size)
        return every.subset(pair_choice(kind, len(every), n, seed))

    def identification(self, n: int | None, seed: int, size: int) -> IdentificationSet:
        raise BadInputError(f"protocol {self.name!r} attacks verification pairs only (dodging, impersonation); "
                            "the misidentify and target-identity goals run on synth-fr")


register_protocol(
    SynthFRDevProtocol(
        name="synth-fr-dev",
        task="fr",
        description="synth-fr with its attacked pairs formed from the dev identities, not the test ones: to choose "
                    "a training schedule or checkpoint by robustness without reading a test pair",
        threshold_rule="verification threshold at FAR=1e-3 on all dev impostor pairs (the same dev as synth-fr)",
        splits={
            "train": f"{len(SYNTH_FR.train_ids)} identities x {SYNTH_FR.train_per_id} images (synth-fr's)",
            "dev": f"{len(SYNTH_FR.dev_ids)} identities x {SYNTH_FR.dev_per_id} images (synth-fr's)",
            "test": f"{SYNTH_FR.test_pairs_per_kind} genuine + {SYNTH_FR.test_pairs_per_kind} impostor pairs formed "
                    f"from the {len(SYNTH_FR.dev_ids)} dev identities (the impostor pairs are among those the "
                    "threshold is fitted on)",
        },
    )
)
