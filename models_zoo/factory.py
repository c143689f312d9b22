"""The one entry point that turns a model name into a loaded network (timm's `create_model`, for facebench).

`--model` is a zoo variant (`facenet-baseline`) or a user's factory (`mypkg.models:build`,
`path/to/file.py:build`). `resolve_model` checks the name and the options that go with it before any
work (task, profile, input size) and says what the model is; `load_model` builds the network and loads
its weights, in eval mode on a device, with their provenance (file, sha256, card). `create_model` does
both. The runner, the transfer sources, the leaderboard's example regeneration and the perf harness all
build models here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from bench.errors import CheckpointError, FacebenchError
from bench.modelref import (DEFAULT_PROFILE, INPUT_SIZE_RANGE, USER_DEFAULT_INPUT_SIZE, USER_DEFAULT_PROTOCOL,
                            USER_PROFILE, check_model)
from models_zoo.checkpoint import load_checkpoint, model_eval, read_card, shipped_weights, training_modules
from models_zoo.registry import VARIANTS, VariantSpec
from models_zoo.user import FACTORY_WEIGHTS, build_from_factory, load_factory, load_user_checkpoint, state_dict_sha256


@dataclass
class ModelUnderTest:
    """What a run evaluates, before its weights are loaded: a zoo variant or a user's factory."""

    name: str  # the zoo variant's name, or the factory string as given (`mypkg.models:build`)
    source: str  # "zoo" or "user"
    task: str
    profile: str  # the zoo profile; USER_PROFILE for a user model
    input_size: int
    default_protocol: str
    spec: Optional[VariantSpec] = None
    factory: Optional[Callable[[], torch.nn.Module]] = None


@dataclass
class LoadedModel:
    """The network in eval mode on its device, with the provenance of its weights."""

    module: torch.nn.Module
    checkpoint: str  # the weights file, or FACTORY_WEIGHTS
    sha256: str  # of the weights file, or of the factory's state_dict serialised as safetensors
    card: dict  # the model card ({} for a user model without one)
    was_training: bool = False  # the network came in train mode and was put into eval mode on load


def resolve_model(model: str, task: Optional[str] = None, profile: Optional[str] = None,
                  input_size: Optional[int] = None) -> ModelUnderTest:
    """Resolve `--model`: a value with `:` is a user factory (imported now), anything else a zoo variant.

    `task` is required for a user model and checked against a zoo variant's; `profile` is for zoo variants
    only (default tiny); `input_size` is a user model's image size (default 64) and must agree with a
    variant's. Every mistake is a one-line `FacebenchError` before any work.
    """
    choice = check_model(model, VARIANTS, task, profile, input_size)
    factory = load_factory(model) if choice.source == "user" else None
    return ModelUnderTest(choice.name, choice.source, choice.task, choice.profile, choice.input_size,
                          choice.default_protocol, spec=choice.variant, factory=factory)


def load_model(mut: ModelUnderTest, checkpoint: Optional[str], device: torch.device) -> LoadedModel:
    """Build the network and load its weights, in eval mode on `device`.

    Zoo variants: the shipped checkpoint unless `checkpoint`, whose card must name the variant and
    profile and match the file's sha256. User models: the factory's own weights unless `checkpoint`
    (loaded strictly; a sibling card is optional and its sha256 checked when present).
    """
    if mut.source == "user":
        assert mut.factory is not None
        model = build_from_factory(mut.name, mut.factory)
        if checkpoint:
            sha, card = load_user_checkpoint(model, Path(checkpoint))
            weights = str(checkpoint)
        else:
            sha, card, weights = state_dict_sha256(model), {}, FACTORY_WEIGHTS
        was_training = bool(training_modules(model))
        return LoadedModel(model_eval(model).to(device), weights, sha, card, was_training)
    assert mut.spec is not None
    path = Path(checkpoint) if checkpoint else shipped_weights(mut.name, mut.profile)
    if path is None:
        raise CheckpointError(
            f"model {mut.name!r} has no shipped {mut.profile} weights; train them with "
            f"`facebench train --model {mut.name} --profile {mut.profile}` or pass --checkpoint"
        )
    model = mut.spec.build(mut.profile)
    card = load_checkpoint(model, path, variant=mut.name, profile=mut.profile)
    was_training = bool(training_modules(model))
    return LoadedModel(model_eval(model).to(device), str(path), card["sha256"], card, was_training)


def create_model(model: str, device: torch.device | str = "cpu", *, task: Optional[str] = None,
                 profile: Optional[str] = None, input_size: Optional[int] = None,
                 checkpoint: Optional[str] = None) -> LoadedModel:
    """Resolve and load `model` (a zoo variant or `module:function`) in eval mode on `device`."""
    mut = resolve_model(model, task=task, profile=profile, input_size=input_size)
    return load_model(mut, checkpoint, torch.device(device))


def card_for(model: str, profile: Optional[str], sha256: Optional[str] = None, checkpoint: Optional[str] = None,
             zoo: bool = True) -> dict:
    """The model card of the weights `model` was (or is) evaluated with: those of `checkpoint` when given, else the
    zoo variant's shipped weights at `profile` (`zoo`); with `sha256`, only a card of exactly those weights.
    {} when there is none (a user model without a card, weights that are not there any more)."""
    candidates = []
    if checkpoint and not str(checkpoint).startswith("none"):  # FACTORY_WEIGHTS: a factory's own weights, no file
        candidates.append(Path(checkpoint))
    if zoo and profile:
        shipped = shipped_weights(model, profile)
        if shipped is not None:
            candidates.append(shipped)
    for weights in candidates:
        try:
            card = read_card(weights)
        except FacebenchError:
            continue
        if sha256 is None or card.get("sha256") == sha256:
            return card
    return {}


def zoo_source(name: str, task: str, profile: str, input_size: int) -> Optional[str]:
    """Why zoo variant `name` cannot stand in for a model of `task` at `profile` and `input_size` (a transfer
    source, say); None when it can: same task, same input size, shipped weights at that profile."""
    if name not in VARIANTS:
        return "not a zoo model"
    spec = VARIANTS.get(name)
    if spec.task != task:
        return f"a {spec.task} model, not {task}"
    if spec.input_size.get(profile) != input_size:
        return f"takes {spec.input_size.get(profile)} px at profile {profile}, not {input_size}"
    if shipped_weights(name, profile) is None:
        return f"has no shipped {profile} weights"
    return None


__all__ = ["DEFAULT_PROFILE", "INPUT_SIZE_RANGE", "USER_DEFAULT_INPUT_SIZE", "USER_DEFAULT_PROTOCOL", "USER_PROFILE",
           "LoadedModel", "ModelUnderTest", "card_for", "create_model", "load_model", "resolve_model", "zoo_source"]
