"""Batch size: automatic back-off on out-of-memory (simulated on CPU), the same results as the size
that fits, and a clear error when a fixed size does not fit."""
import numpy as np
import pytest
import torch

from attacks import make_attack
from bench.errors import BadInputError
from bench.batching import BatchSize, auto_batch_size, batched_scores
from bench.cells import attack_cell
from bench.tasks.items import GoalItems
from bench.tasks import VerificationTask
from tests.test_suites_cascade import TanhEmbedder

FITS = 8  # the largest batch the "device" can hold


class SmallMemory(torch.nn.Module):
    """Raises CUDA's out-of-memory error on batches larger than FITS, as a GPU would."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.largest = 0

    def forward(self, x):
        if x.shape[0] > FITS:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated, batch {x.shape[0]})")
        self.largest = max(self.largest, x.shape[0])
        return self.inner(x)


def items(n=30):
    torch.manual_seed(0)
    model = SmallMemory(TanhEmbedder(0))
    x = torch.rand(n, 3, 8, 8)
    refs = model.inner(torch.rand(n, 3, 8, 8)).detach()
    tau = float((model.inner(x) * refs).sum(1).quantile(0.9))
    task = VerificationTask(model, refs, tau, "impersonation")
    return model, GoalItems("impersonation", x, task, [f"p{i}" for i in range(n)])


def test_auto_batch_size_halves_on_out_of_memory_and_keeps_results():
    model, it = items()
    clean = batched_scores(it.task, it.x, BatchSize(FITS))
    pgd = make_attack("pgd", {"steps": 5})  # random start: the generator must be rewound on a retry
    auto = BatchSize(64, auto=True)
    got = attack_cell(it, clean, pgd, "linf", 8 / 255, auto, seed=3)
    assert auto.size == FITS and model.largest == FITS  # 64 -> 32 -> 16 -> 8, then kept
    want = attack_cell(it, clean, pgd, "linf", 8 / 255, FITS, seed=3)
    assert got["success"].any() and not got["success"].all()
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    assert torch.equal(batched_scores(it.task, it.x, BatchSize(64, auto=True)), clean)


def test_a_fixed_batch_size_that_does_not_fit_is_a_clear_error():
    _, it = items()
    with pytest.raises(BadInputError, match="out of memory at --batch-size 16: pass a smaller one"):
        batched_scores(it.task, it.x, BatchSize(16))


def test_auto_starts_by_device_and_never_above_the_items():
    assert auto_batch_size(torch.device("cpu"), 1000).size == 128
    assert auto_batch_size(torch.device("cpu"), 20).size == 20
    assert auto_batch_size(torch.device("cuda"), 5000).size == 1024
