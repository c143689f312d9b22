"""How many samples are attacked or scored at once: a fixed batch size, or the largest that fits."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from bench.errors import BadInputError
from bench.tasks.base import Task

PER_SAMPLE_CHUNK = 1  # samples per call of a library attack that runs one sample at a time (progress per sample)


class BatchSize:
    """How many samples are attacked (or scored) at once.

    Fixed (`--batch-size N`), or automatic (the default): the largest that fits, found by starting at
    AUTO_BATCH[device type] and halving on out-of-memory; the smaller size is kept for the rest of the
    run. A chunk that runs out of memory is redone whole, with the random generator rewound, so no
    sample is half-attacked. With a fixed size, out-of-memory is an error that says what to do.
    """

    def __init__(self, size: int, auto: bool = False) -> None:
        self.size = int(size)
        self.auto = auto

    @staticmethod
    def of(value: "int | BatchSize") -> "BatchSize":
        return value if isinstance(value, BatchSize) else BatchSize(int(value))

    def chunks(self, todo: torch.Tensor, work: Callable[[torch.Tensor], None], per_sample: bool = False,
               generator: Optional[torch.Generator] = None) -> None:
        """Call `work(idx)` on consecutive chunks of `todo` (one sample at a time when `per_sample`)."""
        start = 0
        while start < todo.numel():
            size = min(self.size, PER_SAMPLE_CHUNK) if per_sample else self.size
            idx = todo[start : start + size]
            rewind = generator.get_state() if generator is not None else None
            try:
                work(idx)
            except torch.cuda.OutOfMemoryError:
                if not self.auto:
                    raise BadInputError(f"out of memory at --batch-size {size}: pass a smaller one, "
                                        "or leave it out to choose it automatically") from None
                if size == 1:
                    raise
                self.size = max(1, size // 2)
                if rewind is not None:
                    generator.set_state(rewind)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start += idx.numel()


AUTO_BATCH = {"cpu": 128, "cuda": 1024}  # where `--batch-size auto` starts (CPU: larger batches gain nothing)


def auto_batch_size(device: torch.device, n_items: int) -> BatchSize:
    return BatchSize(max(1, min(AUTO_BATCH.get(device.type, 128), n_items)), auto=True)


@torch.no_grad()
def batched_scores(task: Task, x: torch.Tensor, batch_size: "int | BatchSize") -> torch.Tensor:
    out: dict[int, torch.Tensor] = {}

    def work(idx: torch.Tensor) -> None:
        out[int(idx[0])] = task.subset(idx).scores(x[idx])

    BatchSize.of(batch_size).chunks(torch.arange(x.shape[0], device=x.device), work)
    return torch.cat([out[k] for k in sorted(out)]) if out else torch.zeros(0, device=x.device)
