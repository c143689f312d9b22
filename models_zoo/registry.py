"""The variant registry: every model the benchmark compares, registered by name (timm style)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from torch import nn

from bench.errors import BadInputError
from bench.external import ExternalWeights
from bench.goals import PROFILES
from bench.registry import Registry

LABEL_KINDS: dict[str, str] = {
    "identity": "the identity of every training face",
    "identity-fraction": "the identity of a fraction of the identities (semi-supervised)",
    "live": "live or spoof (binary)",
    "spoof-type": "the spoof medium (print, replay)",
    "illumination": "the illumination condition",
    "depth": "a pseudo-depth map (live: the face's depth, spoof: all zeros)",
    "reflection": "a reflection map",
}
"""The kinds of label a recipe can train on (`VariantSpec.labels`). A pseudo-depth label carries liveness too:
spoofs get all-zero maps."""


@dataclass(frozen=True)
class VariantSpec:
    """What the zoo knows about a variant: its task, how to build and train it, and where it comes from."""

    name: str
    task: str  # "fr" or "fas"
    description: str
    factory: Callable[[str], nn.Module]
    input_size: dict[str, int]
    default_protocol: str
    citation: str = ""
    recipe: Optional[Callable[..., dict]] = field(default=None, compare=False)
    zoo_epochs: dict[str, int] = field(default_factory=dict)  # epochs of the shipped / `zoo build` training, per profile
    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (stage, the LABEL_KINDS it trains on) in order; () = undeclared
    external: Optional[ExternalWeights] = None  # an external entry: weights from an installed package, not trained here

    def labels_used(self) -> tuple[str, ...]:
        """Every label kind the recipe trains on, over all its stages, in first-use order."""
        return tuple(dict.fromkeys(kind for _, kinds in self.labels for kind in kinds))

    def build(self, profile: str = "tiny") -> nn.Module:
        if profile not in PROFILES:
            raise BadInputError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        if self.external is not None:  # the same network at every profile, from the installed package's weights
            from models_zoo.packaged import build_external

            return build_external(self.name, self.task, self.external)
        return self.factory(profile)

    def parameter_count(self, profile: str = "tiny") -> Optional[int]:
        """Parameters of the network at `profile`, built on the meta device (no memory, no init cost); an external
        entry's as its record states (None: unknown until its weights are read)."""
        import torch

        if self.external is not None:
            return self.external.parameters

        with torch.device("meta"):
            model = self.build(profile)
        return int(sum(t.numel() for t in model.parameters()))


VARIANTS: Registry[VariantSpec] = Registry("model")


def register_variant(
    name: str,
    *,
    task: str,
    description: str,
    input_size: dict[str, int],
    default_protocol: str,
    citation: str = "",
    recipe: Optional[Callable[..., dict]] = None,
    zoo_epochs: Optional[dict[str, int]] = None,
    labels: Optional[dict[str, tuple[str, ...]]] = None,
) -> Callable[[Callable[[str], nn.Module]], Callable[[str], nn.Module]]:
    """Register a factory `profile -> nn.Module` as variant `name`.

    `labels`: per stage of its recipe, in order, the kinds of label it trains on (keys of `LABEL_KINDS`).
    """
    if ":" in name:  # `--model a:b` means a user's factory, never a zoo variant
        raise ValueError(f"variant name {name!r} must not contain ':'")
    stages = tuple((stage, tuple(kinds)) for stage, kinds in (labels or {}).items())
    unknown = sorted({k for _, kinds in stages for k in kinds} - set(LABEL_KINDS))
    if unknown:
        raise ValueError(f"variant {name!r}: unknown label kind(s) {unknown} (known: {', '.join(LABEL_KINDS)})")

    def wrap(factory: Callable[[str], nn.Module]) -> Callable[[str], nn.Module]:
        VARIANTS.add(
            name,
            VariantSpec(name, task, description, factory, dict(input_size), default_protocol, citation, recipe,
                        dict(zoo_epochs or {}), stages),
        )
        return factory

    return wrap


def register_external(name: str, *, task: str, description: str, input_size: dict[str, int], default_protocol: str,
                      external: ExternalWeights, citation: str = "") -> VariantSpec:
    """Register an external entry: a network built from weights read at run time from an installed package
    (`bench.external.ExternalWeights`), with no recipe. `input_size` is the image size of its runs per profile (the
    protocol's resolution, where budgets live); the network's own size is `external.convention.size`, reached by
    resizing inside the forward (`models_zoo.adapt`)."""
    if ":" in name:
        raise ValueError(f"variant name {name!r} must not contain ':'")

    def factory(profile: str) -> nn.Module:  # never called: `VariantSpec.build` builds external entries
        raise RuntimeError(f"{name} is an external entry: build it with VariantSpec.build")

    spec = VariantSpec(name, task, description, factory, dict(input_size), default_protocol, citation,
                       external=external)
    VARIANTS.add(name, spec)
    return spec


def get_variant(name: str) -> VariantSpec:
    return VARIANTS.get(name)
