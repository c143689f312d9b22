"""Difficulty of the synthetic anti-spoofing world, measured with the tiny binary liveness network.

`python -m bench.protocols.calibration synth-oulu 'synth-ocim->o' ...` trains the network on each
protocol's train split (BCE, 30 epochs, seed 0), takes the EER threshold on its dev split and
prints the error rates on dev and test (the table in docs/datasets.md). The calibration test uses
the same function. `python -m bench.protocols.calibration --model depth-gan-spoof ...` evaluates shipped
anti-spoofing weights the same way on the protocol of their card (the figures in docs/zoo.md);
`--weights a.safetensors ...` does the same for any anti-spoofing checkpoint with its card.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch

from bench.protocols.registry import get_protocol
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
    from models_zoo.liveness import liveness_resnet
    from models_zoo.training import train_binary_fas

    cpu = torch.device("cpu")
    p = get_protocol(protocol)
    torch.manual_seed(seed)
    model = liveness_resnet("tiny")
    start = time.time()
    train_binary_fas(model, p, profile="tiny", size=size, epochs=epochs, device=cpu, seed=seed, progress=progress)
    return evaluate(model.eval(), protocol, size=size, train_seconds=time.time() - start)


def evaluate(model: torch.nn.Module, protocol: str, *, size: int = 64, train_seconds: float = float("nan"),
             label: str = "") -> Difficulty:
    """Rates of a liveness model on `protocol`'s dev and test splits at its dev EER threshold."""
    from bench.evaluation import fas_dev_result, liveness_scores
    from bench.metrics import fas_rates

    cpu = torch.device("cpu")
    p = get_protocol(protocol)
    dev = fas_dev_result(model, p.frames("dev", size), cpu)  # the threshold and the dev rates there
    test = p.frames("test", size)
    rates = fas_rates(liveness_scores(model, test.images, cpu), test.live, test.species, dev.operating_point.threshold)
    return Difficulty(label or protocol, dev.rates, rates, train_seconds)


def evaluate_shipped(name: str, profile: str = "tiny") -> Difficulty:
    """`evaluate_checkpoint` of a zoo variant's shipped weights."""
    from bench.errors import BadInputError
    from models_zoo.checkpoint import shipped_weights

    weights = shipped_weights(name, profile)
    if weights is None:
        raise BadInputError(f"{name!r} has no shipped {profile} weights")
    return evaluate_checkpoint(weights)


def evaluate_checkpoint(weights) -> Difficulty:
    """`evaluate` for a zoo anti-spoofing checkpoint (weights + card), on the protocol named in its card."""
    from bench.errors import BadInputError
    from models_zoo import get_variant
    from models_zoo.checkpoint import load_checkpoint, read_card

    card = read_card(weights)
    spec = get_variant(card.get("variant", "?"))
    if spec.task != "fas":
        raise BadInputError(f"{weights} holds {spec.name!r}, not an anti-spoofing model")
    model = spec.build(card["profile"])
    load_checkpoint(model, weights, variant=spec.name, profile=card["profile"])
    return evaluate(model.eval(), card["protocol"], size=card["input_size"], train_seconds=card["wall_time_s"],
                    label=f"{spec.name} on {card['protocol']}")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] in ("--model", "--weights"):
        for name in argv[1:]:
            result = evaluate_shipped(name) if argv[0] == "--model" else evaluate_checkpoint(name)
            print(f"{name}: " * (argv[0] == "--weights") + result.line(), flush=True)
        return 0
    for name in argv:
        print(measure(name, progress=True).line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
