"""The fast forward path (bench/precision.py) with the code the GPU runs, exercised on CPU: channels_last
finds the same successes as the plain path (it is on by default on CUDA); bf16 autocast only changes
what the attacks see, is its own cell, and stays off by default."""
import json

import numpy as np
import pytest
import torch

from torch import nn

from bench.checks import EOTTask
from bench.precision import FastTask, ForwardOptions, fast_view, fold_batchnorm, resolve_forward
from bench.runner import RunConfig, run_benchmark, same_run
from bench.store import ResultsStore
from bench.tasks import VerificationTask
from tests.test_suites_cascade import TanhEmbedder

SUITE = "goals: [impersonation, dodging]\nattacks:\n  - attack: pgd\n    params: {steps: 10}\n    eps: [4/255, 8/255]\n"


def test_defaults_channels_last_on_cuda_only_and_fp32_everywhere():
    assert resolve_forward("fp32", None, False, torch.device("cpu")) == ForwardOptions("fp32", False, False, True)
    assert resolve_forward("fp32", None, False, torch.device("cuda")) == ForwardOptions("fp32", True, False, True)
    assert RunConfig(model="x").precision == "fp32" and not RunConfig(model="x").compile and RunConfig(model="x").fold_bn


class ConvBN(nn.Module):
    """conv -> BN -> ReLU twice, then a head: two foldable pairs, BatchNorm statistics far from identity."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)
        for bn in (self.b1, self.b2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))
        return nn.functional.normalize(self.head(h.mean(dim=(2, 3))), dim=1)


class Untraceable(ConvBN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return super().forward(x)
        return super().forward(-x)


class Noisy(ConvBN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x + 0.5 * torch.randn_like(x))


def test_fold_batchnorm_is_the_same_function_with_the_same_gradients():
    model = ConvBN()
    folded = fold_batchnorm(model, torch.rand(2, 3, 8, 8))
    assert folded.folded == 2 and folded.note == "" and folded.describe() == {"bn_folded": 2}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.module.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the model itself is untouched
    x = torch.rand(5, 3, 8, 8)
    refs = model(torch.rand(5, 3, 8, 8)).detach()
    task = VerificationTask(model, refs, 0.1, "impersonation")
    view = fast_view(task, ForwardOptions(fold_bn=True), torch.device("cpu"), folded.module)
    assert view.model is folded.module and task.model is model and view.references is task.references
    xg, xv = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(task.margin(xg).sum(), xg)
    (gv,) = torch.autograd.grad(view.margin(xv).sum(), xv)
    assert torch.allclose(task.scores(x), view.scores(x), atol=1e-5)
    assert torch.allclose(g, gv, atol=1e-5, rtol=1e-4)
    # the folded model follows subsets and views (EOT, the fast path)
    eot = EOTTask(task, 2).with_model(folded.module)
    assert eot.task.model is folded.module and eot.subset(torch.tensor([1, 3])).task.model is folded.module
    fast = fast_view(task, ForwardOptions(channels_last=True, fold_bn=True), torch.device("cpu"), folded.module)
    assert isinstance(fast, FastTask) and fast.subset(torch.tensor([0])).task.model is folded.module


def test_fold_batchnorm_refuses_what_it_cannot_fold_safely():
    x = torch.rand(2, 3, 8, 8)
    assert fold_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).eval(), x).module is None  # no BatchNorm
    untraceable = fold_batchnorm(Untraceable(), x)
    assert untraceable.module is None and "torch.fx" in untraceable.note
    noisy = fold_batchnorm(Noisy(), x)  # a random forward: the copy cannot be shown to be the same function
    assert noisy.module is None and "differ" in noisy.note
    training = ConvBN().train()
    assert fold_batchnorm(training, x).module is None and "training" in fold_batchnorm(training, x).note


def test_a_stored_run_without_a_newer_option_matches_its_default():
    cfg = RunConfig(model="facenet-baseline", samples=10)
    stored = {k: v for k, v in __import__("dataclasses").asdict(cfg).items() if k != "fold_bn"}
    assert same_run({"config": stored}, cfg)
    assert not same_run({"config": stored}, RunConfig(model="facenet-baseline", samples=10, fold_bn=False))


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
    for name, opts in {"plain": {}, "channels_last": {"channels_last": True}, "bf16": {"precision": "bf16"},
                       "unfolded": {"fold_bn": False}}.items():
        store = d / f"{name}.h5"
        run_benchmark(RunConfig(model="facenet-baseline", suite=str(suite), samples=100, device="cpu", store=str(store),
                                **opts), progress=False)
        out[name] = {(c.config["goal"], c.config["eps"]): c for c in ResultsStore(store).read_cells()}
        out[name]["forward"] = json.loads(ResultsStore(store).run()["forward"])
    return out


def test_batchnorm_folding_finds_the_same_successes(runs):
    """Folding is on by default: the bar is the same successes as the model as loaded within one sample in a
    hundred per cell; decisions and clean scores are the loaded model's own."""
    for key, plain in cells(runs["plain"]).items():
        unfolded = runs["unfolded"][key]
        assert unfolded.cell_id == plain.cell_id  # float rounding only: not a different attack
        assert abs(int(unfolded.arrays["success"].sum()) - int(plain.arrays["success"].sum())) <= len(plain.arrays["success"]) // 100
        assert np.array_equal(unfolded.arrays["clean_score"], plain.arrays["clean_score"])
    # the run says what the attacks differentiated: the tiny FaceNet's 13 BatchNorms folded, or none
    assert runs["plain"]["forward"]["bn_folded"] == 13 and runs["plain"]["forward"]["fold_bn"]
    assert runs["unfolded"]["forward"]["bn_folded"] == 0 and not runs["unfolded"]["forward"]["fold_bn"]


def cells(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != "forward"}


def test_channels_last_finds_the_same_successes(runs):
    """Within one sample in a hundred per cell (the bar for enabling a speed-up by default); here identical."""
    for key, plain in cells(runs["plain"]).items():
        fast = runs["channels_last"][key]
        assert fast.cell_id == plain.cell_id  # a memory format is not a different attack
        assert abs(int(fast.arrays["success"].sum()) - int(plain.arrays["success"].sum())) <= len(plain.arrays["success"]) // 100


def test_bf16_is_its_own_cell_and_decisions_stay_fp32(runs):
    for key, plain in cells(runs["plain"]).items():
        bf16 = runs["bf16"][key]
        assert bf16.cell_id != plain.cell_id and bf16.config["precision"] == "bf16"
        # clean decisions are made by the fp32 task: identical clean scores and correctness
        assert np.array_equal(bf16.arrays["clean_score"], plain.arrays["clean_score"])
        assert np.array_equal(bf16.arrays["clean_correct"], plain.arrays["clean_correct"])
        assert bf16.arrays["linf"].max() <= key[1] + 1e-5
