"""The variant registry: every model the benchmark compares, registered by name (timm style)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from torch import nn

from bench.errors import BadInputError
from bench.goals import PROFILES
from bench.registry import Registry



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

    def build(self, profile: str = "tiny") -> nn.Module:
        if profile not in PROFILES:
            raise BadInputError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        return self.factory(profile)

    def parameter_count(self, profile: str = "tiny") -> int:
        """Parameters of the network at `profile`, built on the meta device (no memory, no init cost)."""
        import torch

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
) -> Callable[[Callable[[str], nn.Module]], Callable[[str], nn.Module]]:
    """Register a factory `profile -> nn.Module` as variant `name`."""
    if ":" in name:  # `--model a:b` means a user's factory, never a zoo variant
        raise ValueError(f"variant name {name!r} must not contain ':'")

    def wrap(factory: Callable[[str], nn.Module]) -> Callable[[str], nn.Module]:
        VARIANTS.add(
            name,
            VariantSpec(name, task, description, factory, dict(input_size), default_protocol, citation, recipe,
                        dict(zoo_epochs or {})),
        )
        return factory

    return wrap


def get_variant(name: str) -> VariantSpec:
    return VARIANTS.get(name)
