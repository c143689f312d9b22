"""Where the real datasets live: the environment variables that point at them, and their opened loaders.

A dataset is found at `$FACEBENCH_DATA_<NAME>` (e.g. `FACEBENCH_DATA_OULU_NPU`) or, failing that,
at `$FACEBENCH_DATA/<name>` (e.g. `$FACEBENCH_DATA/oulu-npu`).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from bench.data.real.common import DatasetError
from bench.data.real.registry import open_dataset

DATA_ENV = "FACEBENCH_DATA"


def dataset_root(name: str) -> Path:
    """Where dataset `name` lives, from the environment; a clear error when it is not configured."""
    specific = f"{DATA_ENV}_{name.upper().replace('-', '_')}"
    if os.environ.get(specific):
        return Path(os.environ[specific])
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]) / name
    raise DatasetError(
        f"dataset {name} is not configured: set {specific}=/path/to/{name} or {DATA_ENV}=/dir/holding/{name} "
        f"(see docs/real-datasets.md)"
    )


@lru_cache(maxsize=16)
def _loader(name: str, root: str) -> object:
    return open_dataset(name, root)


def loader(name: str) -> object:
    """The loader of dataset `name` at its configured root (one per root and process)."""
    return _loader(name, str(dataset_root(name)))
