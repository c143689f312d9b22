import pytest
import torch

from attacks import make_attack
from bench.tasks import SpoofTask, VerificationTask
from tests.helpers import LinearEmbedder, LinearLiveness


def _spoof_setup(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 8, 8, generator=g)
    x = torch.rand(n, 3, 8, 8, generator=g) * 0.6 + 0.2  # away from the [0, 1] box
    model = LinearLiveness(w, b=0.0)
    scores = model(x)
    model.b = float(-scores.max()) - 0.5  # every sample starts as spoof (score < 0)
    return model, x


def test_pgd_reaches_the_closed_form_optimum_on_a_linear_model():
    model, x = _spoof_setup()
    task = SpoofTask(model, 0.0, "spoof-to-live", len(x))
    eps = 4 / 255
    # optimal Linf attack on w.x + b: x + eps * sign(w) (inside the box here); success iff that reaches 0
    best = model(x + eps * torch.sign(model.w.view(1, 3, 8, 8)))
    expected = best >= 0
    out = make_attack("pgd", {"steps": 20}).run(task, x, "linf", eps, torch.Generator().manual_seed(1))
    assert torch.equal(out.success, expected)
    assert 0 < int(expected.sum()) < len(x)  # the budget is interesting: some but not all
    assert (out.x_adv - x).abs().max() <= eps + 1e-6


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_attacks_respect_budget_and_box(norm, eps):
    model, x = _spoof_setup()
    task = SpoofTask(model, 0.0, "spoof-to-live", len(x))
    for name in ("fgsm", "pgd"):
        out = make_attack(name).run(task, x, norm, eps, torch.Generator().manual_seed(0))
        d = (out.x_adv - x).flatten(1)
        used = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
        assert (used <= eps + 1e-5).all()
        assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1


def test_pgd_early_stops_and_counts_queries():
    model, x = _spoof_setup()
    task = SpoofTask(model, 0.0, "spoof-to-live", len(x))
    eps = 16 / 255
    out = make_attack("pgd", {"steps": 10}).run(task, x, "linf", eps, torch.Generator().manual_seed(0))
    expected = model(x + eps * torch.sign(model.w.view(1, 3, 8, 8))) >= 0
    assert torch.equal(out.success, expected)
    # broken samples leave the batch early; unbroken ones use every step plus the final check
    assert (out.queries[~out.success] == 11).all()
    assert (out.queries[out.success] < 11).all()


def test_pgd_at_least_as_strong_as_fgsm_on_embedder():
    torch.manual_seed(0)
    model = LinearEmbedder(3 * 8 * 8, dim=16)
    x = torch.rand(64, 3, 8, 8)
    refs = model(torch.rand(64, 3, 8, 8)).detach()
    clean = (model(x) * refs).sum(1)
    tau = float(clean.quantile(0.95))
    task = VerificationTask(model, refs, tau, "impersonation")
    eps = 4 / 255
    f = make_attack("fgsm").run(task, x, "linf", eps).success.sum()
    p = make_attack("pgd", {"steps": 20}).run(task, x, "linf", eps, torch.Generator().manual_seed(0)).success.sum()
    assert p >= f


def test_engine_step_decays_geometrically_to_final_step_size():
    from attacks.native.engine import gradient_attack, step_sizes

    assert step_sizes(0.5, None, 3) == [0.5] * 3
    assert step_sizes(0.5, 0.1, 1) == [0.5]
    assert step_sizes(0.8, 0.05, 5) == pytest.approx([0.8, 0.4, 0.2, 0.1, 0.05])
    # on a linear model every step goes along sign(w): the point reached is the sum of the steps
    model, x = _spoof_setup(n=4)
    model.b -= 100.0  # unreachable: no sample leaves early, every step is taken
    task = SpoofTask(model, 0.0, "spoof-to-live", len(x))
    eps = 8 / 255
    out = gradient_attack(task, x, "linf", eps, steps=3, step_size=0.4, final_step_size=0.1, random_init=False)
    expected = x + (0.4 + 0.2 + 0.1) * eps * torch.sign(model.w.view(1, 3, 8, 8))
    assert torch.allclose(out.x_adv, expected, atol=1e-6)
    fixed = gradient_attack(task, x, "linf", eps, steps=3, step_size=0.4, random_init=False)
    assert torch.allclose(fixed.x_adv, x + eps * torch.sign(model.w.view(1, 3, 8, 8)), atol=1e-6)  # 1.2 eps, projected
