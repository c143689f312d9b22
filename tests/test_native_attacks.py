"""The native attacks beyond FGSM / PGD, on hand-built models whose answer is known in closed form."""
import pytest
import torch

from attacks import make_attack, minimal_eps, success_curve, transfer
from attacks.native.apgd import checkpoints
from attacks.native.masked import eyeglass_mask, patch_mask
from bench.suites import load_suite, suite_from_dict
from bench.errors import BadInputError
from bench.tasks import SpoofTask, VerificationTask
from tests.helpers import LinearClassTask, LinearEmbedder, LinearLiveness

NEW = ("bim", "mim", "apgd", "apgd-t", "cw-l2", "eyeglass", "patch", "min-eps")


def _spoof(n=32, seed=0, size=8):
    """Linear liveness w.x + b, every sample a spoof (score < 0), inputs away from the [0, 1] box edges."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, size, size, generator=g)
    x = torch.rand(n, 3, size, size, generator=g) * 0.6 + 0.2
    model = LinearLiveness(w, b=0.0)
    model.b = float(-model(x).max()) - 0.5
    return model, x, SpoofTask(model, 0.0, "spoof-to-live", n)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["apgd", "pgd", "bim", "mim", "apgd-t"])
def test_linf_attacks_reach_the_closed_form_optimum(name):
    model, x, task = _spoof()
    eps = 4 / 255
    # the optimal Linf attack on w.x + b is x + eps sign(w): success iff |margin| <= eps ||w||_1
    expected = -model(x) <= eps * model.w.abs().sum()
    assert 0 < int(expected.sum()) < len(x)
    out = make_attack(name, {"steps": 20}).run(task, x, "linf", eps, _gen(1))
    assert torch.equal(out.success, expected)
    assert torch.equal(task.success(out.x_adv), expected)
    assert (out.x_adv - x).abs().max() <= eps + 1e-6


def test_apgd_l2_reaches_the_closed_form_optimum():
    model, x, task = _spoof()
    eps = 0.25
    expected = -model(x) <= eps * model.w.norm()
    assert 0 < int(expected.sum()) < len(x)
    out = make_attack("apgd", {"steps": 20, "random_start": False}).run(task, x, "l2", eps, _gen(1))
    assert torch.equal(out.success, expected)
    assert ((out.x_adv - x).flatten(1).norm(dim=1) <= eps + 1e-5).all()


def test_apgd_checkpoints_follow_the_paper():
    # p = 0, 0.22, 0.41, 0.57, 0.7, 0.8, 0.87, 0.93, 0.99 (then 1.05 > 1)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1) == [1]


def test_apgd_targeted_reaches_the_multiclass_closed_form():
    g = _gen(3)
    c, n = 5, 64
    weight = torch.randn(c, 3 * 4 * 4, generator=g)
    x = torch.rand(n, 3, 4, 4, generator=g) * 0.6 + 0.2
    labels = (x.flatten(1) @ weight.T).argmax(1)  # every sample clean-correct
    task = LinearClassTask(weight, labels)
    eps = 6 / 255
    z = x.flatten(1) @ weight.T
    gap = z - z.gather(1, labels[:, None])  # z_j - z_y
    reach = gap + eps * (weight[None] - weight[labels][:, None]).abs().sum(2)  # best z_j - z_y over the ball
    reach.scatter_(1, labels[:, None], float("-inf"))
    expected = (reach > 0).any(1)
    assert 0 < int(expected.sum()) < n
    targeted = make_attack("apgd-t", {"steps": 10, "n_targets": c - 1}).run(task, x, "linf", eps, _gen(0))
    assert torch.equal(targeted.success, expected)
    untargeted = make_attack("apgd", {"steps": 10}).run(task, x, "linf", eps, _gen(0))
    assert not (untargeted.success & ~expected).any()  # nothing beyond the optimum
    assert int(targeted.success.sum()) >= int(untargeted.success.sum())
    # one target only reaches less (or as much) as all of them
    one = make_attack("apgd-t", {"steps": 10, "n_targets": 1}).run(task, x, "linf", eps, _gen(0))
    assert not (one.success & ~targeted.success).any()


def test_apgd_targeted_finds_a_far_class_that_the_untargeted_margin_hides():
    # class 1 is the runner-up on clean input but almost flat (cannot be reached); class 2 scores lower
    # but moves fast: the untargeted margin climbs towards class 1, the second target reaches class 2
    g = _gen(5)
    n, d = 32, 48
    x = torch.rand(n, 3, 4, 4, generator=g) * 0.6 + 0.2
    w2 = torch.randn(d, generator=g)
    weight = torch.stack([torch.zeros(d), 0.01 * torch.randn(d, generator=g), w2])
    bias = torch.tensor([0.0, -0.1, float(-(x.flatten(1) @ w2).max()) - 0.3])
    task = LinearClassTask(weight, torch.zeros(n, dtype=torch.long), bias=bias)
    assert not task.success(x).any()
    eps = 8 / 255
    expected = (x.flatten(1) @ w2 + bias[2]) + eps * w2.abs().sum() > 0
    assert 0 < int(expected.sum()) < n
    targeted = make_attack("apgd-t", {"steps": 10}).run(task, x, "linf", eps, _gen(0))
    assert torch.equal(targeted.success, expected)
    untargeted = make_attack("apgd", {"steps": 10}).run(task, x, "linf", eps, _gen(0))
    assert int(untargeted.success.sum()) < int(expected.sum())
    assert not (untargeted.success & ~targeted.success).any()


def test_apgd_targeted_on_a_binary_task_is_the_untargeted_attack():
    _, x, task = _spoof()
    eps = 4 / 255
    a = make_attack("apgd", {"steps": 10}).run(task, x, "linf", eps, _gen(2))
    t = make_attack("apgd-t", {"steps": 10}).run(task, x, "linf", eps, _gen(2))
    assert torch.equal(a.success, t.success)


def _embedder_task(goal="impersonation", n=48, seed=0):
    torch.manual_seed(seed)
    model = LinearEmbedder(3 * 8 * 8, dim=16, seed=seed)
    x = torch.rand(n, 3, 8, 8)
    refs = model(torch.rand(n, 3, 8, 8)).detach()
    tau = float((model(x) * refs).sum(1).quantile(0.95))
    return x, VerificationTask(model, refs, tau, goal)


@pytest.mark.parametrize("name", ["pgd", "apgd", "eyeglass"])
def test_more_restarts_never_lower_success(name):
    x, task = _embedder_task()
    eps = 4 / 255
    one = make_attack(name, {"steps": 5, "restarts": 1}).run(task, x, "linf", eps, _gen(0))
    three = make_attack(name, {"steps": 5, "restarts": 3}).run(task, x, "linf", eps, _gen(0))
    # the first restart draws the same start, so the broken set can only grow
    assert not (one.success & ~three.success).any()


@pytest.mark.parametrize("name", ["pgd", "bim", "mim", "apgd"])
def test_more_steps_never_lower_success(name):
    x, task = _embedder_task()
    eps = 8 / 255
    few = make_attack(name, {"steps": 3}).run(task, x, "linf", eps, _gen(0))
    many = make_attack(name, {"steps": 30}).run(task, x, "linf", eps, _gen(0))
    assert int(many.success.sum()) >= int(few.success.sum())
    assert int(many.success.sum()) > int(task.success(x).sum())  # more than the clean-broken ones


def test_apgd_early_stops_and_counts_queries():
    model, x, task = _spoof()
    eps = 16 / 255
    out = make_attack("apgd", {"steps": 10}).run(task, x, "linf", eps, _gen(0))
    expected = -model(x) <= eps * model.w.abs().sum()
    assert torch.equal(out.success, expected)
    assert (out.queries[~out.success] == 11).all()  # the start and every step
    assert (out.queries[out.success] <= 2).all()  # the first 2 eps step reaches the corner


def test_cw_l2_finds_the_closed_form_minimal_distance():
    model, x, task = _spoof(n=16)
    optimum = -model(x) / model.w.norm()  # distance from x to the hyperplane w.x + b = 0
    out = make_attack("cw-l2", {"steps": 200, "lr": 0.01}).run(task, x, "l2", 10.0)
    assert out.success.all()
    found = out.min_eps
    assert (found >= optimum - 1e-4).all()
    assert (found <= optimum * 1.05 + 2e-3).all(), (found / optimum).max()
    assert ((out.x_adv - x).flatten(1).norm(dim=1) - found).abs().max() < 1e-4
    # at a budget, success means the distance found is within it
    eps = float(optimum.median())
    small = make_attack("cw-l2", {"steps": 200}).run(task, x, "l2", eps)
    assert torch.equal(small.success, small.min_eps <= eps)
    assert (optimum[small.success] <= eps + 1e-6).all()
    assert ((small.x_adv - x).flatten(1).norm(dim=1) <= eps + 1e-5).all()


@pytest.mark.parametrize("norm,closed", [("linf", lambda w: w.abs().sum()), ("l2", lambda w: w.norm())])
def test_bisection_matches_the_closed_form_minimal_eps(norm, closed):
    model, x, task = _spoof()
    optimum = -model(x) / closed(model.w)
    eps_max, steps = (16 / 255, 12) if norm == "linf" else (0.3, 12)
    pgd = make_attack("pgd", {"steps": 20, "random_start": False})
    out = minimal_eps(task, x, pgd, norm, eps_max, search_steps=steps, generator=_gen(0))
    tol = eps_max / 2**steps
    reachable = optimum <= eps_max
    assert 0 < int(reachable.sum()) < len(x)
    assert torch.equal(out.success, reachable)
    found = out.min_eps[reachable]
    assert (found >= optimum[reachable] - 1e-6).all()
    assert (found <= optimum[reachable] + tol + 1e-6).all()
    assert torch.isinf(out.min_eps[~reachable]).all()
    # the point returned for a broken sample succeeds within the minimal budget found
    d = (out.x_adv - x).flatten(1)
    used = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert (used[reachable] <= found + 1e-5).all()
    assert task.success(out.x_adv)[reachable].all()
    # the success-rate curve read from min eps agrees with attacking at that budget
    curve = success_curve(out.min_eps, torch.tensor([eps_max / 2]))
    assert abs(float(curve[0]) - float((optimum <= eps_max / 2).float().mean())) <= 1 / len(x)


def test_registered_min_eps_carries_zero_for_clean_broken_samples():
    model, x, _ = _spoof()
    scores = model(x)
    tau = float(scores.median())  # half the samples already accepted as live
    task = SpoofTask(model, tau, "spoof-to-live", len(x))
    out = make_attack("min-eps", {"attack_steps": 10, "search_steps": 8}).run(task, x, "linf", 8 / 255, _gen(0))
    clean = scores >= tau
    assert (out.min_eps[clean] == 0).all()
    assert (out.min_eps[~clean] > 0).all()
    assert out.success[clean].all()


def test_masked_attacks_are_zero_outside_their_mask():
    model, x, task = _spoof(n=8, size=32)
    glasses = eyeglass_mask(32, 32)
    assert 0.02 < float(glasses.mean()) < 0.15  # a frame, not the whole face
    assert float(glasses[..., 24:, :].sum()) == 0  # nothing on the lower face
    for name, mask, params in (("eyeglass", glasses, {}), ("patch", patch_mask(32, 32, 0.25, 0.2, 0.7),
                                                          {"size": 0.25, "cx": 0.2, "cy": 0.7})):
        attack = make_attack(name, {"steps": 10, **params})
        assert torch.equal(attack.mask(x), mask)
        out = attack.run(task, x, "linf", 1.0, _gen(0))
        delta = out.x_adv - x
        assert float(delta.mul(1 - mask).abs().max()) == 0.0
        assert float(delta.abs().max()) > 0.1  # it does use the large budget inside
        assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    # the patch: an 8 x 8 square, kept inside the image
    assert float(patch_mask(32, 32, 0.25, 0.2, 0.7).sum()) == 64
    assert float(patch_mask(32, 32, 0.5, 1.0, 1.0)[..., 16:, 16:].sum()) == 256


def test_eyeglass_breaks_a_linear_model_that_its_mask_can_reach():
    model, x, task = _spoof(n=8, size=32)
    mask = eyeglass_mask(32, 32).expand(1, 3, 32, 32)
    # closed form with the frame unconstrained in colour: each masked pixel goes to 1 where w > 0, else 0
    best = torch.where(mask > 0, (model.w.view(1, 3, 32, 32) > 0).float(), x)
    tau = float(model(best).median())  # half of them can be broken through the frame, half cannot
    task = SpoofTask(model, tau, "spoof-to-live", len(x))
    expected = model(best) >= tau
    assert 0 < int(expected.sum()) < len(x)
    out = make_attack("eyeglass", {"steps": 40, "step_size": 0.1}).run(task, x, "linf", 1.0, _gen(0))
    assert torch.equal(out.success, expected)


def test_transfer_between_two_tiny_models():
    model, x, source = _spoof()
    eps = 4 / 255
    same = SpoofTask(LinearLiveness(model.w.view(3, 8, 8).clone(), model.b), 0.0, "spoof-to-live", len(x))
    flipped = LinearLiveness(-model.w.view(3, 8, 8), 0.0)
    flipped.b = float(-flipped(x).max()) - 0.5
    opposite = SpoofTask(flipped, 0.0, "spoof-to-live", len(x))
    pgd = make_attack("pgd", {"steps": 10})
    to_same = transfer(source, same, pgd, x, "linf", eps, _gen(0))
    assert torch.equal(to_same.success, to_same.source_success)
    assert int(to_same.success.sum()) > 0
    to_opposite = transfer(source, opposite, pgd, x, "linf", eps, _gen(0))
    assert int(to_opposite.source_success.sum()) > 0
    assert not to_opposite.success.any()  # the perturbation lowers the opposite model's score
    with pytest.raises(BadInputError):
        transfer(source, opposite.subset(torch.arange(3)), pgd, x, "linf", eps)
    with pytest.raises(BadInputError):
        transfer(source, same, pgd, x, "linf", 2.0)


BAD = [
    ("bim", {"steps": -1}), ("mim", {"steps": 0}), ("mim", {"decay": -1.0}),
    ("apgd", {"steps": -3}), ("apgd", {"restarts": 0}), ("apgd", {"rho": 1.5}), ("apgd", {"alpha": 0.0}),
    ("apgd-t", {"n_targets": 0}), ("apgd-t", {"steps": -1}),
    ("cw-l2", {"steps": -1}), ("cw-l2", {"kappa": -0.1}), ("cw-l2", {"initial_const": 0.0}), ("cw-l2", {"search_steps": 0}),
    ("eyeglass", {"steps": -1}), ("eyeglass", {"step_size": 2.0}),
    ("patch", {"size": 0.0}), ("patch", {"size": 1.5}), ("patch", {"cx": -0.1}), ("patch", {"steps": -2}),
    ("min-eps", {"attack": "min-eps"}), ("min-eps", {"search_steps": 0}), ("min-eps", {"attack_steps": -1}),
    ("min-eps", {"attack": "nope"}), ("apgd", {"steps": "many"}),
]


@pytest.mark.parametrize("name,params", BAD)
def test_bad_parameters_are_refused_in_one_line(name, params):
    with pytest.raises(Exception) as e:
        make_attack(name, params)
    from bench.errors import FacebenchError

    assert isinstance(e.value, FacebenchError)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("norm,eps", [("linf", 1.5), ("linf", 0.0), ("linf", -0.1), ("l2", -1.0), ("l1", 0.1)])
def test_bad_budgets_and_norms_are_refused_before_work(name, norm, eps):
    with pytest.raises(BadInputError) as e:
        make_attack(name).check(norm, eps, "dodging")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name,norm", [("cw-l2", "linf"), ("eyeglass", "l2"), ("patch", "l2"), ("min-eps", "l1")])
def test_unsupported_norms_are_refused(name, norm):
    with pytest.raises(BadInputError):
        make_attack(name).check(norm, 0.5, None)


@pytest.mark.parametrize("name", NEW)
def test_every_new_attack_builds_from_a_suite_yaml_entry(name, tmp_path):
    norm, eps = ("l2", [0.5]) if name == "cw-l2" else ("linf", ["4/255", 1.0] if name in ("eyeglass", "patch") else ["4/255"])
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"name": "mine", "attacks": [{"attack": name, "norm": norm, "eps": eps, "params": {"steps": 5}
                                                                  if name not in ("min-eps",) else {"attack_steps": 5}}]}))
    suite = load_suite(str(path))
    assert suite.entries[0].attack == name
    bad = suite_from_dict({"attacks": [{"attack": name, "norm": norm, "eps": eps, "params": {"steps": -1}}]}, "x.yaml")
    with pytest.raises(BadInputError):
        bad.validate()


@pytest.mark.parametrize("name", NEW)
def test_every_new_attack_respects_budget_and_box(name):
    model, x, task = _spoof(n=8, size=16)
    norm, eps = ("l2", 0.5) if name == "cw-l2" else ("linf", 8 / 255)
    params = {"attack_steps": 3, "search_steps": 3} if name == "min-eps" else {"steps": 5}
    if name == "cw-l2":
        params["search_steps"] = 2
    out = make_attack(name, params).run(task, x, norm, eps, _gen(0))
    d = (out.x_adv - x).flatten(1)
    used = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert (used <= eps + 1e-5).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert torch.equal(task.success(out.x_adv), out.success)
    assert out.queries.shape == (len(x),) and (out.queries >= 1).all()
