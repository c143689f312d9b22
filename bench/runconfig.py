"""The configuration of a run: what it computes and how it is executed; checked before any work."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Optional

from bench.errors import BadInputError
from bench.config import PRECISIONS
from bench.modelref import check_zoo_name

EXECUTORS = ("local", "ray")


@dataclass
class RunConfig:
    """Everything that defines a run; stored as JSON with it."""

    model: str
    suite: str = "quick"
    protocol: Optional[str] = None
    samples: int = 200
    seed: int = 0
    device: str = "auto"
    store: str = "results/facebench.h5"
    checkpoint: Optional[str] = None
    profile: Optional[str] = None  # zoo variants: tiny (default) or paper; not for user models
    batch_size: Optional[int] = None  # None: automatic (BatchSize: 128 on CPU, the largest that fits on CUDA)
    command: str = ""
    task: Optional[str] = None  # required for a user model (`module:function`); checked against a zoo variant's
    input_size: Optional[int] = None  # user models: default 64; zoo variants: their profile's size
    name: Optional[str] = None  # a user model's name (the CI gate's key); default: models_zoo.factory.default_model_name
    preprocess: Optional[str] = None  # a user model's input convention (`--preprocess`, over an ONNX file's sidecar)
    eot: Optional[int] = None  # EOT samples for gradients: None = 8 only when the forward pass is random; 1 = never
    shard_size: Optional[int] = None  # split each cell into shards of this many samples (None: a cell is one unit)
    executor: str = "local"  # "local" or "ray" (bench/executors.py)
    address: Optional[str] = None  # ray: the cluster to join ("auto", HOST:PORT); None starts a local Ray
    cpus_per_cell: float = 1.0  # ray: CPUs each cell (or shard) task asks for
    gpus_per_cell: Optional[float] = None  # ray: GPUs each task asks for; None: 1 when the cluster has GPUs, else 0
    resume: bool = False  # continue the newest unfinished run of this configuration in the store
    precision: str = "fp32"  # the attacks' forward pass: fp32 or bf16 autocast (bench/precision.py)
    channels_last: Optional[bool] = None  # None: on for CUDA, off for CPU
    compile: bool = False  # torch.compile the model
    fold_bn: bool = True  # attacks differentiate a BatchNorm-folded copy of the model (bench/precision.py)
    budgets_together: Optional[bool] = None  # an attack's budgets as one batch (same results; local executor); None: CUDA only
    if_needed: bool = False  # do nothing when a complete run of this configuration already holds every cell
    flip_tta: bool = False  # FR: the model's embedding of an image and of its mirror image summed, then L2-normalised


# fields of RunConfig that say how a run is executed, not what it computes: a resumed run may change them
EXECUTION_FIELDS = ("command", "store", "executor", "address", "cpus_per_cell", "gpus_per_cell", "resume", "if_needed",
                    "budgets_together")


def stored_config(meta: dict) -> dict:
    """A stored run's configuration (its `config`: JSON text, or a mapping), {} when it cannot be read."""
    raw = meta.get("config") or "{}"
    try:
        cfg = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def same_run(meta: dict, cfg: RunConfig) -> bool:
    """Whether a stored run was made with the configuration of `cfg` (ignoring how it is executed)."""
    try:
        stored = json.loads(meta["config"]) if isinstance(meta.get("config"), str) else dict(meta.get("config") or {})
    except ValueError:
        return False
    # an option added after the run was stored counts as its default there
    defaults = {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING}
    stored = {**{k: v for k, v in defaults.items() if k not in stored}, **stored}
    return {k: v for k, v in stored.items() if k not in EXECUTION_FIELDS} == \
        {k: v for k, v in asdict(cfg).items() if k not in EXECUTION_FIELDS}


def validate_config(cfg: RunConfig) -> None:
    """The numeric and execution options, and `--name` on a zoo variant without `--checkpoint`, refused before any
    work."""
    check_zoo_name(cfg.model, cfg.name, cfg.checkpoint)
    if cfg.samples < 1:
        raise BadInputError(f"--samples must be at least 1, got {cfg.samples}")
    if cfg.batch_size is not None and cfg.batch_size < 1:
        raise BadInputError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.eot is not None and cfg.eot < 1:
        raise BadInputError(f"--eot must be at least 1 (1 = no EOT), got {cfg.eot}")
    if cfg.precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {cfg.precision!r} (use {' or '.join(PRECISIONS)})")
    if cfg.shard_size is not None and cfg.shard_size < 1:
        raise BadInputError(f"--shard-size must be at least 1 sample, got {cfg.shard_size}")
    check_executor(cfg)


def check_executor(cfg: RunConfig) -> None:
    """The executor options of a RunConfig, refused before any work."""
    if cfg.executor not in EXECUTORS:
        raise BadInputError(f"unknown executor {cfg.executor!r} (use {' or '.join(EXECUTORS)})")
    if cfg.executor != "ray":
        if cfg.address is not None:
            raise BadInputError("--address applies to --executor ray only")
        return
    if not cfg.cpus_per_cell > 0:
        raise BadInputError(f"--cpus-per-cell must be positive, got {cfg.cpus_per_cell}")
    if cfg.gpus_per_cell is not None and cfg.gpus_per_cell < 0:
        raise BadInputError(f"--gpus-per-cell must be 0 or more, got {cfg.gpus_per_cell}")
    if importlib.util.find_spec("ray") is None:
        raise BadInputError("--executor ray needs Ray, which is not installed: pip install 'facebench[ray]'") from None
