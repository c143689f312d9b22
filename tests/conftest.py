import os
from pathlib import Path
from typing import Optional

import pytest
import torch

from tests.scheduling import ModuleSeconds, longest_first, read_seconds

os.environ.setdefault("TQDM_DISABLE", "1")
# the rendered world is cached inside the checkout (ignored by git), not in the user's home
os.environ.setdefault("FACEBENCH_CACHE", str(Path(__file__).resolve().parent.parent / ".facebench-cache"))
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # pytest-xdist (`make test` runs `-n 2`): one thread per worker, and for what a worker starts, so that the
    # workers share the cores instead of oversubscribing them
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "results.h5"


def pytest_addoption(parser):
    parser.addoption("--write-module-seconds", action="store_true",
                     help="write each test module's summed seconds in this run into tests/module_seconds.json (modules "
                          "not run keep theirs): the order in which `make test`'s workers take the modules "
                          "(tests/scheduling.py)")


def pytest_collection_modifyitems(config, items):
    """Under xdist, modules longest first (tests/scheduling.py); a run in one process keeps the files' order."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        order = longest_first([item.nodeid for item in items], read_seconds())
        items[:] = [items[i] for i in order]


_module_seconds: Optional[ModuleSeconds] = None


def pytest_configure(config):
    global _module_seconds
    if config.getoption("--write-module-seconds") and not os.environ.get("PYTEST_XDIST_WORKER"):
        _module_seconds = ModuleSeconds()  # in the controller (or the only process), where every report arrives


def pytest_runtest_logreport(report):
    if _module_seconds is not None:
        _module_seconds.add(report.nodeid, report.duration)


def pytest_sessionfinish(session, exitstatus):
    if _module_seconds is not None:
        _module_seconds.write(merge_into=read_seconds())
