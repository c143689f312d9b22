"""Synthetic anti-spoofing protocols over the embedded world's four capture domains, registered on import.

Intra-domain protocols train and test in one domain; cross-domain ones train on source domains and
test on an unseen one, with the threshold at the EER of the sources' dev split (the target domain's
data is never used to choose it). The domains' data and layouts: `bench.data.synth.fas`.
"""
from __future__ import annotations

from bench.data.sets import FASSet
from bench.data.synth.export import FAS_DATASET, combined_fingerprint
from bench.data.synth.fas import layout, subject_ids
from bench.data.synth.readback import domain_split
from bench.data.synth.world import DOMAINS, FAS_DOMAINS
from bench.protocols.fas import FASProtocol
from bench.protocols.registry import register_protocol

LETTER = {"oulu": "o", "casia": "c", "replay": "i", "msu": "m"}  # I = Idiap Replay-Attack, as in the literature


def _describe(domains: tuple[str, ...], split: str) -> str:
    """e.g. `oulu: 20 subjects x 3 sessions; casia: 15 subjects x 3 sessions`."""
    return "; ".join(f"{d}: {len(subject_ids(d, split))} subjects x {layout(d).sessions} sessions" for d in domains)


def common_frames_per_video(domains: tuple[str, ...]) -> int:
    """The frames per video shared by `domains` (a protocol has one); ValueError if their layouts differ."""
    found = {layout(d).frames_per_video for d in domains}
    if len(found) != 1:
        raise ValueError(f"the layouts of {', '.join(domains)} differ in frames_per_video ({sorted(found)}); "
                         "a protocol needs one")
    return found.pop()


class SynthFASProtocol(FASProtocol):
    """Train on `sources`, threshold on the sources' dev split, test on `targets`."""

    def __init__(self, name: str, sources: tuple[str, ...], targets: tuple[str, ...], description: str) -> None:
        super().__init__(
            name=name,
            task="fas",
            description=description,
            threshold_rule="dev EER over the source domains' dev split",
            splits={
                "train": _describe(sources, "train"),
                "dev": _describe(sources, "dev"),
                "test": _describe(targets, "test"),
                "frames": f"{common_frames_per_video(sources + targets)} per video; per subject and session "
                          "one live video + one per medium of the domain",
            },
            frames_per_video=common_frames_per_video(sources + targets),
        )
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "targets", targets)

    def data_fingerprint(self, size: int) -> str:
        return combined_fingerprint(tuple(FAS_DATASET[d] for d in sorted(set(self.sources + self.targets))), size)

    def frames(self, split: str, size: int) -> FASSet:
        domains = self.targets if split == "test" else self.sources
        return FASSet.concat([domain_split(d, split, size) for d in domains])


def _register_all() -> None:
    for d in FAS_DOMAINS:
        register_protocol(SynthFASProtocol(f"synth-{d}", (d,), (d,), f"intra-domain anti-spoofing in the {DOMAINS[d].stands_for} stand-in domain"))
    cross = [
        ("synth-casia->replay", ("casia",), ("replay",)),
        ("synth-replay->casia", ("replay",), ("casia",)),
        ("synth-mi->c", ("msu", "replay"), ("casia",)),
        ("synth-mi->o", ("msu", "replay"), ("oulu",)),
    ]
    cross += [(f"synth-ocim->{LETTER[t]}", tuple(d for d in FAS_DOMAINS if d != t), (t,)) for t in FAS_DOMAINS]
    for name, sources, targets in cross:
        register_protocol(
            SynthFASProtocol(name, sources, targets, f"cross-domain: train on {' + '.join(sources)}, test on unseen {targets[0]}")
        )


_register_all()
