"""The native Square attack: score-based, batched, per-sample early stop and query budget."""
import time

import pytest
import torch

from attacks import ATTACKS, make_attack
from attacks.native.square import p_at, pyramid, side_at, update_shape
from bench.checks import _is_black_box
from bench.errors import BadInputError, FacebenchError
from bench.tasks import SpoofTask
from tests.helpers import LinearLiveness


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _spoof(n=32, seed=0, size=8):
    """Linear liveness w.x + b, every sample a spoof (score < 0), inputs away from the [0, 1] box edges."""
    g = _gen(seed)
    w = torch.randn(3, size, size, generator=g)
    x = torch.rand(n, 3, size, size, generator=g) * 0.6 + 0.2
    model = LinearLiveness(w, b=0.0)
    model.b = float(-model(x).max()) - 0.5
    return model, x, SpoofTask(model, 0.0, "spoof-to-live", n)


def used(x_adv, x, norm):
    d = (x_adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


class SpyTask:
    """Wraps a task; records, per call to `scores`, the global indices of the rows queried."""

    def __init__(self, task, index=None, calls=None):
        self.task = task
        self.index = torch.arange(len(task)) if index is None else index
        self.calls = [] if calls is None else calls

    def __len__(self):
        return self.index.numel()

    def scores(self, x):
        assert not torch.is_grad_enabled() or not x.requires_grad, "a black-box attack asked for a gradient"
        self.calls.append(self.index.clone())
        return self.task.scores(x)

    def margin_from_scores(self, s):
        return self.task.margin_from_scores(s)

    def success_from_scores(self, s):
        return self.task.success_from_scores(s)

    def subset(self, index):
        return SpyTask(self.task.subset(index), self.index[index], self.calls)

    def margin(self, x):
        return self.task.margin(x)

    def success(self, x):
        return self.task.success(x)


def test_registered_native_and_black_box():
    attack = make_attack("square")
    assert attack.backend == "native" and attack.black_box
    assert set(attack.norms) == {"linf", "l2"}
    assert attack.params() == {"max_queries": 5000, "p_init": 0.8, "restarts": 1}
    assert _is_black_box({"attack": "square", "params": attack.params()}) and "square" in ATTACKS.names()


def test_p_schedule_follows_the_paper_rescaled():
    # halved after 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000 queries
    assert p_at(0.8, 10, 10000) == 0.8 and p_at(0.8, 11, 10000) == 0.4
    assert p_at(0.8, 51, 10000) == 0.2 and p_at(0.8, 8001, 10000) == 0.8 / 2**9
    assert p_at(0.8, 5, 5000) == 0.8 and p_at(0.8, 6, 5000) == 0.4  # 6 of 5000 is 12 of 10 000
    assert p_at(0.5, 100, 100) == 0.5 / 2**9
    assert side_at(0.8, 8, 8) == 7 and side_at(1e-6, 8, 8) == 1 and side_at(1e-6, 8, 8, minimum=2) == 2
    assert side_at(1.0, 4, 9) == 4  # never wider than the image


def test_l2_shapes():
    eta = pyramid(5, 5)
    assert eta[2, 2] == eta.max() and torch.allclose(eta, eta.T) and (eta > 0).all()
    for h in (2, 3, 6, 7):
        u = update_shape(h)
        assert u.shape == (h, h) and abs(float(u.norm()) - 1) < 1e-5
        assert abs(float(u.sum())) < 1e-5 or h % 2  # two halves of opposite sign


def test_linf_breaks_exactly_what_the_closed_form_optimum_reaches():
    model, x, task = _spoof()
    eps = 4 / 255
    # the optimal Linf point of w.x + b is x + eps sign(w): success iff |margin| <= eps ||w||_1
    reachable = -model(x) <= eps * model.w.abs().sum()
    assert 0 < int(reachable.sum()) < len(x)
    out = make_attack("square", {"max_queries": 2000}).run(task, x, "linf", eps, _gen(1))
    assert torch.equal(out.success, reachable)
    assert torch.equal(task.success(out.x_adv), out.success)
    assert (used(out.x_adv, x, "linf") <= eps + 1e-6).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert (out.queries >= 1).all() and (out.queries <= 2000).all()
    assert (out.queries[~out.success] == 2000).all()
    # the unbroken ones end closer to the goal than they started (random search only accepts improvements)
    assert (task.margin(out.x_adv)[~out.success] > task.margin(x)[~out.success]).all()


def test_never_breaks_beyond_the_optimum_near_the_box_edges():
    # inputs on the edges of [0, 1] and a large budget: the clip matters, the optimum is the clipped corner
    g = _gen(4)
    n = 24
    w = torch.randn(3, 8, 8, generator=g)
    x = (torch.rand(n, 3, 8, 8, generator=g) > 0.5).float() * 0.98 + 0.01
    model = LinearLiveness(w)
    model.b = float(-model(x).max()) - 0.5
    task = SpoofTask(model, 0.0, "spoof-to-live", n)
    eps = 16 / 255
    best = (x + eps * torch.sign(w)).clamp(0, 1)
    reachable = model(best) >= 0
    out = make_attack("square", {"max_queries": 600}).run(task, x, "linf", eps, _gen(0))
    assert not (out.success & ~reachable).any()
    assert (used(out.x_adv, x, "linf") <= eps + 1e-6).all() and out.x_adv.min() >= 0 and out.x_adv.max() <= 1


def test_samples_broken_at_initialisation_cost_one_query_and_leave_the_batch():
    g = _gen(3)
    w = torch.randn(3, 8, 8, generator=g)
    hi, lo = (w > 0).float(), (w < 0).float()  # the highest and the lowest liveness score in [0, 1]
    model = LinearLiveness(w)
    model.b = -float(model(hi[None]) + model(lo[None])) / 2
    even = torch.arange(12) % 2 == 0
    x = torch.where(even.view(-1, 1, 1, 1), hi, lo).clone()  # even: live by far, odd: a spoof beyond reach
    spy = SpyTask(SpoofTask(model, 0.0, "spoof-to-live", 12))
    out = make_attack("square", {"max_queries": 50}).run(spy, x, "linf", 1 / 255, _gen(0))
    assert torch.equal(out.success, even)
    assert (out.queries[even] == 1).all() and (out.queries[~even] == 50).all()
    rows = torch.cat(spy.calls)
    assert torch.equal(torch.bincount(rows, minlength=12), out.queries)  # every forward counted, nothing more
    assert all(not even[c].any() for c in spy.calls[1:])  # broken samples are never queried again


def test_early_stopped_samples_are_not_queried_again_and_counts_match():
    model, x, task = _spoof(n=32)
    spy = SpyTask(task)
    eps = 4 / 255
    out = make_attack("square", {"max_queries": 400}).run(spy, x, "linf", eps, _gen(2))
    assert out.success.any() and not out.success.all()
    rows = torch.cat(spy.calls)
    assert torch.equal(torch.bincount(rows, minlength=len(x)), out.queries)
    for i in out.success.nonzero().squeeze(1).tolist():
        calls_with_i = [k for k, c in enumerate(spy.calls) if (c == i).any()]
        assert len(calls_with_i) == int(out.queries[i])
        assert calls_with_i == list(range(len(calls_with_i)))  # queried from the start, then never again
    # one forward per iteration, the batch shrinking as samples break
    sizes = [c.numel() for c in spy.calls]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 400


def test_same_seed_same_result_and_global_rng_untouched():
    model, x, task = _spoof(n=16)
    for norm, eps in (("linf", 4 / 255), ("l2", 0.3)):
        torch.manual_seed(5)
        before = torch.get_rng_state()
        a = make_attack("square", {"max_queries": 200}).run(task, x, norm, eps, _gen(7))
        assert torch.equal(before, torch.get_rng_state())
        b = make_attack("square", {"max_queries": 200}).run(task, x, norm, eps, _gen(7))
        assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries) and torch.equal(a.success, b.success)
        c = make_attack("square", {"max_queries": 200}).run(task, x, norm, eps, _gen(8))
        assert not torch.equal(a.x_adv, c.x_adv)


def test_linf_redraws_stop_being_built_but_not_drawn_once_no_sample_needs_one(monkeypatch):
    """`_linf_proposal` stops building redraws once every sample's proposal changes its point, but still draws them:
    the attack's result is exactly that of building every redraw (the loop as it was, perf's reference), and
    the run takes both paths (iterations with redraws built, iterations with them only drawn)."""
    import attacks.native.square as sq
    from perf.blackbox import every_redraw_built

    counts = {"proposals": 0, "windows": 0}
    fast, windows = sq._linf_proposal, sq._windows

    def counted_proposal(*args):
        counts["proposals"] += 1
        return fast(*args)

    def counted_windows(*args):
        counts["windows"] += 1
        return windows(*args)

    model, x, task = _spoof(n=6, size=6)
    out = {}
    for name, proposal in (("fast", counted_proposal), ("every", every_redraw_built)):
        monkeypatch.setattr(sq, "_linf_proposal", proposal)
        if name == "fast":
            monkeypatch.setattr(sq, "_windows", counted_windows)
        out[name] = sq.square_attack(task, x, "linf", 1 / 255, max_queries=300, generator=_gen(3))
        monkeypatch.setattr(sq, "_windows", windows)
    assert not out["fast"].success.any()  # every sample runs every iteration
    for field in ("x_adv", "success", "queries"):
        assert torch.equal(getattr(out["fast"], field), getattr(out["every"], field)), field
    assert counts["proposals"] == 299 and counts["proposals"] < counts["windows"] < (sq.RETRIES + 1) * counts["proposals"]


def test_l2_stays_on_budget_and_never_beyond_the_optimum():
    model, x, task = _spoof()
    eps = 0.25
    reachable = -model(x) <= eps * model.w.norm()
    assert 0 < int(reachable.sum()) < len(x)
    out = make_attack("square", {"max_queries": 1000}).run(task, x, "l2", eps, _gen(1))
    assert out.success.any()
    assert not (out.success & ~reachable).any()
    assert (used(out.x_adv, x, "l2") <= eps + 1e-5).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert torch.equal(task.success(out.x_adv), out.success)
    assert (out.queries <= 1000).all()
    assert (task.margin(out.x_adv)[~out.success] > task.margin(x)[~out.success]).all()


def test_l2_perturbation_stays_on_the_sphere_away_from_the_box():
    # inputs in the middle of [0, 1] and a small budget: no clip, so every accepted point has norm eps
    model, x, task = _spoof(n=8, size=16)
    x = x * 0 + 0.5
    eps = 0.5
    out = make_attack("square", {"max_queries": 100}).run(task, x, "l2", eps, _gen(0))
    assert torch.allclose(used(out.x_adv, x, "l2"), torch.full((8,), eps), atol=1e-4)


def test_restarts_share_the_query_budget():
    model, x, task = _spoof(n=16)
    out = make_attack("square", {"max_queries": 301, "restarts": 3}).run(task, x, "linf", 2 / 255, _gen(0))
    assert (out.queries <= 301).all() and (out.queries[~out.success] == 301).all()
    assert (used(out.x_adv, x, "linf") <= 2 / 255 + 1e-6).all()


def test_per_sample_budgets_are_honoured():
    model, x, task = _spoof(n=6)
    eps = torch.tensor([2, 2, 2, 16, 16, 16]) / 255
    out = make_attack("square", {"max_queries": 50}).run(task, x, "linf", eps, _gen(0))
    u = used(out.x_adv, x, "linf")
    assert (u <= eps + 1e-6).all() and (u[3:] > 2 / 255 + 1e-4).all()


@pytest.mark.parametrize("params,field", [({"max_queries": 0}, "max_queries"), ({"max_queries": -5}, "max_queries"),
                                          ({"p_init": 0.0}, "p_init"), ({"p_init": 1.5}, "p_init"),
                                          ({"restarts": 0}, "restarts"), ({"restarts": 5, "max_queries": 4}, "restarts"),
                                          ({"max_queries": "many"}, "max_queries")])
def test_bad_parameters_are_refused_in_one_line(params, field):
    with pytest.raises(FacebenchError) as e:
        make_attack("square", params)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_bad_budgets_and_norms_are_refused_before_any_query():
    class Exploding(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the model was called")

    task = SpoofTask(Exploding(), 0.0, "spoof-to-live", 2)
    x = torch.rand(2, 3, 8, 8)
    attack = make_attack("square")
    for norm, eps in [("linf", 1.5), ("linf", 0.0), ("l2", -1.0), ("l1", 0.1)]:
        with pytest.raises(BadInputError):
            attack.run(task, x, norm, eps)
        with pytest.raises(BadInputError):
            attack.check(norm, eps, "dodging")
    with pytest.raises(BadInputError):
        attack.run(task, x, "linf", torch.tensor([0.01, -1.0]))


# ---- the shipped tiny FR baseline -------------------------------------------------------------------

@pytest.mark.slow
def test_native_square_at_least_as_strong_as_torchattacks_square_and_faster(capsys):
    from tests.test_attack_backends import shipped_items

    task, x = shipped_items("facenet-baseline", "impersonation", 40)
    task, x = task.subset(torch.arange(12)), x[:12]
    eps, budget = 32 / 255, 300
    counts, rates = {}, {}
    for name in ("square", "torchattacks-square"):
        broken = 0
        t0 = time.perf_counter()
        for seed in (0, 1):
            out = make_attack(name, {"max_queries": budget}).run(task, x, "linf", eps, _gen(seed))
            assert (used(out.x_adv, x, "linf") <= eps + 1e-6).all() and (out.queries <= budget).all(), name
            assert torch.equal(task.success(out.x_adv), out.success), name
            broken += int(out.success.sum())
        counts[name] = broken
        rates[name] = 2 * len(x) / (time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\n[square, {budget} queries, Linf 32/255] facenet-baseline impersonation, {len(x)} pairs x 2 seeds: "
              f"broken {counts}, samples/s " + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()))
    # random search at a few hundred queries: the two differ by chance on a handful of samples (the seeds do
    # not map between them), so allow two of the 24 runs
    assert counts["square"] + 2 >= counts["torchattacks-square"], counts
    assert rates["square"] > rates["torchattacks-square"], rates
