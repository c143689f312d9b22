"""The HDF5 results store (schema v1.2, documented in docs/results-schema.md).

One file holds runs (with provenance) and cells (with per-sample arrays and a summary). The file
is opened only for the duration of one operation, so readers can look between writes. A cell is
written under a temporary name and renamed into place, so a reader never sees half a cell.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import h5py
import numpy as np

from bench import __version__
from bench.errors import StoreError

SCHEMA_VERSION = 1
SCHEMA_MINOR = 2  # 1.1: cells carry `unreliable` and `unreliable_reason` (absent in 1.0 stores: reliable);
# 1.2: cells may carry the optional per-sample datasets of OPTIONAL_ARRAYS (absent in older stores)
DEFAULT_STORE = Path("results/facebench.h5")
TMP_PREFIX = "_incomplete_"

SAMPLE_ARRAYS = {
    "sample_id": "str",
    "clean_score": np.float32,
    "adv_score": np.float32,
    "clean_correct": np.bool_,
    "attacked": np.bool_,
    "success": np.bool_,
    "linf": np.float32,
    "l2": np.float32,
    "queries": np.int64,
}
# per-sample datasets only some cells have (v1.2): minimal budgets of minimal-perturbation attacks, and
# the cascade stage that broke each sample (1-based; 0 = none)
OPTIONAL_ARRAYS = {
    "min_eps": np.float32,
    "stage": np.int16,
}


@dataclass
class CellResult:
    """One stored cell: its configuration, its per-sample arrays and its summary."""

    cell_id: str
    config: dict
    arrays: dict[str, np.ndarray]
    summary: dict
    attrs: dict = field(default_factory=dict)
    unreliable: bool = False  # an integrity check failed (bench/checks.py); `unreliable_reason` says which
    unreliable_reason: str = ""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _attr(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return ""
    return value


def _decode(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class ResultsStore:
    """A facebench HDF5 store at `path`."""

    def __init__(self, path: os.PathLike | str = DEFAULT_STORE) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ opening
    def check_writable(self) -> None:
        """Fail early (before any work) when the store cannot be created or is not ours."""
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.exists():
            if self.path.is_dir():
                raise StoreError(f"store path {self.path} is a directory, not a file")
            with self._open("r"):
                pass
            if not os.access(self.path, os.W_OK):
                raise StoreError(f"store {self.path} is not writable")
            return
        if not parent.exists():
            raise StoreError(f"cannot create store {self.path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create store {self.path}: directory {parent} is not writable")

    @contextmanager
    def _open(self, mode: str) -> Iterator[h5py.File]:
        if mode == "r" and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist (run `facebench run` first)")
        if self.path.exists() and not h5py.is_hdf5(self.path):
            raise StoreError(f"{self.path} is not an HDF5 file (refusing to read or overwrite it)")
        try:
            f = h5py.File(self.path, mode)
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot open store {self.path}: {str(e).splitlines()[0]}") from None
        try:
            self._check_schema(f, mode)
            yield f
        finally:
            f.close()

    def _check_schema(self, f: h5py.File, mode: str) -> None:
        version = f.attrs.get("schema_version")
        if version is None:
            if mode == "r" or len(f.keys()) > 0:
                raise StoreError(f"{self.path} is an HDF5 file but not a facebench store (no schema_version)")
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["schema_minor"] = SCHEMA_MINOR
            f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            f.attrs["facebench_version"] = __version__
            f.create_group("runs")
            f.create_group("cells")
            return
        if int(version) > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema v{int(version)}, newer than this facebench (v{SCHEMA_VERSION}); upgrade facebench"
            )

    # ------------------------------------------------------------------ writing
    def begin_run(self, meta: dict) -> str:
        run_id = meta.get("run_id") or new_run_id()
        with self._open("a") as f:
            g = f["runs"].create_group(run_id)
            for k, v in meta.items():
                g.attrs[k] = _attr(v)
            g.attrs["run_id"] = run_id
            g.attrs["status"] = "running"
            g.attrs["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            g.attrs["started_ns"] = time.time_ns()  # orders runs that start within the same second
            g.create_dataset("cell_ids", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype())
        return run_id

    def reopen_run(self, run_id: str, extra: Optional[dict] = None) -> None:
        """Mark an unfinished run running again (`--resume`); counts how often it was resumed."""
        with self._open("a") as f:
            g = f["runs"][run_id]
            g.attrs["status"] = "running"
            g.attrs["resumed"] = int(g.attrs.get("resumed", 0)) + 1
            for k, v in (extra or {}).items():
                g.attrs[k] = _attr(v)

    def add_cell_to_run(self, run_id: str, cell_id: str) -> None:
        with self._open("a") as f:
            ds = f["runs"][run_id]["cell_ids"]
            ds.resize((ds.shape[0] + 1,))
            ds[-1] = cell_id

    def finish_run(self, run_id: str, status: str, extra: Optional[dict] = None) -> None:
        with self._open("a") as f:
            g = f["runs"][run_id]
            g.attrs["status"] = status
            g.attrs["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            for k, v in (extra or {}).items():
                g.attrs[k] = _attr(v)

    def write_cell(self, cell: CellResult) -> None:
        """Write a whole cell under a temporary name, then rename it into place."""
        missing = set(SAMPLE_ARRAYS) - set(cell.arrays)
        if missing:
            raise ValueError(f"cell {cell.cell_id} lacks arrays {sorted(missing)}")
        unknown = set(cell.arrays) - set(SAMPLE_ARRAYS) - set(OPTIONAL_ARRAYS)
        if unknown:
            raise ValueError(f"cell {cell.cell_id} has arrays the schema does not know: {sorted(unknown)}")
        n = len(cell.arrays["sample_id"])
        with self._open("a") as f:
            cells = f["cells"]
            if cell.cell_id in cells:
                return
            tmp = TMP_PREFIX + cell.cell_id
            if tmp in cells:
                del cells[tmp]
            g = cells.create_group(tmp)
            g.attrs["config"] = json.dumps(cell.config, sort_keys=True)
            for k, v in {**cell.config, **cell.attrs}.items():
                g.attrs[k] = _attr(v)
            g.attrs["unreliable"] = bool(cell.unreliable)
            g.attrs["unreliable_reason"] = cell.unreliable_reason
            self._mark_minor(f, 2 if set(OPTIONAL_ARRAYS) & set(cell.arrays) else 1)
            for name, dtype in {**SAMPLE_ARRAYS, **{k: v for k, v in OPTIONAL_ARRAYS.items() if k in cell.arrays}}.items():
                arr = cell.arrays[name]
                if len(arr) != n:
                    raise ValueError(f"cell {cell.cell_id}: array {name} has {len(arr)} rows, expected {n}")
                if dtype == "str":
                    g.create_dataset(name, data=np.asarray(arr, dtype=object), dtype=h5py.string_dtype())
                else:
                    g.create_dataset(name, data=np.asarray(arr, dtype=dtype))
            s = g.create_group("summary")
            for k, v in cell.summary.items():
                s.attrs[k] = _attr(v)
            f.flush()
            cells.move(tmp, cell.cell_id)

    @staticmethod
    def _mark_minor(f: h5py.File, minor: int) -> None:
        """An older store that receives fields of a newer minor version says so (older readers ignore them)."""
        if int(f.attrs.get("schema_minor", 0)) < minor:
            f.attrs["schema_minor"] = minor

    def flag_cell(self, cell_id: str, reasons: list[str]) -> None:
        """Mark a stored cell unreliable, adding `reasons` to the ones it already has (no duplicates)."""
        if not reasons:
            return
        with self._open("a") as f:
            if cell_id not in f["cells"]:
                raise StoreError(f"store {self.path} has no cell {cell_id!r}")
            g = f["cells"][cell_id]
            old = [r for r in str(_decode(g.attrs.get("unreliable_reason", ""))).split("; ") if r]
            merged = old + [r for r in reasons if r not in old]
            g.attrs["unreliable_reason"] = "; ".join(merged)
            g.attrs["unreliable"] = True
            self._mark_minor(f, 1)

    # ------------------------------------------------------------------ reading
    def has_cell(self, cell_id: str) -> bool:
        if not self.path.exists():
            return False
        with self._open("r") as f:
            return cell_id in f["cells"]

    def runs(self) -> list[dict]:
        """Every run's provenance, oldest first."""
        with self._open("r") as f:
            out = []
            for run_id, g in f["runs"].items():
                meta = {k: _decode(v) for k, v in g.attrs.items()}
                meta["cell_ids"] = [c.decode() if isinstance(c, bytes) else c for c in g["cell_ids"][()]]
                out.append(meta)
        return sorted(out, key=lambda m: (m.get("started", ""), int(m.get("started_ns", 0)), m["run_id"]))

    def run(self, run_id: Optional[str] = None) -> dict:
        runs = self.runs()
        if not runs:
            raise StoreError(f"store {self.path} holds no runs")
        if run_id is None:
            return runs[-1]
        for meta in runs:
            if meta["run_id"] == run_id or meta["run_id"].startswith(run_id):
                return meta
        raise StoreError(f"store {self.path} has no run {run_id!r}")

    def read_cells(self, cell_ids: Optional[list[str]] = None, arrays: bool = True) -> list[CellResult]:
        with self._open("r") as f:
            cells = f["cells"]
            ids = [c for c in (cell_ids if cell_ids is not None else list(cells)) if not c.startswith(TMP_PREFIX)]
            out = []
            for cid in ids:
                if cid not in cells:
                    raise StoreError(f"store {self.path} has no cell {cid!r}")
                g = cells[cid]
                attrs = {k: _decode(v) for k, v in g.attrs.items()}
                config = json.loads(attrs.pop("config"))
                unreliable = bool(attrs.pop("unreliable", False))  # 1.0 stores: no checks stored, reliable
                reason = str(attrs.pop("unreliable_reason", ""))
                data = {}
                if arrays:
                    for name in [*SAMPLE_ARRAYS, *(k for k in OPTIONAL_ARRAYS if k in g)]:
                        v = g[name][()]
                        data[name] = np.asarray([s.decode() if isinstance(s, bytes) else s for s in v], dtype=object) if v.dtype == object else v
                summary = {k: _decode(v) for k, v in g["summary"].attrs.items()}
                out.append(CellResult(cid, config, data, summary, attrs, unreliable, reason))
        return out
