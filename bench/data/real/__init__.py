"""Loaders for the real FR and FAS datasets, each reading its dataset's official layout.

`DATASETS` maps a dataset name to its loader class; a loader is built with the dataset's root
folder and checks that folder up front. FAS videos are read in the facebench frame layout that
`facebench datasets prepare` writes (see `docs/real-datasets.md`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from bench.registry import Registry

DATASETS: Registry[type] = Registry("dataset")


def register_dataset(name: str) -> Callable[[type], type]:
    """Class decorator: register a loader class under `name` (and remember the name on the class)."""

    def wrap(cls: type) -> type:
        cls.name = name
        DATASETS.add(name, cls)
        return cls

    return wrap


def open_dataset(name: str, root: Path | str) -> object:
    """The loader of dataset `name` over the folder `root` (validated on construction)."""
    return DATASETS.get(name)(Path(root))


# Importing the modules registers the loaders.
from bench.data.real import casia, celeba, celeba_spoof, lfw, msu, oulu, replay  # noqa: E402,F401
from bench.data.real.common import (  # noqa: E402,F401
    DatasetError,
    FrameRecord,
    ImageRecord,
    PairRecord,
    VideoRecord,
    list_frames,
    read_image,
)
