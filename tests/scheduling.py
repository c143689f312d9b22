"""The order in which `make test`'s two xdist workers take the test modules: longest first.

`make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: each module goes whole to one worker, in the
order of the collection, and a worker takes the next module when it finishes one. Taken in file-name order (or in
xdist's default, most tests first), a module of four minutes could start last and leave the other worker idle for
those minutes; taking the longest first (the longest-processing-time rule) leaves only short modules for the end.

How long a module takes comes from `tests/module_seconds.json`: seconds of setup, call and teardown of its tests,
summed, as measured in a whole `make test` run on the 2-core machine. A module it does not list counts as the median
module. The order changes only which worker runs what and when; every test runs the same. Refresh the file with
`make test PYTEST_ARGS='-n 2 --dist loadfile --no-loadscope-reorder --write-module-seconds'`.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Optional, Sequence

MODULE_SECONDS = Path(__file__).with_name("module_seconds.json")


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def read_seconds(path: Path = MODULE_SECONDS) -> dict[str, float]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def longest_first(nodeids: Sequence[str], seconds: Mapping[str, float]) -> list[int]:
    """The positions of `nodeids` reordered so that whole modules come longest first (`seconds`; a module it lacks
    counts as the median of those it has); ties, and the tests inside a module, keep their collected order."""
    default = statistics.median(seconds.values()) if seconds else 0.0
    first: dict[str, int] = {}
    for i, nodeid in enumerate(nodeids):
        first.setdefault(module_of(nodeid), i)

    def key(i: int) -> tuple[float, int, int]:
        module = module_of(nodeids[i])
        return (-seconds.get(module, default), first[module], i)

    return sorted(range(len(nodeids)), key=key)


class ModuleSeconds:
    """Sums each module's setup, call and teardown seconds over a session's reports, and writes them as JSON."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, nodeid: str, duration: float) -> None:
        self.seconds[module_of(nodeid)] += duration

    def write(self, path: Path = MODULE_SECONDS, merge_into: Optional[Mapping[str, float]] = None) -> None:
        """Write the modules' seconds to `path`, over those of `merge_into` (modules this session did not run);
        a module whose file is gone is dropped. Module names are relative to the repository root."""
        root = path.resolve().parent.parent
        merged = {**(merge_into or {}), **self.seconds}
        table = {m: round(s, 1) for m, s in sorted(merged.items()) if (root / m).is_file()}
        path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
