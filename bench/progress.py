"""Progress bars on stderr, with one switch for the whole process (`--quiet`, or TQDM_DISABLE=1)."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Iterable, Optional, Union

from tqdm.auto import tqdm

_enabled = os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")


def set_enabled(enabled: bool) -> None:
    """Turn every later progress bar of this process on or off."""
    global _enabled
    _enabled = bool(enabled)


def bar(iterable: Optional[Iterable] = None, *, show: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr; hidden when `show` is false or bars are switched off for the process."""
    return tqdm(iterable, disable=not (show and _enabled), file=sys.stderr, **kwargs)


class SampleMeter:
    """A second progress bar under the cells bar: samples attacked in the current cell (or stage), with samples/s."""

    def __init__(self, show: bool) -> None:
        self.bar = bar(show=show, desc="samples", unit="sample", leave=False, position=1)

    def start(self, label: str, total: int) -> None:
        self.bar.reset(total=total)
        self.bar.set_description_str(label)

    def update(self, k: int) -> None:
        self.bar.update(k)

    def close(self) -> None:
        self.bar.close()


class RunProgress:
    """A run's progress: cells done / total, the current cell, samples per second and the time left.

    `mode` True: progress bars on stderr (cells, and samples of the current cell when cells are
    computed in this process); "json": one JSON object per line on stderr for each event (for CI
    logs); False: nothing. Samples per second count the attacked samples of the computed cells over
    the wall time of the run so far.
    """

    def __init__(self, mode: Union[bool, str], total: int, concurrent: bool = False) -> None:
        self.json = mode == "json"
        self.concurrent = concurrent  # cells run elsewhere (Ray): the bar names the last one done
        show = bool(mode) and not self.json
        self.total = total
        self.done = 0
        self.computed = 0
        self.samples = 0
        self.started = time.perf_counter()
        self.cells = bar(total=total, show=show, desc="cells", unit="cell")
        self.meter = SampleMeter(show and not concurrent)

    def _emit(self, event: dict) -> None:
        if self.json:
            print(json.dumps(event), file=sys.stderr, flush=True)

    def eta(self) -> Optional[float]:
        """Seconds left: the mean wall time of the cells computed so far times the cells left."""
        if not self.computed:
            return None
        return (time.perf_counter() - self.started) / self.computed * (self.total - self.done)

    def cell_started(self, label: str, shard: int = 0, shards: int = 1) -> None:
        """A cell (or shard) handed to the executor (computed now, or queued when `concurrent`)."""
        if not self.concurrent:
            self.cells.set_postfix_str(label if shards == 1 else f"{label} (shard {shard + 1}/{shards})")
        self._emit({"event": "cell_started", "cell": label, "shard": shard, "shards": shards,
                    "done": self.done, "total": self.total})

    def cell_done(self, label: str, computed: bool, summary: dict) -> None:
        self.done += 1
        if computed:
            self.computed += 1
            self.samples += int(summary.get("n_attacked", 0))
        if self.concurrent or not computed:
            self.cells.set_postfix_str(label, refresh=False)
        self.cells.update(1)
        eta = self.eta()
        wall = time.perf_counter() - self.started
        rate = self.samples / wall if self.computed and wall > 0 else None
        self._emit({"event": "cell_done", "cell": label, "status": "computed" if computed else "reused",
                    "done": self.done, "total": self.total, "seconds": summary.get("seconds"),
                    "robust_accuracy": summary.get("robust_accuracy"),
                    "samples_per_s": None if rate is None else round(rate, 3),
                    "eta_s": None if eta is None else round(eta, 1)})

    def run_done(self, computed: int, reused: int) -> None:
        self._emit({"event": "run_done", "computed": computed, "reused": reused,
                    "seconds": round(time.perf_counter() - self.started, 3)})

    def close(self) -> None:
        self.meter.close()
        self.cells.close()
