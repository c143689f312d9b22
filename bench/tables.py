"""A results store as pandas tables (per sample, per cell, per run), and their export to csv / parquet / json."""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from bench.errors import FacebenchError
from bench.store import DEFAULT_STORE, OPTIONAL_ARRAYS, SAMPLE_ARRAYS, ResultsStore

# what identifies a cell, in front of both the per-sample and the per-cell table
CELL_COLUMNS = ["cell_id", "run_id", "model", "profile", "protocol", "goal", "attack", "backend", "norm", "eps",
                "unreliable"]
# more of the cell's configuration, in the per-cell table
CONFIG_COLUMNS = ["params", "samples", "seed", "threshold", "threshold_rule", "eot", "unreliable_reason"]
RUN_COLUMNS = ["run_id", "status", "model", "profile", "task", "source", "protocol", "suite", "started", "ended",
               "seed", "samples", "device", "host", "threshold", "threshold_rule", "checkpoint", "checkpoint_sha256",
               "cells", "cells_planned", "cells_computed", "cells_reused", "cells_unreliable", "error", "command",
               "writer_pid", "writer_host"]
NUMERIC = {"eps", "samples", "seed", "threshold", "eot", "cells", "cells_planned", "cells_computed", "cells_reused",
           "cells_unreliable", "writer_pid"}
FORMATS = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}  # format -> file extension (json: JSON Lines)


@dataclass
class Results:
    """Per-sample rows (`samples`), per-cell rows (`summary`) and per-run rows (`runs`) of a store."""

    samples: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame


def _text(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)


def _column(values: list, name: str) -> pd.Series:
    if name == "unreliable":
        return pd.Series([bool(v) for v in values], dtype=bool)
    if name in NUMERIC:
        return pd.to_numeric(pd.Series([np.nan if v in (None, "") else v for v in values], dtype=object), errors="coerce")
    return pd.Series([_text(v) for v in values], dtype=object)


def _cell_fields(cell) -> dict:
    merged = {**cell.attrs, **cell.config}  # attrs: run_id, threshold, eot; config: what the id hashes
    merged["cell_id"] = cell.cell_id
    merged["unreliable"] = cell.unreliable
    merged["unreliable_reason"] = cell.unreliable_reason
    return merged


def results_tables(store: ResultsStore, run: Optional[str] = None) -> Results:
    """Every cell of the store (or of one run: an id or unique prefix) as the three tables."""
    runs = store.runs()
    if run is not None:
        runs = [store.run(run)]
        ids = list(dict.fromkeys(runs[0]["cell_ids"]))
    else:
        ids = None
    cells = store.read_cells(ids)

    samples = []
    for c in cells:
        n = len(c.arrays["sample_id"])
        fields = _cell_fields(c)
        part = {k: _column([fields.get(k)] * n, k) for k in CELL_COLUMNS}
        part["sample_id"] = pd.Series([str(s) for s in c.arrays["sample_id"]], dtype=object)
        for name, dtype in SAMPLE_ARRAYS.items():
            if name != "sample_id":
                part[name] = pd.Series(np.asarray(c.arrays[name], dtype=dtype))
        for name, dtype in OPTIONAL_ARRAYS.items():  # absent in a cell: NaN / <NA>
            if name in c.arrays:
                values = np.asarray(c.arrays[name], dtype=dtype)
                part[name] = pd.Series(values, dtype="Int16") if name == "stage" else pd.Series(values)
            else:
                part[name] = pd.Series([pd.NA] * n, dtype="Int16") if name == "stage" else pd.Series(np.full(n, np.nan, np.float32))
        samples.append(pd.DataFrame(part))
    sample_columns = CELL_COLUMNS + list(SAMPLE_ARRAYS) + list(OPTIONAL_ARRAYS)
    samples_df = (pd.concat(samples, ignore_index=True) if samples
                  else pd.DataFrame({k: pd.Series(dtype=object) for k in sample_columns}))

    summary_keys = list(dict.fromkeys(k for c in cells for k in c.summary))
    rows = [_cell_fields(c) for c in cells]
    summary = {k: _column([r.get(k) for r in rows], k) for k in CELL_COLUMNS + CONFIG_COLUMNS}
    for k in summary_keys:
        summary[k] = pd.to_numeric(pd.Series([c.summary.get(k, np.nan) for c in cells], dtype=object), errors="coerce")
    summary_df = pd.DataFrame(summary) if cells else pd.DataFrame({k: pd.Series(dtype=object) for k in CELL_COLUMNS + CONFIG_COLUMNS})

    run_rows = [{**r, "cells": len(r["cell_ids"])} for r in runs]
    runs_df = pd.DataFrame({k: _column([r.get(k) for r in run_rows], k) for k in RUN_COLUMNS})
    return Results(samples_df, summary_df, runs_df)


def write_tables(results: Results, out: os.PathLike | str, fmt: str) -> list[Path]:
    """Write samples.<ext>, summary.<ext> and runs.<ext> into `out` (created if missing); each file appears whole."""
    if fmt not in FORMATS:
        raise FacebenchError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise FacebenchError("--format parquet needs pyarrow (pip install pyarrow)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FacebenchError(f"--out {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FacebenchError(f"cannot create {out}: {e.strerror}") from None
    written = []
    for name, df in (("samples", results.samples), ("summary", results.summary), ("runs", results.runs)):
        path = out / f"{name}.{FORMATS[fmt]}"
        tmp = out / f".{name}.{FORMATS[fmt]}.partial"
        try:
            if fmt == "csv":
                df.to_csv(tmp, index=False)
            elif fmt == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_json(tmp, orient="records", lines=True)
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise FacebenchError(f"cannot write {path}: {e.strerror or e}") from None
        written.append(path)
    return written


def open_results(path: os.PathLike | str = DEFAULT_STORE, run: Optional[str] = None) -> Results:
    """The store as pandas DataFrames: `.samples` (one row per cell x sample), `.summary` (one row per cell) and
    `.runs` (one row per run). With `run` (an id or unique prefix), only that run's cells."""
    return results_tables(ResultsStore(path), run)
