import os
from pathlib import Path

import pytest
import torch

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
