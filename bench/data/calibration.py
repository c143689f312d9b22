"""Difficulty of the synthetic anti-spoofing world, measured with the tiny binary liveness network.

`python -m bench.data.calibration synth-oulu 'synth-ocim->o' ...` trains the network on each
protocol's train split (BCE, 30 epochs, seed 0), takes the EER threshold on its dev split and
prints the error rates on dev and test (the table in docs/datasets.md). The calibration test uses
the same function.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch

from bench.data.protocols import get_protocol
from bench.metrics import FASRates


@dataclass(frozen=True)
class Difficulty:
    protocol: str
    dev: FASRates
    test: FASRates
    train_seconds: float

    def line(self) -> str:
        d, t = self.dev, self.test
        return (f"{self.protocol}: source dev ACER {d.acer:.1%} | test ACER {t.acer:.1%} HTER {t.hter:.1%} "
                f"APCER {', '.join(f'{k} {v:.1%}' for k, v in t.apcer_per_species.items())} BPCER {t.bpcer:.1%} "
                f"| trained in {self.train_seconds:.0f} s")


def measure(protocol: str, *, epochs: int = 30, seed: int = 0, size: int = 64, progress: bool = False) -> Difficulty:
    """Train the tiny liveness network on `protocol` and return its rates at the dev EER threshold."""
    from bench.evaluation import fas_dev_result, liveness_scores
    from bench.metrics import fas_rates
    from models_zoo.liveness import liveness_resnet
    from models_zoo.training import train_binary_fas

    cpu = torch.device("cpu")
    p = get_protocol(protocol)
    torch.manual_seed(seed)
    model = liveness_resnet("tiny")
    start = time.time()
    train_binary_fas(model, p, profile="tiny", size=size, epochs=epochs, device=cpu, seed=seed, progress=progress)
    seconds = time.time() - start
    tau = fas_dev_result(model, p.frames("dev", size), cpu).operating_point.threshold
    rates = {}
    for split in ("dev", "test"):
        s = p.frames(split, size)
        rates[split] = fas_rates(liveness_scores(model, s.images, cpu), s.live, s.species, tau)
    return Difficulty(protocol, rates["dev"], rates["test"], seconds)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for name in argv:
        print(measure(name, progress=True).line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
