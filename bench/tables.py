"""A results store as pandas tables (per sample, per cell, per run, and the per-sample best-known minimal
perturbation derived from them), their export to csv / parquet / json, and each attack's optimality against the
best-known envelope (`attack_optimality`, derived on read, not exported)."""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from bench.errors import FacebenchError
from bench.store import DEFAULT_STORE, OPTIONAL_ARRAYS, SAMPLE_ARRAYS, CellResult, ResultsStore

# what identifies a cell, in front of both the per-sample and the per-cell table
CELL_COLUMNS = ["cell_id", "run_id", "model", "profile", "protocol", "goal", "attack", "backend", "norm", "eps",
                "unreliable"]
# more of the cell's configuration, in the per-cell table
CONFIG_COLUMNS = ["params", "samples", "seed", "threshold", "threshold_rule", "eot", "unreliable_reason"]
RUN_COLUMNS = ["run_id", "status", "model", "model_name", "profile", "task", "source", "parameters", "protocol", "suite",
               "started", "ended",
               "seed", "samples", "device", "host", "threshold", "threshold_rule", "checkpoint", "checkpoint_sha256",
               "cells", "cells_planned", "cells_computed", "cells_reused", "cells_unreliable", "error", "command",
               "writer_pid", "writer_host"]
NUMERIC = {"eps", "samples", "seed", "threshold", "eot", "parameters", "cells", "cells_planned", "cells_computed", "cells_reused",
           "cells_unreliable", "writer_pid"}
FORMATS = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}  # format -> file extension (json: JSON Lines)
# what makes the per-sample results of two cells comparable: the same decision (weights, threshold) on the same
# items (the same data: the protocol's data fingerprint, "" where it has none) towards the same goal; the threshold
# is rounded to THRESHOLD_DIGITS decimals (NaN: identification, none)
BEST_KNOWN_KEY = ["model", "profile", "checkpoint_sha256", "protocol", "data", "goal", "threshold_rule", "threshold"]
BEST_KNOWN_COLUMNS = BEST_KNOWN_KEY + ["sample_id", "norm", "clean_correct", "broken", "best_eps", "exact", "attack",
                                       "cell_id", "run_id", "cell_norm", "cell_eps", "unreliable",
                                       "largest_eps_tried", "cells"]
BEST_KNOWN_NORMS = ("linf", "l2")
THRESHOLD_DIGITS = 4


@dataclass
class Results:
    """Per-sample rows (`samples`), per-cell rows (`summary`), per-run rows (`runs`) of a store, and the best-known
    minimal perturbation of each sample (`best_known`, derived from every cell of the store: see `best_known`)."""

    samples: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame
    best_known: pd.DataFrame


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

    from models_zoo.factory import model_name  # torch: only when a store is read, not when this module is imported

    run_rows = [{**r, "cells": len(r["cell_ids"]), "model_name": model_name(r)} for r in runs]
    runs_df = pd.DataFrame({k: _column([r.get(k) for r in run_rows], k) for k in RUN_COLUMNS})
    return Results(samples_df, summary_df, runs_df, best_known([store], None if ids is None else set(ids)))


# --------------------------------------------------------------------------- best-known minimal perturbation

def threshold_key(value) -> str:
    try:
        t = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if t != t else f"{round(t, THRESHOLD_DIGITS):.{THRESHOLD_DIGITS}f}"


def key_part(key: tuple, name: str) -> str:
    """One part of a `best_known_key` by its name in `BEST_KNOWN_KEY`."""
    return key[BEST_KNOWN_KEY.index(name)]


def best_known_key(cell: CellResult, run: Optional[dict] = None) -> tuple:
    """The key (`BEST_KNOWN_KEY`, threshold as rounded text) under which a cell's samples are compared with other
    cells'. The checkpoint and threshold are the cell's own, else those of `run` (a run that lists the cell)."""
    cfg, run = cell.config, run or {}
    sha = cfg.get("checkpoint_sha256") or run.get("checkpoint_sha256") or ""
    rule = cfg.get("threshold_rule") or run.get("threshold_rule") or ""
    if cfg.get("flip_tta"):  # another function of the image (`--flip-tta`): its samples are compared apart
        rule += " (flip TTA)"
    threshold = cell.attrs.get("threshold", run.get("threshold"))
    return (str(cfg.get("model", run.get("model", ""))), str(cfg.get("profile", run.get("profile", "")) or ""),
            str(sha), str(cfg.get("protocol", run.get("protocol", ""))), str(cfg.get("data", "")), str(cfg["goal"]), str(rule),
            threshold_key(threshold))


def _cells_with_runs(store: ResultsStore) -> list[tuple[CellResult, Optional[dict]]]:
    """Every cell of a store with the run it names as its writer (`run_id`), else the oldest run listing it."""
    runs = store.runs()
    by_id = {r["run_id"]: r for r in runs}
    listing: dict[str, dict] = {}
    for r in runs:
        for cid in r["cell_ids"]:
            listing.setdefault(cid, r)
    return [(c, by_id.get(str(c.attrs.get("run_id", ""))) or listing.get(c.cell_id)) for c in store.read_cells()]


def _candidates(cell: CellResult, masked: bool) -> dict[str, np.ndarray]:
    """Per sample and norm, the smallest perturbation this cell shows to reach the goal (inf: none) and whether a
    minimal-norm attack measured it (`exact`); the budget up to which it attacked the sample (0: not, or not whole-image).

    A success shows its measured norm (an upper bound on the minimal one, in both norms: the store keeps the Linf
    and L2 norms of every perturbation); a cell with `min_eps` (a minimal-norm attack) also shows that, in its
    own norm; a sample wrong on clean input is broken at 0, exactly."""
    a = cell.arrays
    clean = np.asarray(a["clean_correct"], dtype=bool)
    success = np.asarray(a["success"], dtype=bool)
    attacked = np.asarray(a["attacked"], dtype=bool)
    norm, eps = str(cell.config["norm"]), float(cell.config["eps"])
    out = {}
    for p in BEST_KNOWN_NORMS:
        value = np.where(success, np.asarray(a[p], dtype=np.float64), np.inf)
        minimal = "min_eps" in a and p == norm
        if minimal:
            value = np.minimum(value, np.asarray(a["min_eps"], dtype=np.float64))
        value = np.where(clean, value, 0.0)
        out[p] = value
        out[f"{p}_exact"] = ~clean | (minimal & np.isfinite(value))
        out[f"{p}_tried"] = np.where(attacked & (p == norm) & (not masked), eps, 0.0)
    return out


def _candidate_frame(entries: list[tuple[CellResult, Optional[dict]]]) -> tuple[pd.DataFrame, list[tuple]]:
    """One row per (cell, sample, norm) of `entries`: its group (an index into the returned keys), sample id, norm,
    value, exact flag, budget tried, clean-correct flag and cell (an index into `entries`)."""
    from attacks import declares  # only here: the attacks' registry imports torch

    keys: dict[tuple, int] = {}
    parts = []
    for i, (c, run) in enumerate(entries):
        group = keys.setdefault(best_known_key(c, run), len(keys))
        cand = _candidates(c, declares(str(c.config["attack"]), "mask_confined"))
        ids = np.asarray([str(s) for s in c.arrays["sample_id"]], dtype=object)
        clean = np.asarray(c.arrays["clean_correct"], dtype=bool)
        for p in BEST_KNOWN_NORMS:
            parts.append(pd.DataFrame({"group": group, "sample_id": ids, "norm": p, "value": cand[p],
                                       "exact": cand[f"{p}_exact"], "tried": cand[f"{p}_tried"],
                                       "clean_correct": clean, "cell": i}))
    return pd.concat(parts, ignore_index=True), list(keys)


def best_known(stores: Sequence[ResultsStore], cell_ids: Optional[set[str]] = None) -> pd.DataFrame:
    """Per (`BEST_KNOWN_KEY`, sample, norm): the smallest perturbation norm at which any cell of any run of the
    stores reached the goal (`best_eps`; inf: no attack broke it, `broken` False), whether a minimal-norm attack
    measured it (`exact`; else an upper bound from a fixed-budget attack's successful perturbation; a sample wrong
    on clean input is 0, exact), the cell that did (its attack, id, run, norm, budget, reliability; ties: exact
    first, then the first cell read; none for unbroken and clean-wrong samples), the largest
    whole-image budget of the norm any cell attacked the sample at (`largest_eps_tried`, 0: none) and how many cells
    hold the sample. Samples of different keys are never combined. Derived on every read, never stored. With
    `cell_ids`, only the rows of those cells' samples (still derived from every cell)."""
    return _best_known_of([e for st in stores for e in _cells_with_runs(st)], cell_ids)


def _best_known_of(entries: list[tuple[CellResult, Optional[dict]]], cell_ids: Optional[set[str]] = None) -> pd.DataFrame:
    """`best_known` of the cells `entries` (each with its run)."""
    if not entries:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in BEST_KNOWN_COLUMNS})
    frame, keys = _candidate_frame(entries)
    where = ["group", "sample_id", "norm"]
    grouped = frame.groupby(where, sort=False)
    frame["largest_eps_tried"] = grouped["tried"].transform("max")
    frame["all_clean"] = grouped["clean_correct"].transform("all")
    frame["cells"] = grouped["cell"].transform("size")
    frame = frame.sort_values(where + ["value", "exact", "cell"], ascending=[True, True, True, True, False, True],
                              kind="mergesort")
    best = frame.drop_duplicates(where).reset_index(drop=True)
    if cell_ids is not None:
        chosen = [i for i, (c, _) in enumerate(entries) if c.cell_id in cell_ids]
        wanted = frame.loc[frame["cell"].isin(chosen), ["group", "sample_id"]].drop_duplicates()
        best = best.merge(wanted, on=["group", "sample_id"], how="inner", sort=False)
    return _best_known_rows(best, keys, entries)


def _best_known_rows(best: pd.DataFrame, keys: list[tuple], entries: list[tuple[CellResult, Optional[dict]]]) -> pd.DataFrame:
    """The reduced candidates as the `BEST_KNOWN_COLUMNS` table (samples no attack broke, and samples wrong on clean
    input, which no attack had to break, name no cell)."""
    broken = np.isfinite(best["value"].to_numpy())
    named = broken & best["all_clean"].to_numpy(bool)
    cells = [entries[i] for i in best["cell"]]

    def of_cell(get, empty):
        return [get(*e) if b else empty for e, b in zip(cells, named)]

    out = {name: [keys[g][j] for g in best["group"]] for j, name in enumerate(BEST_KNOWN_KEY)}
    out["threshold"] = pd.to_numeric(pd.Series([t or np.nan for t in out["threshold"]], dtype=object))
    out.update({
        "sample_id": best["sample_id"].to_numpy(), "norm": best["norm"].to_numpy(),
        "clean_correct": best["all_clean"].to_numpy(bool), "broken": broken, "best_eps": best["value"].to_numpy(),
        "exact": best["exact"].to_numpy(bool) & broken,
        "attack": of_cell(lambda c, r: str(c.config["attack"]), ""), "cell_id": of_cell(lambda c, r: c.cell_id, ""),
        "run_id": of_cell(lambda c, r: str(c.attrs.get("run_id") or (r or {}).get("run_id", "")), ""),
        "cell_norm": of_cell(lambda c, r: str(c.config["norm"]), ""),
        "cell_eps": np.asarray(of_cell(lambda c, r: float(c.config["eps"]), np.nan), dtype=np.float64),
        "unreliable": np.asarray(of_cell(lambda c, r: bool(c.unreliable), False), dtype=bool),
        "largest_eps_tried": best["largest_eps_tried"].to_numpy(), "cells": best["cells"].to_numpy(np.int64),
    })
    df = pd.DataFrame(out)[BEST_KNOWN_COLUMNS]
    order = df.assign(_norm=[BEST_KNOWN_NORMS.index(n) for n in df["norm"]])  # Linf first
    order = order.sort_values(BEST_KNOWN_KEY[:-1] + ["threshold", "_norm", "sample_id"], kind="mergesort")
    return df.loc[order.index].reset_index(drop=True)


def index_best_known(table: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The rows of a `best_known` table by `best_known_key(...) + (norm,)`, each indexed by sample id."""
    keyed = table.assign(threshold=[threshold_key(t) for t in table["threshold"]])
    return {tuple(str(v) for v in k): g.set_index("sample_id")
            for k, g in keyed.groupby(BEST_KNOWN_KEY + ["norm"], sort=False)}


# --------------------------------------------------------------------------- attack optimality

OPTIMALITY_COLUMNS = BEST_KNOWN_KEY + [
    "norm", "attack", "params", "prefix", "label", "minimal", "budgets", "largest_budget", "cells", "samples",
    "clean_correct", "broken", "envelope_broken", "envelope_exact", "eps_range", "area", "envelope_area",
    "clean_area", "optimality", "budget_gap", "queries", "seconds"]


def attack_optimality(stores: Sequence[ResultsStore], known: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Each attack's optimality against the best-known envelope, in the form of AttackBench (Cinà et al. 2024,
    "AttackBench: Evaluating Gradient-based Attacks for Adversarial Examples": local optimality), one row per
    (`BEST_KNOWN_KEY`, norm, attack) of the stores (`OPTIMALITY_COLUMNS`). Derived on every read, never stored.

    An *attack* is every cell of one key with the same attack, parameters and norm (all its budgets, every run
    and store; the cell kind's own attack for a cascade), whole-image attacks on the model itself only (transfer
    cells and mask-confined attacks feed the envelope but get no row). Its samples are the union of its cells'.
    A cascade also gets a row per proper prefix of its stages (`prefix` k: the first k stages, from the stored
    per-sample `stage`; exact, since each stage ran only on what the earlier ones left and a prefix would have
    run the same; its seconds from the stored `stage_seconds`, its queries unknown: NaN); `prefix` 0 is the
    whole attack.

    Per sample, the attack's distance d_a is the smallest perturbation norm its cells show to reach the goal,
    in the attack's norm, exactly as `best_known` reads a cell: a success's measured norm, a minimal-norm
    cell's `min_eps`, 0 when wrong on clean input, inf when none of its cells broke it. The envelope's distance
    d* is the sample's `best_eps` in `best_known` (over every cell of the stores, so d* <= d_a). Robust accuracy
    at eps is the share of the attack's samples whose distance exceeds eps (clean-wrong ones count as broken
    at 0, so the curves start at clean accuracy). A fixed-budget attack is therefore credited, at every eps,
    with exactly the adversarial examples it found whose measured norm is <= eps: nothing is assumed between
    or beyond the budgets it ran (AttackBench instead searches every attack's budget per sample); its curve
    stays flat after its largest budget, so a suite that never ran an attack near eps_range cannot score 1.

    With E (`eps_range`) the largest finite best-known distance of the key's clean-correct samples in the norm
    (the eps where the envelope reaches its floor; the same E for every attack of a model and norm),
    A = integral over [0, E] of the attack's robust accuracy = mean over samples of min(d_a, E) (`area`),
    A* the same for d* (`envelope_area`) and A_clean = clean accuracy * E (`clean_area`, the curve of an
    attack that breaks nothing):

        optimality = 1 - (A - A*) / (A_clean - A*)
                   = sum over clean-correct samples of (E - min(d_a, E)) / the same sum for d*.

    This is the normalisation of AttackBench's reference code (`analysis/plot.py` of attackbench/AttackBench:
    1 - (area - best_area) / (clean_acc * max_dist - best_area), max_dist the largest best distance), with the
    areas integrated exactly (the curves are step functions; the reference integrates them with the
    trapezoidal rule). 1: the attack's curve is the envelope's on [0, E]; 0: it broke no clean-correct sample
    below E (its lowest value; never negative, since d_a >= d*). NaN where nothing was broken at a positive norm
    (E = 0) or the envelope broke none of the attack's clean-correct samples below E. Distances within
    `bench.cells.base.BUDGET_TOLERANCE` (the float rounding a measured norm may carry above its budget) of E count
    as E, so that successes at one budget measured a few float32 ulps apart do not decide the value.

    `budget_gap` reads the curves only at the budgets the attack ran: the largest, over them, of its robust
    accuracy minus the envelope's (a distance within `BUDGET_TOLERANCE` of a budget counts as at it: a search's
    `min_eps` is stored in float32) (0: at every budget it ran, it left no more samples robust than the best known;
    the view of a fixed-budget attack that does not depend on what it did between its budgets).

    `queries`: mean over the attack's clean-correct samples of their queries summed over its cells (every
    budget it ran); `seconds`: the stored compute seconds of its cells, summed. `known`: a `best_known`
    table already derived from the same stores (else derived here)."""
    entries = [e for st in stores for e in _cells_with_runs(st)]
    known = _best_known_of(entries) if known is None else known
    envelope = index_best_known(known) if len(known) else {}
    rows = []
    for (key, norm, attack, params), cells in _attack_groups(entries).items():
        part = envelope.get(key + (norm,))
        if part is not None:
            rows += _attack_rows(key, norm, cells, part)
    df = pd.DataFrame(rows, columns=OPTIMALITY_COLUMNS)
    if df.empty:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in OPTIMALITY_COLUMNS})
    order = df.assign(_norm=[BEST_KNOWN_NORMS.index(n) for n in df["norm"]])
    order = order.sort_values(BEST_KNOWN_KEY + ["_norm", "attack", "params", "prefix"], kind="mergesort")
    return df.loc[order.index].reset_index(drop=True)


def _attack_groups(entries: list[tuple[CellResult, Optional[dict]]]) -> dict[tuple, list[CellResult]]:
    """The cells of each (key, norm, attack, parameters) that gets an optimality row, each cell once."""
    from attacks import declares  # only here: the attacks' registry imports torch
    from bench.cells import kind_of

    groups: dict[tuple, list[CellResult]] = {}
    seen: set[str] = set()
    for cell, run in entries:
        cfg = cell.config
        if cell.cell_id in seen or kind_of(cfg).transfer_source(cfg) is not None or declares(str(cfg["attack"]), "mask_confined"):
            continue
        seen.add(cell.cell_id)
        params = json.dumps(cfg.get("params") or {}, sort_keys=True)
        groups.setdefault((best_known_key(cell, run), str(cfg["norm"]), str(cfg["attack"]), params), []).append(cell)
    return groups


def _attack_rows(key: tuple, norm: str, cells: list[CellResult], part: pd.DataFrame) -> list[dict]:
    """The rows of one attack (and of each proper prefix of a cascade's stages) against the envelope `part`
    (`index_best_known`'s rows of the key and norm)."""
    from bench.cells import kind_of
    from bench.cells.base import BUDGET_TOLERANCE as tol
    from bench.config import format_eps

    ids = list(dict.fromkeys(str(s) for c in cells for s in c.arrays["sample_id"]))
    where = {s: i for i, s in enumerate(ids)}
    stages = kind_of(cells[0].config).stage_attacks(cells[0].config)
    staged = len(stages) > 1 and all("stage" in c.arrays for c in cells)
    dist = np.full((len(stages) if staged else 1, len(ids)), np.inf)  # row k: the first k + 1 stages; last: all
    clean, queries = np.ones(len(ids), bool), np.zeros(len(ids))
    for c in cells:
        at = np.asarray([where[str(s)] for s in c.arrays["sample_id"]], dtype=np.int64)
        value = _candidates(c, False)[norm]
        ok = np.asarray(c.arrays["clean_correct"], dtype=bool)
        clean[at] &= ok
        queries[at] += np.asarray(c.arrays["queries"], dtype=np.float64)
        dist[-1, at] = np.minimum(dist[-1, at], value)
        stage = np.asarray(c.arrays["stage"], dtype=np.int64) if staged else None
        for k in range(dist.shape[0] - 1):
            dist[k, at] = np.minimum(dist[k, at], np.where(ok & ((stage < 1) | (stage > k + 1)), np.inf, value))
    found = part.reindex(ids)
    best, exact = found["best_eps"].to_numpy(np.float64), found["exact"].fillna(False).to_numpy(bool)
    top = _eps_range(part)
    cfg = cells[0].config
    budgets = sorted({float(c.config["eps"]) for c in cells})
    common = {**{name: key[j] for j, name in enumerate(BEST_KNOWN_KEY)}, "norm": norm, "attack": str(cfg["attack"]),
              "params": json.dumps(cfg.get("params") or {}, sort_keys=True),
              "minimal": any("min_eps" in c.arrays for c in cells),
              "budgets": ", ".join(format_eps(norm, b) for b in budgets), "largest_budget": budgets[-1],
              "cells": len(cells), "samples": len(ids), "clean_correct": int(clean.sum()),
              "envelope_broken": int((clean & np.isfinite(best)).sum()), "envelope_exact": int((clean & exact).sum()),
              "eps_range": top}
    common["threshold"] = float(common["threshold"]) if common["threshold"] else np.nan
    whole = kind_of(cfg).stored_label(cfg, detailed=True)
    rows = []
    for k in range(dist.shape[0]):
        prefix = 0 if k == dist.shape[0] - 1 else k + 1
        area, env, full = (_area(dist[k], top), _area(np.where(clean, best, 0.0), top), clean.sum() * top / len(ids))
        rows.append({**common, "prefix": prefix,
                     "label": whole if not prefix else f"{whole}, first {prefix} stage{'s' if prefix > 1 else ''}",
                     "broken": int((clean & np.isfinite(dist[k])).sum()), "area": area, "envelope_area": env,
                     "clean_area": full, "optimality": _optimality(dist[k][clean], best[clean], top),
                     "budget_gap": max(float(np.mean(dist[k] > b + tol) - np.mean(best > b + tol)) for b in budgets),
                     "queries": float(queries[clean].mean()) if clean.any() and not prefix else np.nan,
                     "seconds": _seconds(cells, prefix)})
    return rows


def _eps_range(part: pd.DataFrame) -> float:
    """E: the largest finite best-known distance of a key's clean-correct samples in one norm (0: none)."""
    v = part["best_eps"].to_numpy(np.float64)[part["clean_correct"].to_numpy(bool)]
    v = v[np.isfinite(v)]
    return float(v.max()) if len(v) else 0.0


def _optimality(dist: np.ndarray, best: np.ndarray, top: float) -> float:
    """1 - (A - A*) / (A_clean - A*) from the clean-correct samples' distances, in its per-sample form (exact when
    the attack's distances are the envelope's: 1; none below `top`: 0); NaN when the envelope has none below.
    A sample closer to `top` than the float rounding of a measured norm (`BUDGET_TOLERANCE`) counts as at it."""
    from bench.cells.base import BUDGET_TOLERANCE

    def below(d: np.ndarray) -> float:
        part = top - np.minimum(d, top)
        return float(np.sum(np.where(part > BUDGET_TOLERANCE, part, 0.0)))

    envelope = below(best)
    return below(dist) / envelope if envelope > 0 else np.nan


def _area(dist: np.ndarray, top: float) -> float:
    """The integral over [0, top] of the share of samples whose distance exceeds eps: mean of min(d, top)."""
    return float(np.minimum(dist, top).mean()) if len(dist) else np.nan


def _seconds(cells: list[CellResult], prefix: int) -> float:
    """The stored compute seconds of `cells`; for a prefix, those of their first `prefix` stages (NaN: not stored)."""
    total = 0.0
    for c in cells:
        if not prefix:
            total += float(c.summary.get("seconds", np.nan))
            continue
        per_stage = c.attrs.get("stage_seconds")
        per_stage = json.loads(per_stage) if isinstance(per_stage, str) else per_stage
        if per_stage is None:
            return np.nan
        total += float(sum(per_stage[:prefix]))
    return total


def write_tables(results: Results, out: os.PathLike | str, fmt: str) -> list[Path]:
    """Write samples.<ext>, summary.<ext>, runs.<ext> and best_known.<ext> into `out` (created if missing); each file
    appears whole."""
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
    for name, df in (("samples", results.samples), ("summary", results.summary), ("runs", results.runs),
                     ("best_known", results.best_known)):
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
    """The store as pandas DataFrames: `.samples` (one row per cell x sample), `.summary` (one row per cell),
    `.runs` (one row per run) and `.best_known` (one row per sample and norm: its best-known minimal perturbation
    over every cell of the store). With `run` (an id or unique prefix), only that run's cells, and the best-known
    rows of that run's samples (still derived from every cell of the store)."""
    return results_tables(ResultsStore(path), run)
