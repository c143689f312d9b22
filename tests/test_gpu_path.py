"""The fast forward path (bench/precision.py) with the code the GPU runs, exercised on CPU: channels_last
finds the same successes as the plain path (it is on by default on CUDA); bf16 autocast only changes
what the attacks see, is its own cell, and stays off by default."""
import numpy as np
import pytest
import torch

from bench.precision import FastTask, ForwardOptions, fast_view, resolve_forward
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore
from bench.tasks import VerificationTask
from tests.test_suites_cascade import TanhEmbedder

SUITE = "goals: [impersonation, dodging]\nattacks:\n  - attack: pgd\n    params: {steps: 10}\n    eps: [4/255, 8/255]\n"


def test_defaults_channels_last_on_cuda_only_and_fp32_everywhere():
    assert resolve_forward("fp32", None, False, torch.device("cpu")) == ForwardOptions("fp32", False, False)
    assert resolve_forward("fp32", None, False, torch.device("cuda")) == ForwardOptions("fp32", True, False)
    assert RunConfig(model="x").precision == "fp32" and not RunConfig(model="x").compile


def test_fast_task_scores_in_fp32_with_finite_gradients_and_keeps_the_task_interface():
    torch.manual_seed(0)
    model = TanhEmbedder(0)
    x = torch.rand(6, 3, 8, 8)
    refs = model(torch.rand(6, 3, 8, 8)).detach()
    task = VerificationTask(model, refs, 0.1, "impersonation").with_starts(torch.rand(6, 3, 8, 8))
    fast = fast_view(task, ForwardOptions("bf16", True, False), torch.device("cpu"))
    assert isinstance(fast, FastTask) and fast_view(task, ForwardOptions(), torch.device("cpu")) is task
    xg = x.clone().requires_grad_(True)
    s = fast.scores(xg)
    assert s.dtype == torch.float32
    (g,) = torch.autograd.grad(fast.margin_from_scores(s).sum(), xg)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert torch.allclose(s, task.scores(x), atol=0.05)  # bf16 rounding, not a different function
    idx = torch.tensor([4, 1])
    sub = fast.subset(idx)
    assert len(sub) == 2 and torch.equal(sub.starts, task.starts[idx]) and sub.num_targets() == 1


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpu")
    suite = d / "s.yaml"
    suite.write_text(SUITE)
    out = {}
    for name, opts in {"plain": {}, "channels_last": {"channels_last": True}, "bf16": {"precision": "bf16"}}.items():
        store = d / f"{name}.h5"
        run_benchmark(RunConfig(model="facenet-baseline", suite=str(suite), samples=100, device="cpu", store=str(store),
                                **opts), progress=False)
        out[name] = {(c.config["goal"], c.config["eps"]): c for c in ResultsStore(store).read_cells()}
    return out


def test_channels_last_finds_the_same_successes(runs):
    """Within one sample in a hundred per cell (the bar for enabling a speed-up by default); here identical."""
    for key, plain in runs["plain"].items():
        fast = runs["channels_last"][key]
        assert fast.cell_id == plain.cell_id  # a memory format is not a different attack
        assert abs(int(fast.arrays["success"].sum()) - int(plain.arrays["success"].sum())) <= len(plain.arrays["success"]) // 100


def test_bf16_is_its_own_cell_and_decisions_stay_fp32(runs):
    for key, plain in runs["plain"].items():
        bf16 = runs["bf16"][key]
        assert bf16.cell_id != plain.cell_id and bf16.config["precision"] == "bf16"
        # clean decisions are made by the fp32 task: identical clean scores and correctness
        assert np.array_equal(bf16.arrays["clean_score"], plain.arrays["clean_score"])
        assert np.array_equal(bf16.arrays["clean_correct"], plain.arrays["clean_correct"])
        assert bf16.arrays["linf"].max() <= key[1] + 1e-5
