"""Progress on stderr, with one switch for the whole process (`--quiet`, or TQDM_DISABLE=1).

On a terminal: tqdm bars. When stderr is not a terminal (a CI log, a pipe, a file): plain lines, one every
`line_interval()` seconds at most (FACEBENCH_PROGRESS_INTERVAL, default 30) and one when a bar finishes, with no
carriage returns and no ANSI escape codes. Log lines and notices go through `notice`, so that they stand on
their own line between the bars. Long attacks report the steps (or queries) they have done with `report_steps`;
the samples bar of the cell being computed shows them with the cell's time left (`SampleMeter.chunk`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, Optional, Union

from tqdm.auto import tqdm

_enabled = os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")
LINE_INTERVAL = 30.0  # seconds between two plain progress lines of one bar when stderr is not a terminal
STEPS_REFRESH = 0.5  # seconds between two redraws of a bar for an attack's steps (on a terminal)


def set_enabled(enabled: bool) -> None:
    """Turn every later progress bar of this process on or off."""
    global _enabled
    _enabled = bool(enabled)


def line_interval() -> float:
    """Seconds between two plain progress lines of one bar (FACEBENCH_PROGRESS_INTERVAL overrides the default)."""
    try:
        return max(0.0, float(os.environ.get("FACEBENCH_PROGRESS_INTERVAL", LINE_INTERVAL)))
    except ValueError:
        return LINE_INTERVAL


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def format_seconds(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    s = int(round(max(seconds, 0.0)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class LineBar:
    """A progress bar for a log that is not a terminal: the subset of tqdm's interface facebench uses, written as
    whole lines (`desc: n/total unit [elapsed<left, postfix]`), at most one per `interval` seconds, plus one when
    the bar reaches its total and one on close if it changed since its last line."""

    def __init__(self, iterable: Optional[Iterable] = None, *, disable: bool = False, desc: str = "",
                 total: Optional[float] = None, unit: str = "it", interval: Optional[float] = None, **_ignored) -> None:
        self.iterable = iterable
        self.disable = disable
        self.desc = desc or ""
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.unit = unit
        self.interval = line_interval() if interval is None else interval
        self.n = 0
        self.postfix = ""
        self.started = time.perf_counter()
        self.last_line = -float("inf")
        self.dirty = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "LineBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def format(self) -> str:
        elapsed = time.perf_counter() - self.started
        unit = self.unit if self.unit.endswith("s") else self.unit + "s"
        if self.total:
            left = elapsed / self.n * (self.total - self.n) if self.n else None
            count = f"{self.n:g}/{self.total:g} {unit}"
            when = f"{format_seconds(elapsed)}<{'?' if left is None else format_seconds(left)}"
        else:
            count, when = f"{self.n:g} {unit}", format_seconds(elapsed)
        return f"{self.desc}: {count} [{when}{', ' + self.postfix if self.postfix else ''}]"

    def _maybe_print(self, force: bool = False) -> None:
        self.dirty = True
        if self.disable:
            return
        now = time.perf_counter()
        if force or now - self.last_line >= self.interval:
            print(self.format(), file=sys.stderr, flush=True)
            self.last_line = now
            self.dirty = False

    def update(self, n: float = 1) -> None:
        self.n += n
        self._maybe_print(force=bool(self.total) and self.n >= self.total)

    def reset(self, total: Optional[float] = None) -> None:
        self.n, self.total, self.postfix, self.dirty = 0, total, "", False
        self.started = time.perf_counter()

    def refresh(self) -> None:
        self._maybe_print()

    def set_description_str(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s
        if refresh:
            self._maybe_print()

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in items.items()), refresh)

    def close(self) -> None:
        if self.dirty and not self.disable:
            self._maybe_print(force=True)
        self.disable = True


def bar(iterable: Optional[Iterable] = None, *, show: bool = True, **kwargs) -> "tqdm | LineBar":
    """A progress bar on stderr: a tqdm bar on a terminal, plain lines (`LineBar`) elsewhere; hidden when `show` is
    false or bars are switched off for the process."""
    disable = not (show and _enabled)
    if not stderr_is_terminal():
        return LineBar(iterable, disable=disable, **kwargs)
    kwargs.pop("interval", None)
    return tqdm(iterable, disable=disable, file=sys.stderr, **kwargs)


def notice(line: str) -> None:
    """A log line or notice on stderr, on a line of its own: on a terminal, tqdm lifts its bars, writes the line and
    redraws them (a plain print would glue the line to a bar)."""
    if stderr_is_terminal():
        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- steps inside an attack

StepCallback = Callable[[int, int, str], None]
_steps: ContextVar[Optional[StepCallback]] = ContextVar("facebench_attack_steps", default=None)


def report_steps(done: int, total: int, unit: str = "steps") -> None:
    """Called by a long attack once per iteration of its loop: `done` of `total` steps (or queries) of the batch it
    is attacking. Cheap (a context lookup) when nobody listens; whoever listens throttles what it shows."""
    callback = _steps.get()
    if callback is not None:
        callback(done, total, unit)


@contextmanager
def steps_to(callback: Optional[StepCallback]) -> Iterator[None]:
    """Within the block, `report_steps` calls `callback` (None: nobody listens)."""
    token = _steps.set(callback)
    try:
        yield
    finally:
        _steps.reset(token)


@contextmanager
def part_of_steps(k: int, n: int) -> Iterator[None]:
    """Within the block, the steps an inner attack reports count as the k-th of n equal parts of the enclosing
    attack's (an attack that runs another one n times: APGD aimed at n targets in turn)."""
    outer = _steps.get()
    if outer is None or n <= 1:
        yield
        return
    with steps_to(lambda done, total, unit: outer(k * total + done, n * total, unit)):
        yield


class SampleMeter:
    """A second progress bar under the cells bar: samples attacked in the current cell (or stage), with samples/s;
    within a batch, the steps (or queries) a long attack reports and the cell's time left."""

    def __init__(self, show: bool) -> None:
        self.bar = bar(show=show, desc="samples", unit="sample", leave=False, position=1)
        self.started = time.perf_counter()
        self.shown = -float("inf")

    def start(self, label: str, total: int) -> None:
        self.bar.reset(total=total)
        self.bar.set_description_str(label)
        self.started = time.perf_counter()
        self.shown = -float("inf")

    def update(self, k: int) -> None:
        self.bar.set_postfix_str("", refresh=False)
        self.bar.update(k)

    @contextmanager
    def chunk(self, n: int) -> Iterator[None]:
        """Attacking a batch of `n` samples of the cell (or cascade stage) the bar counts: the steps the attack reports
        are shown with its time left (the samples done plus this batch's share of its steps, over the wall time since
        `start`)."""
        with steps_to(lambda done, total, unit: self.steps(n, done, total, unit)):
            yield

    def steps(self, n: int, done: int, total: int, unit: str) -> None:
        """Show `done` of `total` steps of a batch of `n` samples (at most every STEPS_REFRESH seconds)."""
        now = time.perf_counter()
        if self.bar.disable or now - self.shown < STEPS_REFRESH or total <= 0:
            return
        self.shown = now
        text = f"{unit} {done}/{total}"
        cell_total = self.bar.total or 0
        fraction = (self.bar.n + n * min(done, total) / total) / cell_total if cell_total else 0.0
        if fraction > 0:
            text += f", ETA ~{format_seconds((now - self.started) * (1 - fraction) / fraction)}"
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        self.bar.close()


def chunk(meter: Optional[SampleMeter], n: int):
    """`meter.chunk(n)`, or nothing when there is no meter (cells computed elsewhere, or no bars)."""
    return nullcontext() if meter is None else meter.chunk(n)


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
        self.cells = bar(total=total, show=show, desc="cells", unit="cell", interval=0)  # a line per cell in a log
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
