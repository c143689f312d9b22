"""What `--model` names, and the options that go with it, checked on plain metadata (no torch).

`--model` is a zoo variant (`facenet-baseline`) or a user's factory (`mypkg.models:build`,
`path/to/file.py:build`). `check_model` checks the name and the options that go with it (task, profile,
input size) against a registry of variants whose entries have `name`, `task`, `input_size` (per profile) and
`default_protocol`: the zoo's own registry (`models_zoo.factory.resolve_model`, which then imports a user's
factory) or its listing (`bench.listings`, so that the CLI refuses a mistake before importing torch). One
set of checks, one message for each mistake.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from bench.errors import BadInputError, UnknownNameError
from bench.goals import TASKS
from bench.registry import Registry

USER_DEFAULT_PROTOCOL = {"fr": "synth-fr", "fas": "synth-oulu"}
USER_DEFAULT_INPUT_SIZE = 64  # the tiny embedded world
USER_PROFILE = "user"  # what a user model's runs and cells store as their profile
INPUT_SIZE_RANGE = (16, 1024)
DEFAULT_PROFILE = "tiny"


def is_factory_ref(model: str) -> bool:
    """A `--model` value naming a user factory (it has a `:`) rather than a zoo variant."""
    return ":" in model


@dataclass(frozen=True)
class ModelChoice:
    """A checked `--model` with its options: what it is, before anything is imported or loaded."""

    name: str  # the zoo variant's name, or the factory string as given
    source: str  # "zoo" or "user"
    task: str
    profile: str  # the zoo profile; USER_PROFILE for a user model
    input_size: int
    default_protocol: str
    variant: Any = None  # the registry's entry for a zoo variant


def check_model_name(name: str, ref: str, variants: Registry) -> str:
    """`--name` of a user model: one printable token that is not a zoo variant's name."""
    if not name or not name.isprintable() or any(c.isspace() for c in name):
        raise BadInputError(f"--name {name!r} must be one word without spaces (e.g. tinyfr or mypkg-fr-v2)")
    if name in variants:
        raise BadInputError(f"--name {name!r} is a zoo variant's name; give your model ({ref!r}) a name of its own")
    return name


def check_model(model: str, variants: Registry, task: Optional[str] = None, profile: Optional[str] = None,
                input_size: Optional[int] = None, name: Optional[str] = None) -> ModelChoice:
    """Check `--model` and its options: `task` is required for a user model and checked against a zoo variant's;
    `profile` is for zoo variants only (default tiny); `input_size` is a user model's image size (default 64)
    and must agree with a variant's; `name` (`--name`) is for user models only. Every mistake is a one-line
    `FacebenchError`."""
    if task is not None and task not in TASKS:
        raise BadInputError(f"unknown task {task!r} (use fr or fas)")
    if input_size is not None and not INPUT_SIZE_RANGE[0] <= input_size <= INPUT_SIZE_RANGE[1]:
        raise BadInputError(f"--input-size must be between {INPUT_SIZE_RANGE[0]} and {INPUT_SIZE_RANGE[1]} pixels, got {input_size}")
    if is_factory_ref(model):
        if task is None:
            raise BadInputError(f"--task fr or --task fas is required for a user model ({model!r}): "
                                "is it face recognition (embeddings) or anti-spoofing (liveness logit)?")
        if profile is not None:
            raise BadInputError(f"--profile applies to zoo variants only; a user model ({model!r}) is sized by its "
                                "factory, and --input-size sets the image size")
        if name is not None:
            check_model_name(name, model, variants)
        return ModelChoice(model, "user", task, USER_PROFILE, input_size or USER_DEFAULT_INPUT_SIZE,
                           USER_DEFAULT_PROTOCOL[task])
    if name is not None and name != model:
        raise BadInputError(f"--name applies to models of your own; zoo variant {model!r} is named by the registry")
    try:
        spec = variants.get(model)
    except UnknownNameError as e:
        if "." in model or "/" in model:
            raise UnknownNameError(f"{e}; a model of your own is written module:function, e.g. mypkg.models:build") from None
        raise
    profile = profile or DEFAULT_PROFILE
    if profile not in spec.input_size:
        raise BadInputError(f"unknown profile {profile!r} (known: {', '.join(spec.input_size)})")
    if task is not None and task != spec.task:
        raise BadInputError(f"--task {task} disagrees with zoo variant {spec.name!r}, a {spec.task} model")
    size = spec.input_size[profile]
    if input_size is not None and input_size != size:
        raise BadInputError(f"--input-size {input_size} disagrees with zoo variant {spec.name!r}, which takes "
                            f"{size} px at profile {profile} (--input-size is for user models)")
    return ModelChoice(spec.name, "zoo", spec.task, profile, size, spec.default_protocol, spec)


def check_protocol_task(model: Any, protocol: str, protocol_task: str) -> None:
    """A protocol serves one task: refuse `protocol` for `model` (anything with `name`, `task` and `source`, such as
    a `ModelChoice`) of the other task."""
    if protocol_task != model.task:
        flag = f" (--task {model.task})" if model.source == "user" else ""
        raise BadInputError(f"protocol {protocol!r} is for {protocol_task} models but {model.name!r} is a "
                            f"{model.task} model{flag}")


def check_flip_tta(model: Any, flip_tta: bool) -> None:
    """Flip test-time augmentation (`--flip-tta`) averages embeddings: refuse it for `model` (anything with `name`
    and `task`) when it is not a face-recognition model."""
    if flip_tta and model.task != "fr":
        raise BadInputError(f"--flip-tta sums the embeddings of an image and its mirror image: it is for fr models, "
                            f"and {model.name!r} is a {model.task} model")
