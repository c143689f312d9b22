"""Task semantics: success is judged at the operating threshold, exactly at the goal's decision."""
import torch

from bench.tasks import SpoofTask, VerificationTask
from tests.helpers import LinearEmbedder, LinearLiveness


def _pair(model, x_ref):
    return model(x_ref).detach()


def test_dodging_success_iff_embedding_crosses_threshold():
    torch.manual_seed(0)
    model = LinearEmbedder(3 * 4 * 4)
    x = torch.rand(1, 3, 4, 4)
    ref = _pair(model, x)  # genuine pair: identical images, score 1
    task = VerificationTask(model, ref, threshold=0.5, goal="dodging")
    assert not task.success(x).item()  # score 1 >= 0.5: still accepted, attacker failed
    assert task.margin(x).item() < 0
    # a probe whose embedding is orthogonal-ish to the reference is rejected: success
    # start just off x: at x itself the score is at its maximum (1) and its gradient is zero, so a descent from there
    # moved only when float rounding happened to leave a gradient (the test then depended on what ran before it)
    far = (x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    for _ in range(200):
        far.requires_grad_(True)
        s = task.scores(far)
        (g,) = torch.autograd.grad(s.sum(), far)
        far = (far - 0.05 * g.sign()).detach()
        if s.item() < 0.5:
            break
    assert task.scores(far).item() < 0.5
    assert task.success(far).item()
    assert task.margin(far).item() > 0
    # a tiny perturbation that keeps the score above the threshold is not a success
    assert not task.success(x + 1e-4).item()


def test_impersonation_success_iff_score_reaches_threshold():
    model = LinearEmbedder(3 * 4 * 4)
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    ref = _pair(model, b)
    s_ab = VerificationTask(model, ref, 0.0, "impersonation").scores(a).item()
    # threshold just above the impostor score: not accepted; just below: accepted
    assert not VerificationTask(model, ref, s_ab + 1e-3, "impersonation").success(a).item()
    assert VerificationTask(model, ref, s_ab - 1e-3, "impersonation").success(a).item()
    assert VerificationTask(model, ref, s_ab, "impersonation").success(b).item()  # b itself matches


def test_spoof_goals_mirror_each_other():
    w = torch.ones(3, 2, 2)
    model = LinearLiveness(w, b=-6.0)  # live when mean intensity > 0.5
    dark, bright = torch.full((1, 3, 2, 2), 0.2), torch.full((1, 3, 2, 2), 0.8)
    s2l = SpoofTask(model, 0.0, "spoof-to-live", 1)
    l2s = SpoofTask(model, 0.0, "live-to-spoof", 1)
    assert not s2l.success(dark).item() and s2l.success(bright).item()
    assert l2s.success(dark).item() and not l2s.success(bright).item()
    assert torch.sign(s2l.margin(bright)) == -torch.sign(l2s.margin(bright))


def test_subset_keeps_item_alignment():
    model = LinearEmbedder(3 * 4 * 4)
    xs = torch.rand(4, 3, 4, 4)
    task = VerificationTask(model, model(xs).detach(), 0.9, "dodging")
    sub = task.subset(torch.tensor([2, 0]))
    assert torch.allclose(sub.scores(xs[[2, 0]]), torch.ones(2), atol=1e-5)


def test_as_classifier_logits_agree_with_success():
    model = LinearEmbedder(3 * 4 * 4)
    xs = torch.rand(6, 3, 4, 4)
    refs = model(torch.rand(6, 3, 4, 4)).detach()
    task = VerificationTask(model, refs, 0.0, "impersonation")
    logits = task.as_classifier()(xs)
    assert logits.shape == (6, 2)
    pred_goal = logits.argmax(1) == 1
    succ = task.success(xs)
    margin = task.margin(xs)
    decided = margin.abs() > 1e-6
    assert torch.equal(pred_goal[decided], succ[decided])
