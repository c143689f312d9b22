"""The quick suite on the shipped undefended baseline produces numbers that behave like real ones."""
import numpy as np
import pytest

from bench.leaderboard import leaderboard_rows
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("quick") / "r.h5"
    cfg = RunConfig(model="facenet-baseline", suite="quick", samples=64, store=str(store), device="cpu")
    return run_benchmark(cfg, progress=False), store


GRID = {"dodging": ("linf 0.5/255", "linf 1/255", "linf 2/255", "linf 4/255"),  # the face budgets (bench/suites.py)
        "impersonation": ("linf 2/255", "linf 4/255", "linf 8/255")}


def test_robust_below_clean_at_the_largest_budget(quick_run):
    _, store = quick_run
    rows, budgets = leaderboard_rows([ResultsStore(store)])
    assert {r["goal"] for r in rows} == {"dodging", "impersonation"}
    for r in rows:
        assert sorted(r["robust"]) == sorted(GRID[r["goal"]]), r["goal"]  # each goal at its own grid
        clean_k, n = r["clean"]
        robust_k, _ = r["robust"][GRID[r["goal"]][-1]]
        assert robust_k < clean_k, r  # strictly below clean for the undefended baseline


def test_success_rises_with_eps(quick_run):
    """PGD and the worst case rise with eps (FGSM need not: one full-size step can overshoot)."""
    outcome, store = quick_run
    rows, budgets = leaderboard_rows([ResultsStore(store)])
    for r in rows:
        robust = [r["robust"][b][0] for b in GRID[r["goal"]]]
        assert robust == sorted(robust, reverse=True), (r["goal"], robust)
    for goal in ("dodging", "impersonation"):
        cells = sorted((s for s in outcome.summaries if s["goal"] == goal and s["attack"] == "pgd"), key=lambda s: s["eps"])
        broken = [s["n"] - round(s["robust_accuracy"] * s["n"]) for s in cells]
        assert broken == sorted(broken), (goal, broken)
        pgd = sorted((s for s in outcome.summaries if s["goal"] == goal and s["attack"] == "pgd"), key=lambda s: s["eps"])
        assert pgd[-1]["robust_accuracy"] < pgd[0]["clean_accuracy"]
    imp = sorted((s for s in outcome.summaries if s["goal"] == "impersonation" and s["attack"] == "pgd"), key=lambda s: s["eps"])
    assert imp[-1]["asr"] > imp[0]["asr"]


def test_pgd_at_least_as_strong_as_fgsm_per_budget(quick_run):
    outcome, _ = quick_run
    by = {(s["goal"], s["attack"], round(s["eps"] * 255, 1)): s["robust_accuracy"] for s in outcome.summaries}
    for goal, grid in (("dodging", (0.5, 1, 2, 4)), ("impersonation", (2, 4, 8))):
        for e in grid:
            assert by[(goal, "pgd", e)] <= by[(goal, "fgsm", e)] + 1 / 64, (goal, e)


def test_same_seed_same_numbers(quick_run, tmp_path):
    outcome, store = quick_run
    cfg = RunConfig(model="facenet-baseline", suite="quick", samples=64, store=str(tmp_path / "again.h5"), device="cpu")
    again = run_benchmark(cfg, progress=False)
    first = ResultsStore(store).read_cells([s["cell_id"] for s in outcome.summaries])
    second = ResultsStore(tmp_path / "again.h5").read_cells([s["cell_id"] for s in again.summaries])
    for a, b in zip(first, second):
        assert a.cell_id == b.cell_id
        assert np.array_equal(a.arrays["success"], b.arrays["success"])
        assert np.allclose(a.arrays["adv_score"], b.arrays["adv_score"])
