"""What `--model` names, and the options that go with it, checked on plain metadata (no torch).

`--model` is a zoo variant (`facenet-baseline`), a user's factory (`mypkg.models:build`,
`path/to/file.py:build`) or an ONNX file (`path/to/model.onnx`). `check_model` checks the name and the options
that go with it (task, profile, input size, `--preprocess` and an ONNX file's sidecar) against a registry of
variants whose entries have `name`, `task`, `input_size` (per profile) and `default_protocol`: the zoo's own
registry (`models_zoo.factory.resolve_model`, which then imports a user's factory) or its listing
(`bench.listings`, so that the CLI refuses a mistake before importing torch). One set of checks, one message for
each mistake.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
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


def is_onnx_ref(model: str) -> bool:
    """A `--model` value naming an ONNX file (`path/to/model.onnx`)."""
    return model.lower().endswith(".onnx") and not is_factory_ref(model)


def is_user_ref(model: str) -> bool:
    """A `--model` value naming a model of the user's own: a factory or an ONNX file."""
    return is_factory_ref(model) or is_onnx_ref(model)


CHANNEL_ORDERS = ("RGB", "BGR")
CONVENTION_KEYS = ("size", "scale", "mean", "std", "channels")


@dataclass(frozen=True)
class InputConvention:
    """What a network expects of its input, where it differs from facebench's images (float RGB in [0, 1], NCHW, at
    the run's image size): its own square input `size` (None: the run's), and its normalisation
    `(x * scale - mean) / std` per channel, in its channel order (`channels`, RGB or BGR; `mean` and `std` listed in
    that order). `models_zoo.adapt.InputAdapter` applies it inside the attacked forward, so attack budgets stay in
    facebench's [0, 1] space at the run's size."""

    size: Optional[int] = None
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channels: str = "RGB"

    def as_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    def describe(self) -> str:
        """One line: `112 px, BGR, (x * 255 - 127.5) / 127.5`."""
        def one(v: tuple) -> str:
            return f"{v[0]:g}" if len(set(v)) == 1 else "(" + ", ".join(f"{c:g}" for c in v) + ")"

        size = f"{self.size} px" if self.size else "the run's size"
        if (self.scale, self.mean, self.std) == (1.0, (0.0,) * 3, (1.0,) * 3):
            return f"{size}, {self.channels}, in [0, 1] (no normalisation)"
        return f"{size}, {self.channels}, (x * {self.scale:g} - {one(self.mean)}) / {one(self.std)}"


def _channel_values(key: str, value: Any, where: str) -> tuple[float, float, float]:
    values = value if isinstance(value, (list, tuple)) else str(value).split("/") if isinstance(value, str) else [value]
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise BadInputError(f"{where}: {key} must be a number or three numbers (one per channel), got {value!r}") from None
    if len(floats) == 1:
        floats *= 3
    if len(floats) != 3 or not all(f == f and abs(f) != float("inf") for f in floats):
        raise BadInputError(f"{where}: {key} must be a number or three numbers (one per channel), got {value!r}")
    if key == "std" and any(f == 0 for f in floats):
        raise BadInputError(f"{where}: std must not be 0, got {value!r}")
    return (floats[0], floats[1], floats[2])


def input_convention(values: dict, where: str, base: Optional[InputConvention] = None) -> InputConvention:
    """An `InputConvention` from `values` (keys of `CONVENTION_KEYS`), each one replacing `base`'s; a bad key or value
    is one `BadInputError` line naming `where`."""
    unknown = sorted(set(values) - set(CONVENTION_KEYS))
    if unknown:
        raise BadInputError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(CONVENTION_KEYS)})")
    out = asdict(base or InputConvention())
    if "size" in values:
        try:
            size = int(values["size"])
        except (TypeError, ValueError):
            raise BadInputError(f"{where}: size must be a whole number of pixels, got {values['size']!r}") from None
        if not INPUT_SIZE_RANGE[0] <= size <= INPUT_SIZE_RANGE[1] or str(size) != str(values["size"]).strip():
            raise BadInputError(f"{where}: size must be a whole number of pixels between {INPUT_SIZE_RANGE[0]} and "
                                f"{INPUT_SIZE_RANGE[1]}, got {values['size']!r}")
        out["size"] = size
    if "scale" in values:
        try:
            out["scale"] = float(values["scale"])
        except (TypeError, ValueError):
            out["scale"] = float("nan")
        if not out["scale"] > 0 or out["scale"] == float("inf"):
            raise BadInputError(f"{where}: scale must be a positive number (1 or 255, say), got {values['scale']!r}")
    for key in ("mean", "std"):
        if key in values:
            out[key] = _channel_values(key, values[key], where)
    if "channels" in values:
        channels = str(values["channels"]).upper()
        if channels not in CHANNEL_ORDERS:
            raise BadInputError(f"{where}: channels must be RGB or BGR, got {values['channels']!r}")
        out["channels"] = channels
    return InputConvention(**out)


def parse_preprocess(text: str) -> dict:
    """`--preprocess size=112,scale=255,mean=127.5,std=127.5,channels=BGR` as a dict of its keys (checked by
    `input_convention`); a per-channel value is written `a/b/c`."""
    values = {}
    for part in (p.strip() for p in text.split(",")):
        key, eq, value = part.partition("=")
        if not part or not eq or not key.strip() or not value.strip():
            raise BadInputError(f"--preprocess {text!r}: write key=value pairs separated by commas, e.g. "
                                "size=112,scale=255,mean=127.5,std=127.5,channels=BGR")
        values[key.strip()] = value.strip()
    input_convention(values, "--preprocess")
    return values


def sidecar_path(onnx_file: str) -> Path:
    """The sidecar of an ONNX file: the JSON file of the same name beside it (`model.onnx` -> `model.json`)."""
    return Path(onnx_file).with_suffix(".json")


def read_sidecar(onnx_file: str) -> dict:
    """The keys of an ONNX file's sidecar JSON ({} when there is none); a bad one is one `BadInputError` line."""
    path = sidecar_path(onnx_file)
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise BadInputError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(values, dict):
        raise BadInputError(f"{path}: must hold a JSON object with keys among {', '.join(CONVENTION_KEYS)}")
    input_convention(values, str(path))
    return values


def model_convention(model: str, preprocess: Optional[str]) -> Optional[InputConvention]:
    """The input convention of a model of the user's own: an ONNX file's sidecar, then `--preprocess` key by key
    (None when neither states one: the model takes facebench's images as they are)."""
    values = read_sidecar(model) if is_onnx_ref(model) else {}
    values.update(parse_preprocess(preprocess) if preprocess else {})
    return input_convention(values, "--preprocess") if values else None


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
    convention: Optional[InputConvention] = None  # a user model's input convention (sidecar, --preprocess)


def check_model_name(name: str, ref: str, variants: Registry) -> str:
    """`--name` of a user model, or of a zoo variant's weights of the user's own: one printable token that is not a
    zoo variant's name."""
    if not name or not name.isprintable() or any(c.isspace() for c in name):
        raise BadInputError(f"--name {name!r} must be one word without spaces (e.g. tinyfr or mypkg-fr-v2)")
    if name in variants:
        raise BadInputError(f"--name {name!r} is a zoo variant's name; give your model ({ref!r}) a name of its own")
    return name


def check_zoo_name(model: str, name: Optional[str], checkpoint: Optional[str]) -> None:
    """`--name` on a zoo variant names weights of the user's own, so it comes with `--checkpoint`: the shipped
    weights are named by the registry."""
    if name is not None and name != model and not is_user_ref(model) and checkpoint is None:
        raise BadInputError(f"--name {name} names weights of your own of zoo variant {model!r}: give them with "
                            f"--checkpoint (its shipped weights are named {model})")


WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin", ".npz", ".h5")
"""File endings of weights rather than networks: given as `--model`, they get a hint towards `--checkpoint`."""


def _file_hint(model: str) -> Optional[str]:
    """What to write instead, when `--model` names a Python file without its function or a weights file (which
    would otherwise be an unknown zoo name); None for anything else."""
    suffix = Path(model).suffix.lower()
    if suffix == ".py":
        return (f"--model {model} names a Python file: add the function that builds your network, e.g. "
                f"--model {model}:build (module:function, docs/adding-a-model.md)")
    if suffix in WEIGHTS_SUFFIXES:
        return (f"--model {model} looks like a weights file: --model names the network (a zoo variant, module:function "
                f"such as mypkg.models:build, or path/to/model.onnx) and --checkpoint {model} its weights "
                "(safetensors; docs/adding-a-model.md says how to convert a torch.save file)")
    return None


def check_model(model: str, variants: Registry, task: Optional[str] = None, profile: Optional[str] = None,
                input_size: Optional[int] = None, name: Optional[str] = None,
                preprocess: Optional[str] = None) -> ModelChoice:
    """Check `--model` and its options: `task` is required for a user model and checked against a zoo variant's;
    `profile` is for zoo variants only (default tiny); `input_size` is a user model's image size (default 64)
    and must agree with a variant's; `name` (`--name`) names a user model, or a zoo variant's weights of the user's
    own (`check_zoo_name`, called by `bench.runconfig.validate_config`, asks for `--checkpoint` then); `preprocess` (`--preprocess`) is for user models only.
    Every mistake is a one-line `FacebenchError`."""
    if task is not None and task not in TASKS:
        raise BadInputError(f"unknown task {task!r} (use fr or fas)")
    if input_size is not None and not INPUT_SIZE_RANGE[0] <= input_size <= INPUT_SIZE_RANGE[1]:
        raise BadInputError(f"--input-size must be between {INPUT_SIZE_RANGE[0]} and {INPUT_SIZE_RANGE[1]} pixels, got {input_size}")
    if is_onnx_ref(model) and not Path(model).is_file():
        raise BadInputError(f"ONNX model {model!r}: no such file")
    if is_user_ref(model):
        if task is None:
            raise BadInputError(f"--task fr or --task fas is required for a user model ({model!r}): "
                                "is it face recognition (embeddings) or anti-spoofing (liveness logit)?")
        if profile is not None:
            raise BadInputError(f"--profile applies to zoo variants only; a user model ({model!r}) is sized by itself, "
                                "and --input-size sets the image size")
        if name is not None:
            check_model_name(name, model, variants)
        return ModelChoice(model, "user", task, USER_PROFILE, input_size or USER_DEFAULT_INPUT_SIZE,
                           USER_DEFAULT_PROTOCOL[task], convention=model_convention(model, preprocess))
    if preprocess is not None:
        raise BadInputError(f"--preprocess applies to models of your own; zoo variant {model!r} normalises its input "
                            "itself")
    if name is not None and name != model:  # weights of your own of a zoo variant (`--checkpoint`), told apart by name
        check_model_name(name, model, variants)
    try:
        spec = variants.get(model)
    except UnknownNameError as e:
        hint = _file_hint(model)
        if hint:
            raise BadInputError(hint) from None
        if "." in model or "/" in model:
            raise UnknownNameError(f"{e}; a model of your own is written module:function, e.g. mypkg.models:build, "
                                   "or path/to/model.onnx") from None
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
