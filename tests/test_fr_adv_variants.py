"""The adversarially trained FR variants: their losses, training-time attacks, augmentations, recipes and CLI.

Recipes train on a tiny synthetic FR set made here (each identity a random 4 x 4 colour mosaic, its images
that mosaic with noise and a brightness shift), never on the rendered world.
"""
import inspect
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from bench.cli import main
from bench.data.sets import FaceSet
from bench.protocols import PROTOCOLS, FRProtocol
from bench.errors import BadInputError, CheckpointError
from models_zoo import get_variant
from models_zoo.adversarial import pgd_maximise
from models_zoo.augment import ViewAugmentation
from models_zoo.checkpoint import load_checkpoint, save_checkpoint, shipped_weights
from models_zoo.losses import (nt_xent_loss, semihard_triplets, supervised_contrastive_loss, triplet_margin_loss,
                               triplet_semihard_loss)
from models_zoo.training import build_zoo, specialised_recipe, train_variant, warm_start
from models_zoo.variants.contrastive_triplet import (ContrastiveLearner, grouped_batches, labelled_identities,
                                                     pretrain_contrastive, stage_epochs, zoo_stage_epochs)

FR_ADV_VARIANTS = ("triplet-adv", "contrastive-triplet", "contrastive-triplet-semi")
EPS = 8 / 255


def tiny_face_set(n_ids: int, per_id: int, size: int, seed: int = 0) -> FaceSet:
    """`n_ids` learnable identities: a random 4 x 4 colour mosaic each, images = mosaic + noise + brightness."""
    rng = np.random.default_rng(seed)
    mosaic = np.kron(rng.uniform(0.1, 0.9, (n_ids, 4, 4, 3)), np.ones((1, size // 4, size // 4, 1)))
    ids = np.repeat(np.arange(n_ids), per_id)
    images = mosaic[ids] + rng.normal(0, 0.04, (len(ids), size, size, 3)) + rng.uniform(-0.05, 0.05, (len(ids), 1, 1, 1))
    return FaceSet((np.clip(images, 0, 1) * 255).astype(np.uint8), ids, [f"s{i}" for i in range(len(ids))])


class TinyFRProtocol(FRProtocol):
    """An FR protocol whose train and dev sets are tiny mosaic sets of whatever size is asked for."""

    def __init__(self, n_ids: int = 16, per_id: int = 6) -> None:
        super().__init__(name="toy-fr", task="fr", description="tiny synthetic FR set (tests)",
                         threshold_rule="dev FAR", splits={})
        object.__setattr__(self, "n_ids", n_ids)
        object.__setattr__(self, "per_id", per_id)

    def train_set(self, size: int) -> FaceSet:
        return tiny_face_set(self.n_ids, self.per_id, size, seed=0)

    def dev_set(self, size: int) -> FaceSet:
        return tiny_face_set(16, 3, size, seed=1)  # 1080 impostor pairs: enough for FAR = 1e-3


def pk_batch(p: int = 4, k: int = 4, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images in a P x K layout with their labels."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(p * k, 3, size, size, generator=g), torch.arange(p).repeat_interleave(k)


def tiny_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_variant("triplet-adv").build("tiny").eval()


# --------------------------------------------------------------------------- losses


def test_nt_xent_equals_its_lower_bound_for_identical_views_and_grows_when_mismatched():
    # two instances at opposite poles, both views identical: positive cos = 1, every negative cos = -1,
    # which is the smallest NT-Xent possible: log(1 + 2 exp(-2 / T)) at T = 0.5
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    bound = math.log(1 + 2 * math.exp(-4))
    assert nt_xent_loss(z, z.clone(), temperature=0.5).item() == pytest.approx(bound, rel=1e-5)
    assert nt_xent_loss(z, z.flip(0), temperature=0.5).item() > 4.0  # views of the other instance
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    assert nt_xent_loss(a, a.clone()).item() < nt_xent_loss(a, b).item() - 1.0


def test_nt_xent_of_two_views_is_simclr_cross_entropy():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = (z @ z.T / 0.5).fill_diagonal_(float("-inf"))
    target = torch.arange(16).roll(8)  # row i's positive is row i + N (mod 2N)
    assert nt_xent_loss(a, b, temperature=0.5).item() == pytest.approx(F.cross_entropy(sim, target).item(), rel=1e-5)


def test_an_extra_view_joins_the_positive_set():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    # a third view equal to the first is a perfect positive: it lowers the loss; a random third view does not
    assert nt_xent_loss(a, b, a.clone()).item() < nt_xent_loss(a, b, torch.randn(8, 16, generator=g)).item()
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # each row: 2 positives at cos 1, 3 negatives at cos -1; mean over positives of -log softmax
    bound3 = -math.log(math.exp(2) / (2 * math.exp(2) + 3 * math.exp(-2)))
    assert nt_xent_loss(z, z.clone(), z.clone()).item() == pytest.approx(bound3, rel=1e-5)


def test_supervised_contrastive_pulls_same_labels_and_skips_anchors_without_positives():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    grouped, mixed = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    assert supervised_contrastive_loss(z, grouped).item() < supervised_contrastive_loss(z, mixed).item() - 2
    # unique labels: no anchor has a positive -> zero, and still differentiable
    z = z.clone().requires_grad_(True)
    loss = supervised_contrastive_loss(z, torch.arange(4))
    assert loss.item() == 0.0
    loss.backward()
    # the anchor mask restricts which rows are averaged, not which rows are negatives
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    sim = F.normalize(z, dim=1) @ F.normalize(z, dim=1).T / 0.5
    row0 = -(sim[0, 1] - torch.logsumexp(sim[0, 1:], dim=0))  # row 0's only positive is row 1
    only_first = supervised_contrastive_loss(z, grouped, anchors=torch.tensor([True, False, False, False]))
    assert only_first.item() == pytest.approx(row0.item(), rel=1e-5)


def test_triplet_loss_counts_the_semihard_negative():
    # anchor/positive at distance^2 0.5; negatives at 0.6 (semi-hard) and 2.0: loss uses 0.6 -> 0.5 - 0.6 + 0.2
    e = torch.tensor([[1.0, 0.0], [0.75, math.sqrt(1 - 0.75**2)], [0.7, -math.sqrt(1 - 0.7**2)], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 1, 2])
    d = torch.cdist(e, e).pow(2)
    assert d[0, 1].item() == pytest.approx(0.5) and d[0, 2].item() == pytest.approx(0.6)
    # pairs (0, 1) and (1, 0): for anchor 1 the closest farther negative is row 2 too
    expected = torch.stack([d[0, 1] - d[0, 2] + 0.2, d[1, 0] - d[1, 2] + 0.2]).relu().mean()
    assert triplet_semihard_loss(e, labels, 0.2).item() == pytest.approx(expected.item(), rel=1e-5)


def test_fixed_semihard_triplets_give_the_mined_triplet_loss():
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        e = F.normalize(torch.randn(16, 8, generator=g), dim=1)
        labels = torch.randint(0, 4, (16,), generator=g)
        triplets = semihard_triplets(e, labels)
        assert len(triplets[0]) == int(((labels[:, None] == labels[None, :]).sum() - 16).item())
        assert triplet_margin_loss(e, triplets).item() == pytest.approx(triplet_semihard_loss(e, labels).item(), abs=1e-5)
    none = semihard_triplets(e, torch.arange(16))  # no positives
    assert len(none[0]) == 0 and triplet_margin_loss(e.requires_grad_(True), none).item() == 0.0


# --------------------------------------------------------------------------- training-time attacks


def test_adversarial_anchors_raise_the_triplet_loss_inside_the_ball():
    model = tiny_net()
    x, labels = pk_batch()
    with torch.no_grad():
        triplets = semihard_triplets(model(x), labels)
    loss = lambda xa: triplet_margin_loss(model(xa), triplets, 0.2)  # noqa: E731
    x_adv = pgd_maximise(loss, x, eps=EPS, step_size=2 / 255, steps=3, generator=torch.Generator().manual_seed(0))
    noise = (x + (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1) * EPS).clamp(0, 1)
    with torch.no_grad():
        clean, adv, rand = loss(x).item(), loss(x_adv).item(), loss(noise).item()
    assert adv > 1.2 * clean and adv > 1.2 * rand, (clean, adv, rand)
    assert (x_adv - x).abs().max().item() <= EPS + 1e-6
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
    assert not x_adv.requires_grad
    assert all(p.grad is None for p in model.parameters())  # crafting leaves no parameter gradient


def test_augmentations_are_per_sample_seeded_and_stay_in_range():
    x, _ = pk_batch(4, 2)
    augment = ViewAugmentation()
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    c = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min().item() >= 0 and a.max().item() <= 1
    assert not torch.allclose(a, x, atol=0.05)
    # with the crop at full size and no colour change, a view is the image or its mirror image
    plain = ViewAugmentation(scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter=0.0, p_gray=0.0)(x, torch.Generator().manual_seed(3))
    for v, im in zip(plain, x):
        assert torch.allclose(v, im, atol=1e-5) or torch.allclose(v, im.flip(2), atol=1e-5)


# --------------------------------------------------------------------------- stage-1 batches and labels


def test_labelled_identities_and_grouped_batches():
    identities = np.repeat(np.arange(10), 8)
    rng = np.random.default_rng(0)
    assert len(labelled_identities(identities, 0.0, rng)) == 0
    assert len(labelled_identities(identities, 0.05, rng)) == 2  # at least two
    labelled = labelled_identities(identities, 0.3, rng)
    assert len(labelled) == 3 and set(labelled) <= set(range(10))
    batches, steps = grouped_batches(identities, labelled, batch=16, k=4, rng=rng)
    epoch = list(batches(0))
    assert steps == 5 and len(epoch) == 5
    assert sorted(np.concatenate(epoch).tolist()) == list(range(80))  # every image exactly once
    order = np.concatenate(epoch)
    for ident in labelled:  # a labelled identity's images come in consecutive groups of k
        where = np.sort(np.flatnonzero(np.isin(order, np.flatnonzero(identities == ident))))
        assert where[3] - where[0] == 3 and where[7] - where[4] == 3
    plain, _ = grouped_batches(identities, labelled[:0], batch=16, k=4, rng=np.random.default_rng(0))
    assert sorted(np.concatenate(list(plain(0))).tolist()) == list(range(80))


MILD_VIEWS = ViewAugmentation(scale=(0.6, 1.0), jitter=0.1, p_gray=0.0)
"""Milder than the default: the toy identities differ only in colour, which strong jitter erases."""


def _fixed_views(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return MILD_VIEWS(x, g), MILD_VIEWS(x, g)


@pytest.fixture(scope="module")
def pretrained():
    """A learner after 4 epochs of adversarial contrastive pre-training on the toy set, with the NT-Xent of
    fixed views of one image per identity before and after."""
    torch.manual_seed(0)
    learner = ContrastiveLearner(get_variant("contrastive-triplet").build("tiny"))
    train = tiny_face_set(16, 8, 32)
    x = torch.from_numpy(train.images[::8]).permute(0, 3, 1, 2).float() / 255
    v1, v2 = _fixed_views(x)

    def fixed_batch_loss() -> float:
        learner.eval()
        with torch.no_grad():
            return nt_xent_loss(learner(v1), learner(v2)).item()

    before = fixed_batch_loss()
    history = pretrain_contrastive(learner, train, epochs=4, lr=2e-3, batch=32, k=4, temperature=0.5, eps=EPS,
                                   step_size=2 / 255, attack_steps=2, labelled=np.array([], dtype=int),
                                   supervised_weight=1.0, augment=MILD_VIEWS, device=torch.device("cpu"),
                                   rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0),
                                   progress=False)
    return learner.eval(), x, before, fixed_batch_loss(), history


def test_contrastive_pretraining_lowers_nt_xent_on_a_fixed_batch(pretrained):
    _, _, before, after, history = pretrained
    assert set(history) == {"loss", "instance", "clean_pair", "adv_pair"} and len(history["loss"]) == 4
    assert after < before - 0.1, (before, after)


def test_contrastive_pgd_raises_the_nt_xent_loss(pretrained):
    learner, x, _, _, _ = pretrained
    v1, v2 = _fixed_views(x)
    with torch.no_grad():
        target = learner(v2)
    loss = lambda xa: nt_xent_loss(learner(xa), target)  # noqa: E731
    v_adv = pgd_maximise(loss, v1, steps=3, generator=torch.Generator().manual_seed(0))
    v_rand = pgd_maximise(loss, v1, steps=0, generator=torch.Generator().manual_seed(0))  # the random start only
    with torch.no_grad():
        clean, adv, rand = loss(v1).item(), loss(v_adv).item(), loss(v_rand).item()
    assert adv > clean + 0.1 and adv > rand + 0.1, (clean, rand, adv)
    assert (v_adv - v1).abs().max().item() <= EPS + 1e-6 and v_adv.min() >= 0 and v_adv.max() <= 1


# --------------------------------------------------------------------------- recipes


def _fixed_batch_losses(model, protocol, size=32):
    """Clean and PGD triplet loss of a fixed P x K batch of the train set (eval mode, fixed attack seed)."""
    train = protocol.train_set(size)
    idx = np.concatenate([np.flatnonzero(train.identities == i)[:4] for i in range(16)])
    x = torch.from_numpy(train.images[idx]).permute(0, 3, 1, 2).float() / 255
    labels = torch.from_numpy(train.identities[idx])
    model.eval()
    with torch.no_grad():
        triplets = semihard_triplets(model(x), labels)
    loss = lambda xa: triplet_margin_loss(model(xa), triplets, 0.2)  # noqa: E731
    x_adv = pgd_maximise(loss, x, steps=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return loss(x).item(), loss(x_adv).item()


FROM_SCRATCH = {"init": None, "lr": 2e-3}
"""`triplet-adv`'s zoo recipe fine-tunes facenet-baseline's shipped weights; on the toy set it starts from random."""


def _train(name, epochs, **options):
    torch.manual_seed(0)
    if name == "triplet-adv":
        options = {**FROM_SCRATCH, **options}
    spec = get_variant(name)
    model = spec.build("tiny")
    protocol = TinyFRProtocol()
    before = _fixed_batch_losses(model, protocol)
    info = spec.recipe(model, protocol, profile="tiny", size=32, epochs=epochs, device=torch.device("cpu"), seed=0,
                       progress=False, p=4, k=4, **options)
    return model, info, before, _fixed_batch_losses(model, protocol)


def _round_trip(name, model, tmp_path):
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(model, {"variant": name, "profile": "tiny"}, path)
    again = get_variant(name).build("tiny").eval()
    load_checkpoint(again, path, variant=name, profile="tiny")  # strict: no projection head left over
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), again(x))


def test_triplet_adv_recipe_learns_robustly_and_round_trips(tmp_path):
    model, info, (clean0, _), (clean1, adv1) = _train("triplet-adv", 8)
    assert len(info["loss_history"]) == 8 and set(info["loss_terms"]) == {"clean", "adversarial"}
    adversarial = info["loss_terms"]["adversarial"]  # the training loss: epoch means over the perturbed batches
    assert np.mean(adversarial[-2:]) < 0.7 * np.mean(adversarial[:2]), adversarial
    assert clean1 < 0.7 * clean0, (clean0, clean1)
    # clean training for as long lowers the clean loss too, but leaves the fixed batch easier to attack
    _, _, _, (_, adv_clean_training) = _train("facenet-baseline", 8)
    assert adv1 < adv_clean_training, (adv1, adv_clean_training)
    adv = info["adversarial"]
    assert adv["eps"] == "8/255" and adv["step_size"] == "2/255" and adv["steps"] == 3  # tiny default
    assert "whole" in adv["perturbed"] and adv["model_mode_while_crafting"].startswith("eval")
    _round_trip("triplet-adv", model, tmp_path)


def test_triplet_adv_attack_steps_option():
    _, info, _, _ = _train("triplet-adv", 1, attack_steps=1)
    assert info["adversarial"]["steps"] == 1
    with pytest.raises(BadInputError, match="attack-steps"):
        _train("triplet-adv", 1, attack_steps=0)


def test_contrastive_triplet_recipe_runs_its_three_stages_and_round_trips(tmp_path):
    model, info, (clean0, _), (clean1, _) = _train("contrastive-triplet", 6, batch=32, pretrain_epochs=2,
                                                   warmup_epochs=1, finetune_epochs=3)
    assert info["stage_epochs"] == {"pretrain": 2, "warmup": 1, "finetune": 3}
    assert info["label_fraction"] == 0.0 and info["labelled_identities"] == 0
    pre = info["pretrain_history"]
    assert set(pre) == {"loss", "instance", "clean_pair", "adv_pair"} and len(pre["loss"]) == 2  # no supervised term
    assert len(info["warmup_history"]) == 1 and "clean" in info["warmup_loss"] and "departure" in info["curriculum"]
    assert info["warmup_optimizer"].endswith("0.002") and info["optimizer"].endswith("0.0005")  # baseline's, triplet-adv's lr
    assert len(info["loss_history"]) == 3 and set(info["loss_terms"]) == {"clean", "adversarial"}
    assert clean1 < 0.7 * clean0, (clean0, clean1)
    assert info["adversarial"]["steps"] == info["pretrain_adversarial"]["steps"] == 3
    assert set(info["stage_wall_time_s"]) == {"pretrain", "warmup", "finetune"}
    assert "projection_head" in info and "crop" in info["augmentations"]["kind"]
    assert "stage 2a (clean warm-up)" in info["loss"] and "after the clean warm-up" in info["init"]
    _round_trip("contrastive-triplet", model, tmp_path)


def test_contrastive_adversarial_fine_tuning_lowers_its_adversarial_loss():
    # straight from the pre-trained weights (no warm-up, the method's own schedule; the toy set does not collapse)
    # and at the baseline's lr: a few toy steps at the zoo's fine-tuning lr barely move the network
    _, info, _, _ = _train("contrastive-triplet", 6, batch=32, pretrain_epochs=2, warmup_epochs=0, finetune_epochs=4,
                           lr=2e-3)
    assert info["stage_epochs"] == {"pretrain": 2, "warmup": 0, "finetune": 4} and "warmup_history" not in info
    adversarial = info["loss_terms"]["adversarial"]  # fine-tuning's adversarial triplet loss, per epoch
    assert adversarial[-1] < 0.75 * adversarial[0], adversarial


def test_the_warm_up_is_clean_triplet_training_and_is_skipped_without_epochs(monkeypatch):
    import models_zoo.variants.contrastive_triplet as recipe_module

    calls = []
    real = recipe_module.train_triplet

    def spy(model, protocol, **kw):
        calls.append(kw)
        return real(model, protocol, **kw)

    monkeypatch.setattr(recipe_module, "train_triplet", spy)  # facenet-baseline's recipe: no adversarial examples
    _, info, _, _ = _train("contrastive-triplet", 4, batch=32, pretrain_epochs=1, warmup_epochs=2, finetune_epochs=1,
                           warmup_lr=1e-3)
    assert len(calls) == 1 and calls[0]["epochs"] == 2 and calls[0]["lr"] == 1e-3 and calls[0]["p"] == 4
    assert info["warmup_optimizer"].endswith("0.001") and len(info["warmup_history"]) == 2
    calls.clear()
    # the rule without a stage share (the variant's default share is 42): stage_epochs(2) = (1, 0, 1)
    _, info, _, _ = _train("contrastive-triplet", 2, batch=32, stage_share=None)
    assert calls == [] and "warmup_history" not in info and info["stage_epochs"]["warmup"] == 0
    assert "warm-up" not in info["loss"] and info["init"] == "stage 1's weights (the projection head dropped)"


def test_contrastive_triplet_semi_learns_its_supervised_term_and_round_trips(tmp_path):
    model, info, (clean0, _), (clean1, _) = _train("contrastive-triplet-semi", 5, batch=32, pretrain_epochs=3,
                                                   finetune_epochs=2)
    assert info["label_fraction"] == pytest.approx(0.10) and info["labelled_identities"] == 2  # 10 % of 16 -> 2
    pre = info["pretrain_history"]
    assert len(pre["supervised"]) == 3 and pre["supervised"][-1] < 0.8 * pre["supervised"][0], pre["supervised"]
    assert all(t == pytest.approx(i + s, abs=1e-4) for t, i, s in zip(pre["loss"], pre["instance"], pre["supervised"]))
    assert clean1 < 0.7 * clean0
    _round_trip("contrastive-triplet-semi", model, tmp_path)


def _start_and_continuation(tmp_path, *, seed=3, label_fraction=None, **start_options):
    """A `--finetune-epochs 0` run saved with its card, as `train_variant` would (the toy set, one-step attacks)."""
    from bench.config import seed_everything

    name = "contrastive-triplet" if label_fraction is None else "contrastive-triplet-semi"
    spec = get_variant(name)
    extra = {} if label_fraction is None else {"label_fraction": label_fraction}
    kw = dict(profile="tiny", size=32, device=torch.device("cpu"), seed=seed, progress=False, p=4, k=4, batch=32,
              attack_steps=1, **extra)
    seed_everything(seed)
    model = spec.build("tiny")
    options = {"pretrain_epochs": 1, "warmup_epochs": 1, **start_options, "finetune_epochs": 0}
    info = spec.recipe(model, TinyFRProtocol(), epochs=2, **options, **kw)
    path = tmp_path / "start.safetensors"
    save_checkpoint(model, {"variant": name, "profile": "tiny", "seed": seed, "training": info}, path)
    return spec, path, info, kw


def test_a_shared_start_and_its_continuation_train_the_network_of_one_run(tmp_path):
    """`--finetune-epochs 0` then `--init` that start: bit for bit the network of one run of the three stages (the
    claims share a seed's pre-training and warm-up across fine-tuning lengths this way)."""
    from bench.config import seed_everything

    spec, start, info, kw = _start_and_continuation(tmp_path)
    assert info["stage_epochs"] == {"pretrain": 1, "warmup": 1, "finetune": 0} and "adversarial" not in info
    assert "no adversarial fine-tuning" in info["loss"] and "loss_history" not in info
    models, infos = [], []
    for init in (None, str(start)):
        seed_everything(3)
        model = spec.build("tiny")
        infos.append(spec.recipe(model, TinyFRProtocol(), epochs=4, pretrain_epochs=1, warmup_epochs=1, finetune_epochs=2,
                                 **({"init": init} if init else {}), **kw))
        models.append(model.state_dict())
    assert all(torch.equal(models[0][key], models[1][key]) for key in models[0])
    one_run, continued = infos
    assert set(continued) - set(one_run) == {"stages_from"} and continued["loss"] == one_run["loss"]
    assert continued["stage_epochs"] == one_run["stage_epochs"] == {"pretrain": 1, "warmup": 1, "finetune": 2}
    assert continued["pretrain_history"] == info["pretrain_history"] == one_run["pretrain_history"]
    assert continued["stages_from"]["init"] == "start.safetensors" and len(continued["stages_from"]["sha256"]) == 64
    assert continued["stage_wall_time_s"]["pretrain"] == info["stage_wall_time_s"]["pretrain"]


def test_a_continuation_refuses_a_start_that_is_not_its_own(tmp_path):
    spec, start, _, kw = _start_and_continuation(tmp_path)

    def continue_from(init, **options):
        options = {"pretrain_epochs": 1, "warmup_epochs": 1, "finetune_epochs": 1, **options}
        return spec.recipe(spec.build("tiny"), TinyFRProtocol(), epochs=3, init=str(init), **{**kw, **options})

    for options, message in (({"warmup_epochs": 2}, "--warmup-epochs 1, not 2"), ({"pretrain_epochs": 2}, "--pretrain-epochs 1"),
                             ({"seed": 4}, "--seed 3, not 4"), ({"finetune_epochs": 0}, "nothing to train")):
        with pytest.raises(BadInputError, match=message):
            continue_from(start, **options)
    (tmp_path / "bare.safetensors").write_bytes(start.read_bytes())  # weights without their card
    with pytest.raises(BadInputError, match="with its card, trained with --finetune-epochs 0"):
        continue_from(tmp_path / "bare.safetensors")
    with pytest.raises(BadInputError, match="the contrastive recipes start from their own"):
        continue_from("facenet-baseline")
    card = json.loads(start.with_suffix(".json").read_text())  # a run that fine-tuned already is no start
    card["training"]["stage_epochs"]["finetune"] = 1
    start.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(BadInputError, match="not a run of contrastive pre-training and warm-up alone"):
        continue_from(start)
    (tmp_path / "semi").mkdir()
    semi, semi_start, _, semi_kw = _start_and_continuation(tmp_path / "semi", label_fraction=0.25)
    with pytest.raises(BadInputError, match="--label-fraction 0.25, not 0.5"):
        semi.recipe(semi.build("tiny"), TinyFRProtocol(), epochs=3, init=str(semi_start),
                    **{**semi_kw, "label_fraction": 0.5, "finetune_epochs": 1})


def test_stage_epochs_split():
    # 1/32 of the epochs (at least one) for pre-training and for adversarial fine-tuning, the rest clean warm-up
    assert stage_epochs(84) == (2, 80, 2) and stage_epochs(64) == (2, 60, 2) and stage_epochs(40) == (1, 38, 1) and stage_epochs(96) == (3, 90, 3)
    assert stage_epochs(2) == (1, 0, 1) and stage_epochs(1) == (1, 0, 1)  # no warm-up; each other stage at least one
    assert stage_epochs(3) == (1, 1, 1)
    assert stage_epochs(40, finetune_epochs=5) == (1, 34, 5) and stage_epochs(40, pretrain_epochs=5) == (5, 34, 1)
    assert stage_epochs(40, warmup_epochs=0) == (1, 0, 1) and stage_epochs(4, 2, 3, 4) == (2, 3, 4)
    assert stage_epochs(4, finetune_epochs=0) == (1, 3, 0)  # stop after the warm-up: a start for --init
    with pytest.raises(BadInputError, match="positive number of epochs"):
        stage_epochs(4, pretrain_epochs=0)
    with pytest.raises(BadInputError, match="positive number of epochs"):
        stage_epochs(4, finetune_epochs=-1)
    with pytest.raises(BadInputError, match="negative"):
        stage_epochs(4, warmup_epochs=-1)
    assert all(type(n) is int for n in stage_epochs(84))  # the shipped card's whole epochs stay ints


def test_stage_epochs_fractions():
    # given explicitly: a fraction of an epoch for any stage
    assert stage_epochs(4, 0.5, 3, 0.5) == (0.5, 3, 0.5) and stage_epochs(1, pretrain_epochs=0.25) == (0.25, 0, 1)
    assert stage_epochs(1, 0.1, None, 0.1) == (0.1, 0.8, 0.1)  # the rest in exact arithmetic (not 0.7999999999999999)
    # a stage share: exactly 1/share each for pre-training and fine-tuning, no flooring, no minimum of one epoch
    assert stage_epochs(21, stage_share=42) == (0.5, 20, 0.5) and type(stage_epochs(21, stage_share=42)[1]) is int
    assert stage_epochs(84, stage_share=32) == (2.625, 78.75, 2.625) and stage_epochs(84, stage_share=42) == (2, 80, 2)
    assert stage_epochs(21, finetune_epochs=2, stage_share=42) == (0.5, 18.5, 2)
    with pytest.raises(BadInputError, match="stage share"):
        stage_epochs(21, stage_share=0)
    with pytest.raises(BadInputError, match="positive number of epochs"):
        stage_epochs(4, pretrain_epochs=-0.5)


def test_the_contrastive_recipe_trains_fractions_of_its_stages():
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from models_zoo.training import fit_steps

    steps = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    try:
        _, info, _, _ = _train("contrastive-triplet", 1, batch=32, pretrain_epochs=0.5, warmup_epochs=0.25,
                               finetune_epochs=0.25, attack_steps=1)
    finally:
        handle.remove()
    assert info["stage_epochs"] == {"pretrain": 0.5, "warmup": 0.25, "finetune": 0.25} and "stage_share" not in info
    # 96 toy images: 3 pre-training batches of 32 and 4 P x K batches (P = 4 of 16 identities) per epoch
    assert len(steps) == fit_steps(0.5, 3) + fit_steps(0.25, 4) + fit_steps(0.25, 4) == 2 + 1 + 1
    assert len(info["pretrain_history"]["loss"]) == len(info["warmup_history"]) == len(info["loss_history"]) == 1


def test_the_contrastive_recipe_splits_its_epochs_by_a_stage_share(monkeypatch):
    import models_zoo.variants.contrastive_triplet as recipe_module

    stages = {}

    def stage(name, result):
        def run(*args, epochs, **kwargs):
            stages[name] = epochs
            return result
        return run

    monkeypatch.setattr(recipe_module, "pretrain_contrastive", stage("pretrain", {}))
    monkeypatch.setattr(recipe_module, "train_triplet", stage("warmup", {"loss_history": [], "optimizer": ""}))
    monkeypatch.setattr(recipe_module, "train_triplet_adv", stage("finetune", {"loss": ""}))
    info = get_variant("contrastive-triplet").recipe(get_variant("contrastive-triplet").build("tiny"), TinyFRProtocol(),
                                                     profile="tiny", size=32, epochs=21, device=torch.device("cpu"),
                                                     seed=0, progress=False, stage_share=42)
    assert stages == {"pretrain": 0.5, "warmup": 20, "finetune": 0.5} and info["stage_share"] == 42
    assert info["stage_epochs"] == stages
    # the zoo's: 21 epochs at a share of 42 (the former 2 + 80 + 2 on a train split four times as large)
    assert inspect.signature(get_variant("contrastive-triplet-semi").recipe).parameters["stage_share"].default == 42


@pytest.mark.parametrize("name", ["contrastive-triplet", "contrastive-triplet-semi"])
def test_the_zoo_schedule_and_the_shipped_card_agree(name):
    spec = get_variant(name)
    pretrain, warmup, finetune = zoo_stage_epochs(name, "tiny")
    share = inspect.signature(spec.recipe).parameters["stage_share"].default
    assert (pretrain, warmup, finetune) == stage_epochs(spec.zoo_epochs["tiny"], stage_share=share)
    assert warmup > 0 and pretrain > 0 and finetune > 0  # the curriculum: clean warm-up before adversarial epochs
    weights = shipped_weights(name, "tiny")
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["epochs"] == spec.zoo_epochs["tiny"] and f"--epochs {card['epochs']}" in card["training_command"]
    assert card["training"]["stage_epochs"] == {"pretrain": pretrain, "warmup": warmup, "finetune": finetune}
    # one loss entry per epoch started (a fraction of an epoch is one)
    assert len(card["training"]["warmup_history"]) == math.ceil(warmup)
    assert len(card["training"]["loss_history"]) == math.ceil(finetune)
    assert card["dev"]["dev_tar"] > 0.3  # not collapsed (the 2 + 2 schedule without warm-up gave 2 %)


def test_label_fraction_is_checked_before_any_work():
    class NoData(TinyFRProtocol):
        def train_set(self, size):
            raise AssertionError("loaded data before refusing the option")

    with pytest.raises(BadInputError, match="label-fraction"):
        get_variant("contrastive-triplet-semi").recipe(None, NoData(), profile="tiny", size=32, epochs=1,
                                                       device=torch.device("cpu"), seed=0, label_fraction=1.5)


def test_one_recipe_with_the_label_fraction_fixed_or_defaulted():
    full = inspect.signature(get_variant("contrastive-triplet").recipe).parameters
    semi = inspect.signature(get_variant("contrastive-triplet-semi").recipe).parameters
    assert "label_fraction" not in full and semi["label_fraction"].default == pytest.approx(0.10)
    assert set(semi) - set(full) == {"label_fraction"}
    with pytest.raises(TypeError, match="label_fraction"):
        get_variant("contrastive-triplet").recipe(None, None, label_fraction=0.5)
    with pytest.raises(TypeError, match="no option"):
        specialised_recipe(get_variant("triplet-adv").recipe, "x", fixed={"label_fraction": 0.0})


# --------------------------------------------------------------------------- CLI and registry


@pytest.fixture
def toy_protocol(monkeypatch):
    proto = TinyFRProtocol(n_ids=16, per_id=4)
    monkeypatch.setitem(PROTOCOLS._entries, proto.name, proto)
    return proto


def test_train_passes_label_fraction_to_the_semi_recipe(toy_protocol, tmp_path):
    out = tmp_path / "semi.safetensors"
    r = CliRunner().invoke(main, ["train", "--model", "contrastive-triplet-semi", "--protocol", toy_protocol.name,
                                  "--epochs", "2", "--pretrain-epochs", "1", "--warmup-epochs", "0", "--finetune-epochs",
                                  "1", "--label-fraction", "0.25", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "dev TAR" in r.output
    card = json.loads(out.with_suffix(".json").read_text())
    with torch.device("meta"):
        baseline = sum(p.numel() for p in get_variant("facenet-baseline").build("tiny").parameters())
    assert card["variant"] == "contrastive-triplet-semi" and card["parameters"] == baseline  # no projection head kept
    training = card["training"]
    assert training["label_fraction"] == 0.25 and training["labelled_identities"] == 4
    assert training["stage_epochs"] == {"pretrain": 1, "warmup": 0, "finetune": 1}


def test_train_records_fractional_stage_epochs_in_the_card(toy_protocol, tmp_path):
    out = tmp_path / "frac.safetensors"
    r = CliRunner().invoke(main, ["train", "--model", "contrastive-triplet", "--protocol", toy_protocol.name,
                                  "--epochs", "1.0", "--pretrain-epochs", "0.5", "--warmup-epochs", "0",
                                  "--finetune-epochs", "0.5", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["epochs"] == 1 and type(card["epochs"]) is int  # a whole number is recorded as one
    assert card["training"]["stage_epochs"] == {"pretrain": 0.5, "warmup": 0, "finetune": 0.5}
    r = CliRunner().invoke(main, ["train", "--model", "contrastive-triplet", "--epochs", "0", "-q"])
    assert r.exit_code == 2 and "x>0" in r.output and "Traceback" not in r.output


def test_depth_gan_spoof_pre_training_refuses_a_fraction_of_an_epoch():
    from models_zoo.variants.depth_gan_spoof import train_depth_gan_spoof

    with pytest.raises(BadInputError, match="whole epochs"):  # before any data is loaded (no protocol here)
        train_depth_gan_spoof(None, None, profile="tiny", size=32, epochs=2, device=torch.device("cpu"), seed=0,
                              pretrain_epochs=0.5)


@pytest.mark.parametrize("name", ["triplet-adv", "contrastive-triplet", "facenet-baseline"])
def test_train_refuses_label_fraction_for_recipes_without_it(toy_protocol, tmp_path, name):
    r = CliRunner().invoke(main, ["train", "--model", name, "--protocol", toy_protocol.name, "--epochs", "1",
                                  "--label-fraction", "0.1", "--out", str(tmp_path / "x.safetensors"), "-q"])
    assert r.exit_code == 2
    assert "does not take --label-fraction" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.safetensors").exists()


def test_train_refuses_a_label_fraction_outside_zero_one(toy_protocol, tmp_path):
    r = CliRunner().invoke(main, ["train", "--model", "contrastive-triplet-semi", "--protocol", toy_protocol.name,
                                  "--label-fraction", "1.5", "--out", str(tmp_path / "x.safetensors"), "-q"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    with pytest.raises(BadInputError, match="does not take --label-fraction"):
        train_variant("triplet-adv", protocol=toy_protocol.name, epochs=1, out=tmp_path, progress=False,
                      options={"label_fraction": 0.1})


def test_train_passes_attack_steps_to_the_adversarial_recipes_and_refuses_them_elsewhere(toy_protocol, tmp_path):
    out = tmp_path / "adv.safetensors"
    r = CliRunner().invoke(main, ["train", "--model", "triplet-adv", "--protocol", toy_protocol.name, "--epochs", "1",
                                  "--init", "none", "--attack-steps", "2", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["adversarial"]["steps"] == 2
    r = CliRunner().invoke(main, ["train", "--model", "triplet-adv", "--protocol", toy_protocol.name, "--epochs", "1",
                                  "--attack-steps", "0", "--out", str(tmp_path / "zero.safetensors"), "-q"])
    assert r.exit_code == 2 and "--attack-steps must be at least 1, got 0" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["train", "--model", "facenet-baseline", "--protocol", toy_protocol.name, "--epochs",
                                  "1", "--attack-steps", "2", "--out", str(tmp_path / "x.safetensors"), "-q"])
    assert r.exit_code == 2 and "does not take --attack-steps" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "zero.safetensors").exists() and not (tmp_path / "x.safetensors").exists()


def test_warm_start_loads_a_checkpoint_and_records_it(tmp_path):
    source = tiny_net(seed=1)
    path = tmp_path / "source.safetensors"
    card = save_checkpoint(source, {"variant": "facenet-baseline", "profile": "tiny", "dev": {"dev_tar": 0.5}}, path)
    model = tiny_net(seed=2)
    started = warm_start(model, str(path), "tiny")
    assert started == {"from": str(path), "variant": "facenet-baseline", "sha256": card["sha256"], "dev": {"dev_tar": 0.5}}
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), source.eval()(x))
    assert warm_start(model, None, "tiny") is None and warm_start(model, "none", "tiny") is None
    path.with_suffix(".json").unlink()  # a bare safetensors file: loaded strictly, its sha256 recorded
    assert warm_start(tiny_net(), str(path), "tiny") == {"from": str(path), "sha256": card["sha256"]}


def test_warm_start_refuses_what_it_cannot_start_from(tmp_path):
    with pytest.raises(BadInputError, match="no shipped paper weights of a variant 'facenet-baseline'"):
        warm_start(tiny_net(), "facenet-baseline", "paper")
    with pytest.raises(BadInputError, match="no shipped tiny weights of a variant 'nope'"):
        warm_start(tiny_net(), "nope", "tiny")
    fas = get_variant("cdcn").build("tiny")
    save_checkpoint(fas, {"variant": "cdcn", "profile": "tiny"}, tmp_path / "cdcn.safetensors")
    with pytest.raises(CheckpointError, match="does not match the architecture"):
        warm_start(tiny_net(), str(tmp_path / "cdcn.safetensors"), "tiny")


def test_triplet_adv_fine_tunes_the_baseline_by_default_and_checks_the_clean_weight():
    recipe = inspect.signature(get_variant("triplet-adv").recipe).parameters
    assert recipe["init"].default == "facenet-baseline" and recipe["clean_weight"].default == 0.5
    with pytest.raises(BadInputError, match="clean-weight"):
        _train("triplet-adv", 1, clean_weight=1.0)


def test_train_passes_init_and_refuses_it_where_the_recipe_has_none(toy_protocol, tmp_path):
    source = tmp_path / "start.safetensors"
    save_checkpoint(tiny_net(seed=3), {"variant": "facenet-baseline", "profile": "tiny"}, source)
    out = tmp_path / "adv.safetensors"
    r = CliRunner().invoke(main, ["train", "--model", "triplet-adv", "--protocol", toy_protocol.name, "--epochs", "1",
                                  "--init", str(source), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    training = json.loads(out.with_suffix(".json").read_text())["training"]
    assert training["init"]["from"] == str(source) and training["clean_weight"] == 0.5
    r = CliRunner().invoke(main, ["train", "--model", "facenet-baseline", "--protocol", toy_protocol.name, "--epochs", "1",
                                  "--init", str(source), "--out", str(tmp_path / "x.safetensors"), "-q"])
    assert r.exit_code == 2 and "does not take --init" in r.output and "Traceback" not in r.output


def test_zoo_build_fine_tunes_the_baseline_it_just_built(monkeypatch, tmp_path):
    calls = []

    def fake_train(name, **kw):
        calls.append((name, kw["options"], kw["command"]))
        kw["out"].write_bytes(b"")  # what a real training leaves behind
        return kw["out"], {"task": "fr"}

    monkeypatch.setattr("models_zoo.training.train_variant", fake_train)
    build_zoo("tiny", ["triplet-adv"], out_dir=tmp_path, progress=False)
    assert calls[-1][1] == {}  # nothing built here: the recipe's default, the shipped baseline
    build_zoo("tiny", ["facenet-baseline", "triplet-adv"], out_dir=tmp_path, progress=False)
    fresh = str(tmp_path / "facenet-baseline-tiny.safetensors")
    assert calls[-1][1] == {"init": fresh} and calls[-1][2].endswith(f"--init {fresh}")


def test_zoo_build_refuses_a_variant_without_a_recipe_saying_which_it_can_build(tmp_path):
    with pytest.raises(BadInputError, match=r"dlib-resnet: no training recipe .*--only takes cdcn, .*triplet-adv"):
        build_zoo("tiny", ["facenet-baseline", "dlib-resnet"], out_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # refused before any training


def test_models_lists_the_fr_adv_variants_with_the_baseline_network_and_their_weights():
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines()[2:] if line.strip()}
    baseline_counts = lines["facenet-baseline"].split()[2:4]
    for name in FR_ADV_VARIANTS:
        line = lines[name]
        weights = shipped_weights(name, "tiny")
        shown = "not shipped" if weights is None else \
            f"tiny: TAR {100 * json.loads(weights.with_suffix('.json').read_text())['dev']['dev_tar']:.1f} %"
        assert line.split()[1] == "fr" and shown in line
        assert line.split()[2:4] == baseline_counts  # same network as facenet-baseline, tiny and paper
    for name in FR_ADV_VARIANTS:
        spec = get_variant(name)
        assert spec.default_protocol == "synth-fr" and spec.input_size == {"tiny": 64, "paper": 160} and spec.citation


def test_a_train_split_smaller_than_one_pk_batch_is_refused_in_one_line():
    """Fewer identities than P: a clear error before training, not a division by zero steps deep in the loop."""
    import numpy as np
    import pytest
    import torch

    from bench.data.sets import FaceSet
    from bench.errors import BadInputError
    from models_zoo.facenet import facenet
    from models_zoo.training import pk_steps, train_triplet

    class Small:
        def train_set(self, size):
            ids = np.repeat(np.arange(8), 4)
            return FaceSet(images=np.zeros((len(ids), size, size, 3), np.uint8), identities=ids,
                           sample_ids=[str(i) for i in range(len(ids))])

    assert pk_steps(np.repeat(np.arange(40), 2), 16) == 2
    with pytest.raises(BadInputError, match="8 identities, fewer than the 16"):
        train_triplet(facenet("tiny"), Small(), profile="tiny", size=16, epochs=1, device=torch.device("cpu"), seed=0,
                      progress=False, p=16)
