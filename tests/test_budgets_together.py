"""Budgets together: an attack's budgets run as one batch (eps per sample, random numbers drawn per budget)
and give the per-sample results of one pass per budget (decisions and query counts identical; scores and
norms up to float rounding, since a larger batch can round a matrix product differently); a batch that
does not fit falls back."""
import numpy as np
import pytest
import torch

from attacks import make_attack
from bench.batching import BatchSize, batched_scores
from bench.cells import attack_cell, attack_cells_together
from bench.runner import RunConfig, run_benchmark
from bench.tasks.items import GoalItems
from bench.store import ResultsStore
from bench.tasks import VerificationTask
from tests.test_batching import FITS, SmallMemory
from tests.test_suites_cascade import TanhEmbedder

BUDGETS = {"linf": [2 / 255, 4 / 255, 8 / 255, 16 / 255], "l2": [0.25, 0.5, 1.0]}


def goal_items(n=40, model=None):
    torch.manual_seed(1)
    model = model or TanhEmbedder(1)
    x = torch.rand(n, 3, 8, 8)
    refs = (model.inner if isinstance(model, SmallMemory) else model)(torch.rand(n, 3, 8, 8)).detach()
    with torch.no_grad():
        tau = float((model(x[:FITS]) if isinstance(model, SmallMemory) else model(x)).mul(refs[:FITS] if isinstance(model, SmallMemory) else refs).sum(1).quantile(0.9))
    task = VerificationTask(model, refs, tau, "impersonation")
    return GoalItems("impersonation", x, task, [f"p{i}" for i in range(n)])


@pytest.mark.parametrize("attack,params,norm", [
    ("pgd", {"steps": 6, "restarts": 2}, "linf"),  # random start + restarts: each budget's generator, its own rows
    ("pgd", {"steps": 6}, "l2"),
    ("fgsm", {}, "linf"),
    ("bim", {"steps": 5}, "linf"),
    ("mim", {"steps": 5}, "l2"),
])
def test_budgets_together_equal_one_pass_per_budget(attack, params, norm):
    it = goal_items()
    clean = batched_scores(it.task, it.x, 16)
    a = make_attack(attack, params)
    budgets = [(eps, 1000 + k) for k, eps in enumerate(BUDGETS[norm])]
    together = attack_cells_together(it, clean, a, norm, budgets, 16, it.task)  # 3 chunks of at most 16
    apart = [attack_cell(it, clean, a, norm, eps, 16, seed=seed) for eps, seed in budgets]
    assert len(together) == len(apart)
    for got, want in zip(together, apart):
        same(got, want, (attack, norm))
    # the budgets matter: success grows with eps, so the per-sample budget is really per sample
    broken = [int(r["success"].sum()) for r in apart]
    assert broken == sorted(broken) and broken[0] < broken[-1]


def same(got: dict, want: dict, what) -> None:
    assert got.keys() == want.keys()
    for name in want:
        if want[name].dtype.kind == "f":
            assert np.allclose(got[name], want[name], rtol=0, atol=1e-5), (what, name)
        else:
            assert np.array_equal(got[name], want[name]), (what, name)


def test_only_attacks_that_declare_it_run_budgets_together():
    it = goal_items(8)
    clean = batched_scores(it.task, it.x, 8)
    assert not make_attack("apgd", {}).budgets_together and make_attack("pgd", {}).budgets_together
    with pytest.raises(ValueError, match="cannot run its budgets together"):
        attack_cells_together(it, clean, make_attack("apgd", {}), "linf", [(4 / 255, 0), (8 / 255, 1)], 8)


def test_a_stacked_batch_that_does_not_fit_returns_none():
    it = goal_items(2 * FITS, SmallMemory(TanhEmbedder(1)))
    clean = batched_scores(it.task, it.x, FITS)
    # one budget's chunk fits (FITS), three stacked do not: nothing is computed, the caller goes budget by budget
    assert attack_cells_together(it, clean, make_attack("pgd", {"steps": 3}), "linf",
                                 [(2 / 255, 0), (4 / 255, 1), (8 / 255, 2)], BatchSize(FITS, auto=True)) is None


def test_a_run_with_budgets_together_stores_what_a_run_with_budgets_apart_stores(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("goals: [impersonation]\nattacks:\n  - attack: pgd\n    params: {steps: 5}\n"
                     "    eps: [2/255, 4/255, 8/255]\n  - attack: apgd\n    params: {steps: 5}\n    eps: [4/255, 8/255]\n")
    cells = {}
    for name, together in (("together", True), ("apart", False), ("cpu default", None)):
        store = tmp_path / f"{name}.h5"
        run_benchmark(RunConfig(model="facenet-baseline", suite=str(suite), samples=24, device="cpu", store=str(store),
                                budgets_together=together), progress=False)
        cells[name] = {c.cell_id: c for c in ResultsStore(store).read_cells()}
        assert ResultsStore(store).cell_ids() == set(cells[name])
    assert cells["together"].keys() == cells["apart"].keys() and len(cells["apart"]) == 5
    for cid, want in cells["apart"].items():
        got = cells["together"][cid]
        same(got.arrays, want.arrays, cid)
        # pgd's three budgets ran as one batch; apgd (not declared) ran alone
        assert got.attrs.get("budgets_together") == (3 if got.config["attack"] == "pgd" else None)
        assert "budgets_together" not in want.attrs
        assert "budgets_together" not in cells["cpu default"][cid].attrs  # on a CPU the default is apart (slower stacked)
