"""The registry of real-dataset loaders: a dataset name -> its loader class.

A loader module registers itself with `register_dataset` when imported; `bench.data.real` imports
every loader, so the registry is complete whichever module of the package is imported first.
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
