"""The runner's anti-spoofing path: a liveness model attacked towards spoof-to-live on a FAS protocol."""
import numpy as np
import pytest

from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore
from models_zoo.liveness import liveness_resnet
from models_zoo.registry import VARIANTS, VariantSpec
from models_zoo.training import train_binary_fas, train_variant


@pytest.fixture
def liveness_variant(monkeypatch, tmp_path):
    spec = VariantSpec("test-liveness", "fas", "a tiny liveness net (test only)", liveness_resnet,
                       {"tiny": 64, "paper": 256}, "synth-casia", recipe=train_binary_fas)
    monkeypatch.setitem(VARIANTS._entries, spec.name, spec)
    weights, card = train_variant(spec.name, epochs=2, out=tmp_path / "live.safetensors", progress=False)
    return weights, card


def test_spoof_to_live_cells_are_judged_at_the_dev_eer_threshold(liveness_variant, tmp_path):
    weights, card = liveness_variant
    assert card["dev"]["threshold_rule"] == "dev EER"
    suite = tmp_path / "s.yaml"
    suite.write_text("attacks:\n  - attack: pgd\n    params: {steps: 3}\n    eps: [2/255, 16/255]\n")
    store = tmp_path / "r.h5"
    out = run_benchmark(RunConfig(model="test-liveness", suite=str(suite), samples=16, store=str(store),
                                  checkpoint=str(weights), device="cpu"), progress=False)
    run = ResultsStore(store).run(out.run_id)
    assert run["protocol"] == "synth-casia" and run["threshold_rule"] == "dev EER" and run["card_reproduces"]
    cells = ResultsStore(store).read_cells(run["cell_ids"])
    assert {c.config["goal"] for c in cells} == {"spoof-to-live"}
    for c in cells:
        a = c.arrays
        assert all("/f" in s for s in a["sample_id"])  # frames of the protocol's test split
        assert np.array_equal(a["success"], a["adv_score"] >= float(c.attrs["threshold"]))
    weak, strong = sorted(cells, key=lambda c: c.config["eps"])
    assert strong.arrays["success"].sum() >= weak.arrays["success"].sum()
