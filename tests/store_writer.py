"""A store writer process for the crash and concurrency tests (imports only the store, not torch).

    python tests/store_writer.py STORE --tag T --cells N [--samples S] [--kill-at PHASE:K] [--notice S] [--pause S]

Begins a run, writes N cells (each with its run entry, in one transaction), finishes the run. Prints
`ready`, `run <id>`, `cell <id>` after each committed cell and `done`, flushing every line. With
--kill-at it SIGKILLs itself at the K-th event of PHASE after the run began: `dataset` (h5py is
writing a cell into the in-memory copy), `write` (half of the new file is on disk), `replace` (the new
file is complete, not yet renamed) or `renamed` (renamed over the store, directory not yet synced).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import store as store_module  # noqa: E402
from bench.store import CellResult, ResultsStore, cell_id_of  # noqa: E402


def make_cell(tag: str, i: int, n: int = 200) -> CellResult:
    """A complete, deterministic cell whose id is the hash of its config (so that verify accepts it)."""
    rng = np.random.default_rng([ord(c) for c in tag] + [i])
    goal = ["dodging", "impersonation"][i % 2]
    arrays = {
        "sample_id": np.asarray([f"g:{tag}/{goal}/s{j}" for j in range(n)], dtype=object),  # shared by a goal's cells
        "clean_score": rng.normal(size=n).astype(np.float32),
        "adv_score": rng.normal(size=n).astype(np.float32),
        "clean_correct": rng.uniform(size=n) > 0.3,
        "attacked": rng.uniform(size=n) > 0.3,
        "success": rng.uniform(size=n) > 0.5,
        "linf": rng.uniform(size=n).astype(np.float32),
        "l2": rng.uniform(size=n).astype(np.float32),
        "queries": rng.integers(0, 10, size=n),
    }
    config = {"model": f"m-{tag}", "profile": "tiny", "protocol": "synth-fr", "goal": goal,
              "attack": ["pgd", "fgsm"][i % 2], "backend": "native", "params": {"steps": 10}, "norm": "linf",
              "eps": (1 + i % 4) / 255, "samples": n, "seed": i}
    summary = {"n": n, "n_attacked": int(arrays["attacked"].sum()), "asr": 0.5, "clean_accuracy": 0.7,
               "robust_accuracy": 0.4, "seconds": 0.1}
    return CellResult(cell_id_of(config), config, arrays, summary, {"run_id": "", "threshold": 0.5})


def run_meta(tag: str) -> dict:
    return {"model": f"m-{tag}", "protocol": "synth-fr", "suite": "quick", "profile": "tiny", "config": {"tag": tag}}


def _arm(phase: str, k: int) -> None:
    """SIGKILL this process at the k-th event of `phase` from now on."""
    count = {"n": 0}

    def hit() -> None:
        count["n"] += 1
        if count["n"] == k:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    if phase == "write":
        real_write = store_module._write_new

        def write(path, data, mode):
            if count["n"] + 1 == k:  # the new file is half on disk when the writer dies
                with open(path, "xb") as f:
                    f.write(data[: len(data) // 2])
                    f.flush()
                    os.fsync(f.fileno())
            hit()
            real_write(path, data, mode)
        store_module._write_new = write
    elif phase == "dataset":
        import h5py

        real_create = h5py.Group.create_dataset

        def create_dataset(self, *a, **kw):
            out = real_create(self, *a, **kw)
            hit()
            return out
        h5py.Group.create_dataset = create_dataset
    elif phase in ("replace", "renamed"):
        real_replace = os.replace

        def replace(src, dst, **kw):
            if phase == "replace":
                hit()
            real_replace(src, dst, **kw)
            if phase == "renamed":
                hit()
        os.replace = replace
    else:
        raise SystemExit(f"unknown phase {phase}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--cells", type=int, default=50)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--kill-at", default=None)
    ap.add_argument("--notice", type=float, default=None)
    ap.add_argument("--pause", type=float, default=0.0, help="seconds between cells")
    args = ap.parse_args()
    if args.notice is not None:
        store_module.LOCK_NOTICE_S = args.notice
    st = ResultsStore(args.store)
    print("ready", flush=True)
    run_id = st.begin_run(run_meta(args.tag))
    print(f"run {run_id}", flush=True)
    if args.kill_at:
        phase, k = args.kill_at.split(":")
        _arm(phase, int(k))
    for i in range(args.cells):
        cell = make_cell(args.tag, i, args.samples)
        st.write_cell(cell, run_id=run_id)
        print(f"cell {cell.cell_id}", flush=True)
        time.sleep(args.pause)
    st.finish_run(run_id, "complete")
    print("done", flush=True)


if __name__ == "__main__":
    main()
