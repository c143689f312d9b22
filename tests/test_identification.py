"""Closed-set identification: the top-1 rule, its margins, the gallery split and the runner's handling."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attacks.base import Attack, AttackOutput
from bench.data.synth.in_memory import synth_fr_identification
from bench.protocols import get_protocol
from bench.errors import BadInputError
from bench.batching import batched_scores
from bench.cells import attack_cell
from bench.runner import RunConfig, run_benchmark
from bench.tasks.items import GoalItems
from bench.store import ResultsStore
from bench.tasks import IdentificationTask, gallery_templates
from tests.helpers import LinearEmbedder


def _setup(n=12, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = LinearEmbedder(3 * 4 * 4, dim=8)
    gallery = torch.rand(3 * k, 3, 4, 4, generator=g)
    glabels = torch.arange(k).repeat_interleave(3)
    templates = gallery_templates(model(gallery), glabels, k)
    x = torch.rand(n, 3, 4, 4, generator=g)
    labels = model(x).detach() @ templates.T
    return model, templates, x, labels.argmax(1)  # probes labelled as their clean top-1: all correct


def test_templates_are_renormalised_means():
    e = F.normalize(torch.randn(6, 5), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    t = gallery_templates(e * 3.0, labels, 3)  # unnormalised input is normalised first
    assert torch.allclose(t.norm(dim=1), torch.ones(3), atol=1e-6)
    assert torch.allclose(t[1], F.normalize(e[2:5].mean(0), dim=0), atol=1e-6)
    assert torch.allclose(t[2], e[5], atol=1e-6)


@pytest.mark.parametrize("goal", ["misidentify", "target-identity"])
def test_margin_positive_iff_top1_reaches_goal(goal):
    model, templates, x, _ = _setup(n=64)
    labels = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(1))
    targets = (labels + 1 + torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))) % 4
    task = IdentificationTask(model, templates, labels, goal, targets if goal == "target-identity" else None)
    s = task.scores(x)
    top = s.argmax(1)
    expected = top != labels if goal == "misidentify" else top == targets
    assert torch.equal(task.success(x), expected)
    assert 0 < int(expected.sum()) < 64  # both outcomes occur
    m = task.margin(x)
    assert torch.equal(m > 0, expected)


def test_ties_go_to_the_decision_rule():
    templates = torch.eye(2)
    model = torch.nn.Identity()
    x = F.normalize(torch.tensor([[1.0, 1.0]]), dim=1)  # equally similar to both identities
    mis = IdentificationTask(model, templates, torch.tensor([1]), "misidentify")
    assert mis.margin(x).item() == 0.0
    assert mis.success(x).item()  # argmax takes identity 0, not the own identity 1
    assert not IdentificationTask(model, templates, torch.tensor([0]), "misidentify").success(x).item()
    tgt = IdentificationTask(model, templates, torch.tensor([1]), "target-identity", torch.tensor([0]))
    assert tgt.success(x).item()


def test_target_must_differ_and_subset_keeps_alignment():
    model, templates, x, labels = _setup()
    with pytest.raises(ValueError):
        IdentificationTask(model, templates, labels, "target-identity", labels)
    targets = (labels + 1) % 4
    task = IdentificationTask(model, templates, labels, "target-identity", targets)
    sub = task.subset(torch.tensor([5, 2]))
    assert torch.equal(sub.labels, labels[[5, 2]]) and torch.equal(sub.targets, targets[[5, 2]])
    assert torch.allclose(sub.margin(x[[5, 2]]), task.margin(x)[[5, 2]])


def test_classifier_views():
    model, templates, x, labels = _setup(n=16)
    targets = (labels + 1) % 4
    task = IdentificationTask(model, templates, labels, "target-identity", targets)
    two = task.as_classifier()(x)
    assert two.shape == (16, 2) and torch.allclose(two[:, 1] - two[:, 0], 10 * task.margin(x), atol=1e-5)
    logits = task.as_identity_classifier()(x)
    assert logits.shape == (16, 4)
    assert torch.equal(logits.argmax(1), labels)  # probes are clean-correct: true class on top
    # a targeted step on the K logits moves towards the target class
    xg = x.clone().requires_grad_(True)
    loss = F.cross_entropy(task.as_identity_classifier()(xg), task.targets)
    (g,) = torch.autograd.grad(loss, xg)
    assert (task.margin(x - 0.05 * g.sign()) > task.margin(x)).float().mean() > 0.9


class _Spy(Attack):
    """Records which items it is asked to attack; returns them unchanged."""

    name = "spy"

    def __init__(self):
        self.seen = []

    def run(self, task, x, norm, eps, generator=None):
        self.seen.append(task.labels.clone())
        return AttackOutput(x.clone(), task.success(x), torch.ones(len(x), dtype=torch.long))


def test_clean_wrong_probes_count_as_broken_and_are_not_attacked():
    model, templates, x, labels = _setup(n=12)
    wrong = torch.tensor([1, 4, 7])
    labels = labels.clone()
    labels[wrong] = (labels[wrong] + 1) % 4  # these probes are misidentified on clean input
    # their target is neither their top-1 nor their own identity: target not reached on clean input
    targets = (labels + 1) % 4
    clean_top = (model(x) @ templates.T).argmax(1)
    targets[wrong] = torch.tensor([[t for t in range(4) if t not in (int(labels[i]), int(clean_top[i]))][0] for i in wrong])
    for goal in ("misidentify", "target-identity"):
        task = IdentificationTask(model, templates, labels, goal, targets if goal == "target-identity" else None)
        items = GoalItems(goal, x, task, [f"p{i}" for i in range(12)])
        spy = _Spy()
        arrays = attack_cell(items, batched_scores(task, x, 64), spy, "linf", 4 / 255, 64, seed=0)
        attacked = torch.cat(spy.seen)
        assert len(attacked) == 9
        assert not arrays["attacked"][wrong.numpy()].any() and arrays["attacked"].sum() == 9
        assert arrays["success"][wrong.numpy()].all()  # counted as broken
        assert not arrays["success"][np.setdiff1d(np.arange(12), wrong.numpy())].any()  # the spy changes nothing
        assert not arrays["clean_correct"][wrong.numpy()].any()
        # the stored score is the rank-1 margin: negative exactly for the misidentified probes
        assert np.array_equal(arrays["clean_score"] < 0, ~arrays["clean_correct"])


def test_synth_fr_gallery_split_is_seeded_and_disjoint():
    a = synth_fr_identification(20, seed=0, size=32)
    b = synth_fr_identification(20, seed=0, size=32)
    c = synth_fr_identification(20, seed=1, size=32)
    assert a.probe_ids == b.probe_ids and np.array_equal(a.targets, b.targets) and np.array_equal(a.probes, b.probes)
    assert a.probe_ids != c.probe_ids
    assert len(a.identities) == 150 and len(a.gallery) == 150 * 3 and len(a) == 20
    assert (a.targets != a.probe_labels).all() and (a.targets < 150).all()
    for pid, lab in zip(a.probe_ids, a.probe_labels):
        assert pid.startswith(f"i:{a.identities[lab]}/")
    # a probe is never one of the gallery images of its identity: rendered pixels differ
    for img, lab in zip(a.probes, a.probe_labels):
        gal = a.gallery[a.gallery_labels == lab]
        assert not any(np.array_equal(img, g) for g in gal)


def test_protocols_without_identification_refuse_clearly():
    from bench.protocols import FRProtocol

    bare = FRProtocol(name="pairs-only", task="fr", description="", threshold_rule="")
    with pytest.raises(BadInputError, match="does not provide identification items"):
        bare.identification(4, 0, 64)
    assert hasattr(get_protocol("synth-fr"), "identification")


def test_run_with_identification_goals_stores_cells(tmp_path):
    suite = tmp_path / "ident.yaml"
    suite.write_text("goals: [misidentify, target-identity]\nattacks:\n  - attack: pgd\n    eps: [8/255]\n    params: {steps: 5}\n")
    cfg = RunConfig(model="facenet-baseline", suite=str(suite), samples=8, store=str(tmp_path / "r.h5"), device="cpu")
    outcome = run_benchmark(cfg, progress=False)
    assert [s["goal"] for s in outcome.summaries] == ["misidentify", "target-identity"]
    cells = ResultsStore(tmp_path / "r.h5").read_cells([s["cell_id"] for s in outcome.summaries])
    for c in cells:
        assert len(c.arrays["sample_id"]) == 8 and all(s.startswith("i:id") for s in c.arrays["sample_id"])
        assert c.config["threshold_rule"].startswith("top-1")
        assert np.isnan(c.attrs["threshold"]) and "150 identities" in c.attrs["decision_rule"]
    mis, tgt = outcome.summaries
    assert mis["asr"] >= tgt["asr"]  # any other identity is easier than one given identity
    assert mis["asr"] > 0.5  # the undefended baseline is misidentified at 8/255


def test_misidentify_retargets_to_each_other_identity_and_apgd_t_uses_it():
    model, templates, x, labels = _setup(n=16, k=4)
    task = IdentificationTask(model, templates, labels, "misidentify")
    assert task.num_targets() == 3
    with torch.no_grad():
        clean = task.scores(x)
    ranked = clean.scatter(1, labels.view(-1, 1), -torch.inf).argsort(1, descending=True)
    for rank in range(3):
        aimed = task.retarget(clean, rank)
        assert torch.equal(aimed.aim, ranked[:, rank])
        s = aimed.scores(x)
        expected = s.gather(1, ranked[:, rank:rank + 1]).squeeze(1) - s.gather(1, labels.view(-1, 1)).squeeze(1)
        assert torch.allclose(aimed.margin_from_scores(s), expected)
        assert torch.equal(aimed.success(x), task.success(x))  # the goal stays "any wrong identity"
        assert torch.equal(aimed.subset(torch.tensor([3, 1])).aim, ranked[[3, 1], rank])
    with pytest.raises(ValueError, match="rank 3"):
        task.retarget(clean, 3)
    target = IdentificationTask(model, templates, labels, "target-identity", (labels + 1) % 4)
    assert target.num_targets() == 1 and target.retarget(clean, 0) is target
    # a targeted APGD over every other identity breaks at least what the untargeted one breaks
    from attacks import make_attack

    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    untargeted = make_attack("apgd", {"steps": 20}).run(task, x, "linf", 0.05, gen()).success
    targeted = make_attack("apgd-t", {"steps": 20, "n_targets": 3}).run(task, x, "linf", 0.05, gen()).success
    assert int(targeted.sum()) >= int(untargeted.sum()) and 0 < int(targeted.sum())
