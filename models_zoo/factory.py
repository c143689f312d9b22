"""The one entry point that turns a model name into a loaded network (timm's `create_model`, for facebench).

`--model` is a zoo variant (`facenet-baseline`, or an external entry such as `dlib-resnet`, whose weights come
from an installed package), a user's factory (`mypkg.models:build`, `path/to/file.py:build`) or an ONNX file
(`path/to/model.onnx`). `resolve_model` checks the name and the options that go with it before any work (task,
profile, input size, the user model's `--name` and `--preprocess`) and says what the model is; `load_model` builds
the network and loads its weights, in eval mode on a device, with their provenance (file, sha256, card); a model
that takes another input size or normalisation than facebench's images is wrapped in its input convention
(`models_zoo.adapt`); seeded with the run's seed, a factory's own random weights are those of the run.
`create_model` does both.
The runner, the transfer sources, the leaderboard's example regeneration and the perf harness all build
models here. `model_name` is a model's name as the CI gate identifies it (a zoo variant's registry name or the
`--name` of its weights of the user's own, a user model's `--name` or `default_model_name` of its factory string),
for a model resolved now or a stored run.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import torch

from bench.config import seed_everything
from bench.errors import CheckpointError, FacebenchError
from bench.modelref import (DEFAULT_PROFILE, INPUT_SIZE_RANGE, USER_DEFAULT_INPUT_SIZE, USER_DEFAULT_PROTOCOL,
                            USER_PROFILE, InputConvention, check_model, is_onnx_ref)
from bench.modelref import check_model_name as _check_model_name
from models_zoo.adapt import InputAdapter
from models_zoo.checkpoint import load_checkpoint, model_eval, read_card, shipped_weights, training_modules
from models_zoo.registry import VARIANTS, VariantSpec
from models_zoo.user import (FACTORY_WEIGHTS, FactoryRef, build_from_factory, is_factory_ref, load_factory,
                             load_user_checkpoint, state_dict_sha256)


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
    model_name: str = ""  # what the CI gate identifies it by: the zoo variant's name, a user model's --name or default
    convention: Optional[InputConvention] = None  # a user model's stated input convention (sidecar, --preprocess)

    @property
    def onnx(self) -> bool:
        """An ONNX file of the user's."""
        return self.source == "user" and is_onnx_ref(self.name)


def default_model_name(ref: str) -> str:
    """A user model's name when `--name` is not given: its factory string without the directories a checkout
    puts it under, so the same file named from anywhere has one name (`../mine/tinyfr.py:build` -> `tinyfr:build`;
    `mypkg.models:build` stays as it is; an ONNX file: its file name, `../mine/arcface.onnx` -> `arcface.onnx`)."""
    if is_onnx_ref(ref):
        return Path(ref).name
    try:
        parsed = FactoryRef.parse(ref)
    except FacebenchError:
        return ref
    if not parsed.is_path:
        return ref
    return f"{Path(parsed.module).stem}:{parsed.attr}"


def check_model_name(name: str, ref: str) -> str:
    """`--name` of a user model: one printable token that is not a zoo variant's name (`bench.modelref`)."""
    return _check_model_name(name, ref, VARIANTS)


def model_name(run: dict) -> str:
    """The name a stored run's model is identified by (runs stored before names were: derived the same way)."""
    model = str(run.get("model", ""))
    if run.get("source") == "user" or (run.get("source") is None and is_factory_ref(model)):
        return str(run.get("model_name") or default_model_name(model))
    return str(run.get("model_name") or model)  # a zoo variant, or its weights of the user's own under `--name`


@dataclass
class LoadedModel:
    """The network in eval mode on its device, with the provenance of its weights."""

    module: torch.nn.Module
    checkpoint: str  # the weights file, or FACTORY_WEIGHTS
    sha256: str  # of the weights file, or of the factory's state_dict serialised as safetensors
    card: dict  # the model card ({} for a user model without one; an external entry's card as data)
    was_training: bool = False  # a user's network came in train mode and was put into eval mode on load (zoo: never)

    def parameter_count(self) -> int:
        """Parameters of the loaded network (a user model's count, which the leaderboard cannot get otherwise)."""
        return int(sum(t.numel() for t in self.module.parameters()))


def resolve_model(model: str, task: Optional[str] = None, profile: Optional[str] = None,
                  input_size: Optional[int] = None, name: Optional[str] = None,
                  preprocess: Optional[str] = None) -> ModelUnderTest:
    """Resolve `--model`: a value with `:` is a user factory (imported now), one ending in `.onnx` an ONNX file,
    anything else a zoo variant.

    `task` is required for a user model and checked against a zoo variant's; `profile` is for zoo variants
    only (default tiny); `input_size` is a user model's image size (default 64) and must agree with a
    variant's; `name` is a user model's name (default: `default_model_name`) or that of a zoo variant's weights of
    the user's own (default: the variant's); `preprocess` (`--preprocess`) a user model's input convention, over an
    ONNX file's sidecar. Every mistake is a one-line `FacebenchError` before any work.
    """
    choice = check_model(model, VARIANTS, task, profile, input_size, name, preprocess)
    if choice.source == "user":
        factory = None if is_onnx_ref(model) else load_factory(model)
        return ModelUnderTest(model, "user", choice.task, USER_PROFILE, choice.input_size, choice.default_protocol,
                              factory=factory, model_name=default_model_name(model) if name is None else name,
                              convention=choice.convention)
    return ModelUnderTest(choice.name, "zoo", choice.task, choice.profile, choice.input_size, choice.default_protocol,
                          spec=choice.variant, model_name=choice.name if name is None else name)


def load_model(mut: ModelUnderTest, checkpoint: Optional[str], device: torch.device,
               seed: Optional[int] = None, flip_tta: bool = False) -> LoadedModel:
    """Build the network and load its weights, in eval mode on `device`.

    Zoo variants: the shipped checkpoint unless `checkpoint`, whose card must name the variant and
    profile and match the file's sha256. User models: the factory's own weights unless `checkpoint`
    (loaded strictly; a sibling card is optional and its sha256 checked when present). With `seed`,
    Python's, NumPy's and torch's generators are seeded with it just before the network is built, as a
    run does (so a factory's random weights are the run's wherever the model is rebuilt: a Ray worker,
    the leaderboard's examples). With `flip_tta` (face recognition), the module is the network inside
    `models_zoo.tta.FlipTTA`; checkpoint, sha256 and card stay the weights'.
    """
    loaded = _load_model(mut, checkpoint, device, seed)
    if flip_tta:
        from models_zoo.tta import FlipTTA

        loaded = replace(loaded, module=FlipTTA(loaded.module).eval())
    return loaded


def _load_model(mut: ModelUnderTest, checkpoint: Optional[str], device: torch.device,
                seed: Optional[int]) -> LoadedModel:
    if seed is not None:
        seed_everything(seed)
    if mut.onnx:
        return _load_onnx(mut, checkpoint, device)
    if mut.source == "user":
        assert mut.factory is not None
        model = build_from_factory(mut.name, mut.factory)
        if checkpoint:
            sha, card = load_user_checkpoint(model, Path(checkpoint))
            weights = str(checkpoint)
        else:
            sha, card, weights = state_dict_sha256(model), {}, FACTORY_WEIGHTS
        was_training = bool(training_modules(model))
        if mut.convention is not None:
            model = InputAdapter(model, mut.convention)
        return LoadedModel(model_eval(model).to(device), weights, sha, card, was_training)
    assert mut.spec is not None
    if mut.spec.external is not None:
        return _load_external(mut, checkpoint, device)
    path = Path(checkpoint) if checkpoint else shipped_weights(mut.name, mut.profile)
    if path is None:
        raise CheckpointError(
            f"model {mut.name!r} has no shipped {mut.profile} weights; train them with "
            f"`facebench train --model {mut.name} --profile {mut.profile}` or pass --checkpoint"
        )
    # built in eval mode: a new nn.Module starts in train mode, which is no sign of a model left training (the notice
    # `was_training` is for a user's factory that returns one)
    model = mut.spec.build(mut.profile).eval()
    card = load_checkpoint(model, path, variant=mut.name, profile=mut.profile)
    return LoadedModel(model_eval(model).to(device), str(path), card["sha256"], card, bool(training_modules(model)))


def _load_onnx(mut: ModelUnderTest, checkpoint: Optional[str], device: torch.device) -> LoadedModel:
    """An ONNX file converted and checked (`models_zoo.onnx_model`); its sha256 is the file's."""
    from models_zoo.onnx_model import load_onnx

    if checkpoint:
        raise CheckpointError(f"--checkpoint does not apply to an ONNX model ({mut.name!r}): its weights are in the file")
    model, sha, convention = load_onnx(Path(mut.name), mut.convention, mut.task, mut.input_size)
    return LoadedModel(model_eval(model).to(device), str(mut.name), sha, {"preprocess": convention.as_dict()})


def _load_external(mut: ModelUnderTest, checkpoint: Optional[str], device: torch.device) -> LoadedModel:
    """An external entry built from its installed package's weights (`models_zoo.packaged`), with its card as data."""
    from models_zoo.packaged import external_weights

    ext = mut.spec.external
    if checkpoint:
        raise CheckpointError(f"model {mut.name!r} reads its weights from the package {ext.distribution}; "
                              "--checkpoint does not apply")
    model = mut.spec.build(mut.profile).eval()
    path = external_weights(mut.name, ext)
    return LoadedModel(model_eval(model).to(device), str(path), ext.sha256, {"variant": mut.name, **ext.card()})


def create_model(model: str, device: torch.device | str = "cpu", *, task: Optional[str] = None,
                 profile: Optional[str] = None, input_size: Optional[int] = None,
                 checkpoint: Optional[str] = None, seed: Optional[int] = None,
                 preprocess: Optional[str] = None) -> LoadedModel:
    """Resolve and load `model` (a zoo variant, `module:function` or an ONNX file) in eval mode on `device` (`seed`:
    as `load_model`; `preprocess`: a user model's input convention, as `--preprocess`)."""
    mut = resolve_model(model, task=task, profile=profile, input_size=input_size, preprocess=preprocess)
    return load_model(mut, checkpoint, torch.device(device), seed)


def card_for(model: str, profile: Optional[str], sha256: Optional[str] = None, checkpoint: Optional[str] = None,
             zoo: bool = True) -> dict:
    """The model card of the weights `model` was (or is) evaluated with: those of `checkpoint` when given, else the
    zoo variant's shipped weights at `profile` (`zoo`); with `sha256`, only a card of exactly those weights.
    {} when there is none (a user model without a card, weights that are not there any more). An external entry's card
    is its record's (`bench.external.ExternalWeights.card`)."""
    spec = VARIANTS.get(model) if zoo and model in VARIANTS else None
    if spec is not None and spec.external is not None:
        card = {"variant": model, **spec.external.card()}
        return card if sha256 is None or sha256 == card["sha256"] else {}
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
           "LoadedModel", "ModelUnderTest", "card_for", "check_model_name", "create_model", "default_model_name",
           "load_model", "model_name", "resolve_model", "zoo_source"]
