"""FMN, the fast minimum-norm attack: the closed-form minimal norm on linear models, never worse than the `min-eps`
bisection on shipped zoo models (FR dodging and impersonation, FAS spoof-to-live), every success adversarial when
re-checked, the ceiling, the runner storing `min_eps`, and its parameters refused with one line."""
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from attacks import declares, make_attack
from attacks.native.fmn import cosine
from bench.cli import main
from bench.errors import BadInputError
from bench.store import ResultsStore
from bench.suites import load_suite
from bench.tasks import SpoofTask
from tests.helpers import LinearLiveness

BISECTION = {"attack": "pgd", "attack_steps": 20, "search_steps": 8}  # the `full` suite's min-eps entries
CEILING = {"linf": 16 / 255, "l2": 2.0}


def linear(n=24, seed=0, live=0):
    """Spoof-to-live on w.x + b: every frame a spoof except the first `live`, inputs away from the box edges, so
    the minimal perturbation is |margin| / ||w||_1 (Linf) or |margin| / ||w||_2 (L2) exactly."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 8, 8, generator=g)
    x = torch.rand(n, 3, 8, 8, generator=g) * 0.6 + 0.2
    model = LinearLiveness(w)
    model.b = float(-model(x).max()) - 0.5
    if live:
        x[:live] = (x[:live] + 0.3 * torch.sign(w)).clamp(0, 1)  # pushed across the boundary: live on clean input
    task = SpoofTask(model, 0.0, "spoof-to-live", n)
    assert int(task.success(x).sum()) == live
    return model, x, task


def exact_minimum(model, x, norm):
    dual = model.w.abs().sum() if norm == "linf" else model.w.norm()
    return (-model(x)).clamp_min(0) / dual


def size(x_adv, x, norm):
    d = (x_adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


# ---- closed form, ceiling, clean-broken samples, batches ---------------------------------------------------------

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_finds_the_closed_form_minimal_norm_on_a_linear_model(norm):
    model, x, task = linear()
    out = make_attack("fmn").run(task, x, norm, CEILING[norm])
    exact = exact_minimum(model, x, norm)
    reach = exact <= CEILING[norm]
    assert reach.sum() >= len(x) - 2
    assert torch.equal(out.success, reach) and torch.isinf(out.min_eps[~reach]).all()
    ok = out.success
    assert (out.min_eps[ok] >= exact[ok] * (1 - 1e-4)).all()  # nothing beats the optimum
    assert (out.min_eps[ok] <= exact[ok] * 1.01).all()  # within 1 % of it after 100 steps
    assert task.success(out.x_adv[ok]).all()  # adversarial when re-checked ...
    assert torch.allclose(size(out.x_adv, x, norm)[ok], out.min_eps[ok], rtol=0, atol=1e-7)  # ... at the norm it stores
    assert (out.queries == 101).all()  # the clean point and 100 iterates


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_a_ceiling_below_the_minimum_gives_inf_and_the_best_point_within_it(norm):
    model, x, task = linear()
    exact = exact_minimum(model, x, norm)
    ceiling = float(exact.min()) * 0.8  # no sample can be broken
    out = make_attack("fmn", {"steps": 30}).run(task, x, norm, ceiling)
    assert not out.success.any() and torch.isinf(out.min_eps).all()
    assert (size(out.x_adv, x, norm) <= ceiling * (1 + 1e-5)).all()
    assert not task.success(out.x_adv).any()
    assert (task.margin(out.x_adv) > task.margin(x)).all()  # the best margin seen, not the clean point
    # a ceiling between the samples' minima: those whose minimum is below it are broken, within it
    mid = float(exact.median())
    out = make_attack("fmn").run(task, x, norm, mid)
    assert not (out.success & (exact > mid)).any()  # nothing beyond the optimum
    assert out.success[exact <= mid / 1.01].all()  # everything within 1 % of it
    assert 0 < int(out.success.sum()) < len(x)
    assert (size(out.x_adv, x, norm) <= mid * (1 + 1e-5)).all()
    assert torch.equal(out.success, torch.isfinite(out.min_eps))


def test_samples_broken_on_clean_input_get_zero_and_one_query():
    model, x, task = linear(live=3)
    out = make_attack("fmn", {"steps": 20}).run(task, x, "l2", 2.0)
    assert (out.min_eps[:3] == 0).all() and torch.equal(out.x_adv[:3], x[:3]) and (out.queries[:3] == 1).all()
    assert out.success.all() and (out.min_eps[3:] > 0).all() and (out.queries[3:] == 21).all()


def test_each_sample_gets_the_same_result_in_any_batch():
    """Batched, yet per sample: no random numbers, and nothing in a step mixes samples (so the runner can chunk the
    samples any way it likes; the attack does not need to run one sample per call)."""
    model, x, task = linear(live=2)
    attack = make_attack("fmn", {"steps": 40})
    whole = attack.run(task, x, "l2", 2.0)
    again = attack.run(task, x, "l2", 2.0)
    assert torch.equal(whole.min_eps, again.min_eps) and torch.equal(whole.x_adv, again.x_adv)
    idx = torch.tensor([7, 0, 13, 5])
    part = attack.run(task.subset(idx), x[idx], "l2", 2.0)
    assert torch.allclose(part.min_eps, whole.min_eps[idx], rtol=1e-5, atol=0)
    assert torch.equal(part.queries, whole.queries[idx])
    per = attack.run(task, x, "l2", torch.full((len(x),), 2.0))  # a per-sample ceiling is accepted too
    assert torch.allclose(per.min_eps, whole.min_eps)


def test_cosine_annealing_runs_from_the_initial_to_the_final_value():
    assert cosine(0.5, 0.05, 0, 100) == pytest.approx(0.5)
    assert cosine(0.5, 0.05, 50, 100) == pytest.approx(0.275)
    assert cosine(0.5, 0.05, 100, 100) == pytest.approx(0.05)


# ---- declarations, parameters ------------------------------------------------------------------------------------

def test_declares_a_minimal_norm_search_whose_budget_is_its_ceiling():
    assert declares("fmn", "measures_min_eps") and declares("fmn", "budget_is_ceiling")
    assert not declares("fmn", "per_sample")  # batched: see test_each_sample_gets_the_same_result_in_any_batch
    assert not declares("fmn", "black_box") and not declares("fmn", "budgets_together")
    assert make_attack("fmn").params() == {"steps": 100, "alpha_init": 0.5, "alpha_final": 0.05,
                                           "gamma_init": 0.05, "gamma_final": 0.001, "margin_tol": 1e-5}
    for suite in ("standard", "full"):  # in `standard` (issue 17), hence in `full`
        entries = [(e.norm, round(e.eps[0], 6), e.params["steps"])
                   for e in load_suite(suite).entries if getattr(e, "attack", "") == "fmn"]
        assert sorted(entries) == [("l2", 2.0, 100), ("linf", round(16 / 255, 6), 100)], suite


@pytest.mark.parametrize("params,match", [
    ({"steps": 0}, "fmn: steps must be >= 1, got 0"),
    ({"steps": -3}, "fmn: steps must be >= 1, got -3"),
    ({"alpha_init": 0.01, "alpha_final": 0.1}, "alpha_final <= alpha_init"),
    ({"gamma_init": 1.0}, "gamma_init < 1"),
    ({"gamma_final": 0}, "0 < gamma_final"),
    ({"margin_tol": -1e-3}, "margin_tol must be in"),
    ({"steps": "many"}, "parameter 'steps' must be int"),
    ({"step_size": 0.1}, "has no parameter 'step_size'"),
])
def test_bad_parameters_are_refused_with_one_line(params, match):
    with pytest.raises(BadInputError, match=match) as e:
        make_attack("fmn", params)
    assert "\n" not in str(e.value)


def test_an_unknown_norm_is_refused_with_one_line(tmp_path):
    with pytest.raises(BadInputError, match="unknown norm 'l1'") as e:
        make_attack("fmn").check("l1", 1.0, "dodging")
    assert "\n" not in str(e.value)
    suite = tmp_path / "s.yaml"
    suite.write_text("attacks:\n  - {attack: fmn, norm: l0, eps: 1}\n")
    with pytest.raises(BadInputError, match="unknown norm 'l0'") as e:
        load_suite(str(suite))
    assert "\n" not in str(e.value)


# ---- shipped zoo models: never worse than the bisection ------------------------------------------------------------

def compare(model, goal, norm, n):
    """FMN (defaults) and the `full` suite's bisection on a zoo model's first `n` clean-correct items of `goal`, both
    attacking the task as the runner's attacks see it (BatchNorm folded), judged by the task as loaded."""
    from perf.workloads import shipped_workload

    w = shipped_workload(model, goal, n, torch.device("cpu"))
    fmn = make_attack("fmn").run(w.view, w.x, norm, CEILING[norm])
    bis = make_attack("min-eps", BISECTION).run(w.view, w.x, norm, CEILING[norm], torch.Generator().manual_seed(0))
    return w, fmn, bis


def check_against_bisection(w, fmn, bis, norm):
    # every reported success is adversarial when re-checked, at the norm stored, within the ceiling
    assert torch.equal(fmn.success, torch.isfinite(fmn.min_eps))
    assert w.task.success(fmn.x_adv)[fmn.success].all()
    assert torch.allclose(size(fmn.x_adv, w.x, norm)[fmn.success], fmn.min_eps[fmn.success], rtol=0, atol=1e-6)
    assert (fmn.min_eps[fmn.success] <= CEILING[norm] * (1 + 1e-6)).all()
    # never more than 5 % above the bisection where both break; at or below it on most samples; breaks as many
    both = fmn.success & bis.success
    assert int(both.sum()) >= w.batch // 2
    ratio = fmn.min_eps[both] / bis.min_eps[both]
    assert (ratio <= 1.05).all(), ratio
    assert int((ratio <= 1).sum()) >= 0.75 * int(both.sum()), ratio
    assert int(fmn.success.sum()) >= int(bis.success.sum())


@pytest.mark.parametrize("model,goal,n", [("facenet-baseline", "dodging", 8), ("facenet-baseline", "impersonation", 6),
                                         ("depth-gan-spoof", "spoof-to-live", 8)])
def test_never_worse_than_the_bisection_in_linf(model, goal, n):
    check_against_bisection(*compare(model, goal, "linf", n), "linf")


@pytest.mark.slow
@pytest.mark.parametrize("model,goal", [("facenet-baseline", "dodging"), ("facenet-baseline", "impersonation"),
                                        ("depth-gan-spoof", "spoof-to-live")])
def test_never_worse_than_the_bisection_in_l2(model, goal):
    check_against_bisection(*compare(model, goal, "l2", 8), "l2")


# ---- the runner ----------------------------------------------------------------------------------------------------

def test_the_runner_stores_each_samples_minimal_norm(tmp_path):
    suite = tmp_path / "fmn.yaml"
    suite.write_text(textwrap.dedent("""
        name: fmn-only
        goals: [dodging]
        attacks:
          - {attack: fmn, norm: linf, eps: 16/255, params: {steps: 50}}
    """))
    store = tmp_path / "r.h5"
    res = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--attack-suite", str(suite),
                                    "--samples", "4", "--store", str(store), "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    st = ResultsStore(store)
    run = st.run()
    (cell,) = st.read_cells(run["cell_ids"])
    assert cell.config["attack"] == "fmn" and cell.config["params"]["steps"] == 50 and not cell.unreliable
    a = cell.arrays
    m, attacked, success = a["min_eps"], a["attacked"].astype(bool), a["success"].astype(bool)
    assert len(m) == 4 and attacked.any()
    assert (m[~attacked] == 0).all()
    assert np.array_equal(np.isfinite(m[attacked]), success[attacked])  # inf exactly where not broken
    ok = attacked & success
    assert ok.any() and np.allclose(m[ok], a["linf"][ok], rtol=0, atol=1e-6)  # the stored perturbation's norm
    assert (a["linf"] <= 16 / 255 + 1e-6).all()
    assert cell.summary["median_min_eps"] == pytest.approx(float(np.median(m[attacked])))
