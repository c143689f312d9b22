"""Library backends (ART, foolbox, torchattacks): budgets, query counts, refusals and agreement with native PGD."""
import math
import random
import warnings

import numpy as np
import pytest
import torch

from attacks import ATTACKS, make_attack
from attacks.backends import BackendAttack
from bench.errors import BadInputError
from bench.tasks import SpoofTask, VerificationTask
from tests.helpers import LinearEmbedder, LinearLiveness

BACKENDS = sorted(n for n in ATTACKS.names() if issubclass(ATTACKS.get(n), BackendAttack))
CHEAP = {"max_queries": 150, "max_iter": 5, "max_eval": 30, "init_eval": 10, "steps": 10}


def cheap_params(name):
    """Small query and step budgets that every adapter accepts, so each runs in well under a second."""
    known = set(make_attack(name).params())
    return {k: v for k, v in CHEAP.items() if k in known}


def spoof_task(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 16, 16, generator=g) * 0.6 + 0.2
    model = LinearLiveness(torch.randn(3, 16, 16, generator=g) / 16)
    model.b = float(-model(x).max()) - 0.05  # every frame starts as spoof, close enough to be broken
    return SpoofTask(model, 0.0, "spoof-to-live", n), x


def verification_task(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = LinearEmbedder(3 * 16 * 16, dim=8, seed=seed)
    x = torch.rand(n, 3, 16, 16, generator=g)
    refs = model(x + 0.05 * torch.randn(x.shape, generator=g)).detach()  # genuine pairs: the probe matches
    tau = float((model(x) * refs).sum(1).min()) - 0.01
    return VerificationTask(model, refs, tau, "dodging"), x


def used_budget(x_adv, x, norm):
    d = (x_adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


def test_backends_are_registered_with_their_library():
    want = {"art-square", "art-hopskipjump", "art-boundary", "art-pgd", "foolbox-boundary", "foolbox-deepfool",
            "foolbox-pgd", "torchattacks-square", "torchattacks-deepfool", "torchattacks-pgd"}
    assert want <= set(BACKENDS)
    for name in BACKENDS:
        attack = make_attack(name)
        assert attack.backend == name.split("-")[0]
        assert "verbose" not in attack.params()  # switching the library's output on does not change a cell


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("kind", ["fr", "fas"])
def test_adapter_runs_on_fr_and_fas_within_budget(name, kind):
    task, x = verification_task() if kind == "fr" else spoof_task()
    attack = make_attack(name, cheap_params(name))
    norm = "l2" if "l2" in attack.norms else "linf"
    eps = 2.0 if norm == "l2" else 16 / 255
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = attack.run(task, x, norm, eps, torch.Generator().manual_seed(0))
    assert not [str(w.message) for w in caught]  # the libraries stay quiet unless verbose
    assert out.x_adv.shape == x.shape and out.x_adv.dtype == x.dtype
    assert (used_budget(out.x_adv, x, norm) <= eps + 1e-5).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert torch.equal(out.success, task.success(out.x_adv))
    assert (out.queries > 0).all()
    if "max_queries" in attack.params():
        assert (out.queries <= attack.max_queries).all()
    if not attack.black_box:  # a large budget on a linear model: every gradient attack breaks something
        assert out.success.any(), name


@pytest.mark.parametrize("name", BACKENDS)
def test_adapter_refuses_bad_parameters_before_any_work(name):
    class Exploding(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the model was called")

    task = SpoofTask(Exploding(), 0.0, "spoof-to-live", 2)
    x = torch.rand(2, 3, 8, 8)
    attack = make_attack(name)
    norm = attack.norms[0]
    for bad_norm, bad_eps in [("linf", 1.5), ("linf", 0.0), ("l2", -1.0), ("l1", 0.1)]:
        with pytest.raises(BadInputError):
            attack.run(task, x, bad_norm, bad_eps)
    for unsupported in {"linf", "l2"} - set(attack.norms):
        with pytest.raises(BadInputError, match="does not support norm"):
            attack.run(task, x, unsupported, 0.5)
    for field in ("max_queries", "steps", "max_iter", "restarts"):
        if field in attack.params():
            with pytest.raises(BadInputError, match=field):
                make_attack(name, {field: -1})
    if "step_size" in attack.params():
        for bad in (0, 1.5):
            with pytest.raises(BadInputError, match="step_size"):
                make_attack(name, {"step_size": bad})
    with pytest.raises(BadInputError):
        attack.run(task, x, norm, torch.tensor([0.01, -1.0]))  # one sample's budget out of range


@pytest.mark.parametrize("name", ["art-square", "torchattacks-square", "art-hopskipjump", "art-boundary", "foolbox-boundary", "foolbox-pgd"])
def test_same_seed_same_points_and_global_rng_untouched(name):
    task, x = spoof_task()
    attack = make_attack(name, cheap_params(name))
    norm = attack.norms[0]
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    a = attack.run(task, x, norm, 8 / 255, torch.Generator().manual_seed(7))
    after = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    b = attack.run(task, x, norm, 8 / 255, torch.Generator().manual_seed(7))
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)


def test_per_sample_budgets_are_honoured():
    task, x = spoof_task()
    eps = torch.tensor([2, 2, 2, 16, 16, 16]) / 255
    out = make_attack("torchattacks-pgd").run(task, x, "linf", eps, torch.Generator().manual_seed(0))
    assert (used_budget(out.x_adv, x, "linf") <= eps + 1e-6).all()
    assert (used_budget(out.x_adv, x, "linf")[3:] > 2 / 255 + 1e-4).all()  # the larger budget was used


def test_linear_model_library_pgd_reaches_the_closed_form_optimum():
    """On w.x + b the best Linf point is x + eps sign(w): every library's PGD must find exactly those samples."""
    task, x = spoof_task(n=24, seed=3)
    eps = 2 / 255
    expected = task.model(x + eps * torch.sign(task.model.w.view(1, 3, 16, 16))) >= 0
    assert 0 < int(expected.sum()) < len(x)
    for name in ("art-pgd", "foolbox-pgd", "torchattacks-pgd"):
        out = make_attack(name, {"steps": 20}).run(task, x, "linf", eps, torch.Generator().manual_seed(0))
        assert torch.equal(out.success, expected), name


# ---- the shipped tiny FR baseline -------------------------------------------------------------------

def shipped_items(variant, goal, samples):
    """The clean-correct items of one goal of a shipped zoo model, as the runner builds them."""
    from bench.protocols import get_protocol
    from models_zoo.factory import load_model, resolve_model

    mut = resolve_model(variant)
    loaded = load_model(mut, None, torch.device("cpu"))
    tau = float(loaded.card["dev"]["threshold"])
    items = get_protocol(mut.default_protocol).goal_items(goal, loaded.module, tau, samples, 0, mut.input_size,
                                                          torch.device("cpu"))
    todo = (~items.task.success(items.x)).nonzero().squeeze(1)
    return items.task.subset(todo), items.x[todo]


@pytest.fixture(scope="module")
def dodging():
    return shipped_items("facenet-baseline", "dodging", 100)


@pytest.fixture(scope="module")
def impersonation():
    return shipped_items("facenet-baseline", "impersonation", 100)


@pytest.mark.slow
@pytest.mark.parametrize("goal,norm,eps", [("dodging", "linf", 1 / 255), ("dodging", "l2", 0.25), ("impersonation", "linf", 8 / 255)])
def test_native_pgd_at_least_as_strong_as_every_library_pgd(goal, norm, eps, dodging, impersonation, capsys):
    """PGD-10 with a random start, three starts each (seeds 0, 1, 2; a pair counts as broken when any start breaks
    it, the usual restart protocol): one start alone measures its luck as much as the attack. On the shipped
    baseline's impersonation pairs at 8/255, six single starts broke 66-70 of 100 pairs (ours) and 65-69 (ART's);
    seed 0 alone gave 66 against ART's 69 (a CI failure on 2026-12-07); three starts give 69 against 70."""
    task, x = dodging if goal == "dodging" else impersonation
    params = {"steps": 10, "step_size": 0.25, "random_start": True}
    counts = {}
    for name in ("pgd", "art-pgd", "foolbox-pgd", "torchattacks-pgd"):
        broken = torch.zeros(len(x), dtype=torch.bool)
        for seed in range(3):
            out = make_attack(name, params).run(task, x, norm, eps, torch.Generator().manual_seed(seed))
            assert (used_budget(out.x_adv, x, norm) <= eps + 1e-5).all(), name
            broken |= out.success
        counts[name] = int(broken.sum())
    with capsys.disabled():
        print(f"\n[cross-library PGD-10, 3 starts] facenet-baseline {goal} {norm} {eps:.4g} n={len(x)}: {counts}")
    slack = math.ceil(len(x) / 100)
    assert 0 < counts["pgd"] < len(x)  # a budget where strength can differ
    for name in ("art-pgd", "foolbox-pgd", "torchattacks-pgd"):
        assert counts["pgd"] + slack >= counts[name], (name, counts)


@pytest.mark.slow
def test_black_box_does_not_beat_white_box(dodging, capsys):
    task, x = dodging
    task, x = task.subset(torch.arange(10)), x[:10]
    eps = 1 / 255
    white = make_attack("pgd", {"steps": 20}).run(task, x, "linf", eps, torch.Generator().manual_seed(0))
    for name, params in [("art-square", {"max_queries": 200}), ("torchattacks-square", {"max_queries": 200}),
                         ("art-hopskipjump", {"max_queries": 200, "max_iter": 5, "max_eval": 50, "init_eval": 10})]:
        out = make_attack(name, params).run(task, x, "linf", eps, torch.Generator().manual_seed(0))
        assert (out.queries > 0).all() and (out.queries <= 200).all(), name
        with capsys.disabled():
            print(f"\n[black-box vs PGD-20] {name}: {int(out.success.sum())} vs {int(white.success.sum())} of {len(x)}, "
                  f"median queries {int(out.queries.median())}")
        assert int(out.success.sum()) <= int(white.success.sum()), name
