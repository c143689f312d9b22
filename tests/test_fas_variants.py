"""The anti-spoofing variants of the zoo: their building blocks, networks, recipes and CLI plumbing.

Recipes train on a tiny synthetic FAS set made here (a shaded bump for live faces with the bump as
depth label, flat or striped discs for spoofs), never on the rendered world.
"""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.data.sets import FASSet
from bench.protocols import PROTOCOLS, FASProtocol
from models_zoo import VARIANTS, get_variant
from models_zoo.cdc import CentralDifferenceConv2d
from models_zoo.checkpoint import load_checkpoint, save_checkpoint, shipped_weights
from models_zoo.losses import contrastive_depth_loss, discriminator_loss, generator_adversarial_loss, map_loss

FAS_VARIANTS = ("depth-gan-spoof", "multiloss-sota", "cdcn")


def tiny_fas_set(n: int, size: int, seed: int = 0) -> FASSet:
    """`n` learnable frames: live = a shaded bump (depth = the bump), print = flat disc, replay = striped disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    bump = np.clip(1 - (xx**2 + yy**2) / 0.6, 0, 1).astype(np.float32)
    disc = (bump > 0).astype(np.float32)
    species = np.array(["live", "print", "replay", "live"] * (n // 4 + 1))[:n]
    live = species == "live"
    images = rng.uniform(0, 0.25, (n, size, size, 3)).astype(np.float32)
    depth = np.zeros((n, size, size), np.float32)
    reflection = np.zeros((n, size, size), np.float32)
    for i, s in enumerate(species):
        if s == "live":
            depth[i] = bump * rng.uniform(0.7, 1.0)
            images[i] += 0.7 * depth[i][..., None]
        elif s == "print":
            images[i] += 0.45 * disc[..., None]
        else:
            stripes = (np.sin(np.arange(size) * 2.0) > 0).astype(np.float32)[None, :]
            reflection[i] = disc * stripes
            images[i] += (0.3 + 0.3 * reflection[i])[..., None] * disc[..., None]
    images = (np.clip(images, 0, 1) * 255).astype(np.uint8)
    ids = np.array([f"v{i}" for i in range(n)])
    return FASSet(images, live, species, species.copy(), ids, np.arange(n), np.array(["toy"] * n), depth, reflection,
                  rng.integers(0, 4, n), [f"v{i}/f0" for i in range(n)])


class TinyProtocol(FASProtocol):
    """A FAS protocol whose splits are tiny synthetic sets of whatever size is asked for."""

    def __init__(self, n: int = 48) -> None:
        super().__init__(name="toy-fas", task="fas", description="tiny synthetic FAS set (tests)",
                         threshold_rule="dev EER", splits={})
        object.__setattr__(self, "n", n)

    def frames(self, split: str, size: int) -> FASSet:
        return tiny_fas_set(self.n, size, seed={"train": 0, "dev": 1, "test": 2}[split])


# --------------------------------------------------------------------------- building blocks


def test_contrastive_depth_loss_is_zero_for_equal_maps_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 8, 8, generator=g)
    assert contrastive_depth_loss(a, a.clone()).item() == 0.0
    assert contrastive_depth_loss(a, torch.rand(3, 8, 8, generator=g)).item() > 1e-3
    # only the local shape counts: a constant offset has the same 8-direction differences
    assert contrastive_depth_loss(a, a + 0.3).item() < 1e-10


def test_map_loss_ignores_unknown_labels():
    pred = torch.full((2, 4, 4), 0.5)
    target = torch.zeros(2, 4, 4)
    target[1] = float("nan")
    assert map_loss(pred, target).item() == pytest.approx(0.25)
    assert map_loss(pred, target, p=1).item() == pytest.approx(0.5)
    assert map_loss(pred, torch.full_like(target, float("nan"))).item() == 0.0


def test_gan_losses_reward_the_right_side():
    confident_real, confident_fake = torch.full((2, 1, 4, 4), 8.0), torch.full((2, 1, 4, 4), -8.0)
    assert discriminator_loss(confident_real, confident_fake).item() < 1e-3  # D right on both
    assert discriminator_loss(confident_fake, confident_real).item() > 7  # D wrong on both
    assert generator_adversarial_loss(confident_fake).item() > 7  # G not fooling D
    assert generator_adversarial_loss(confident_real).item() < 1e-3


def test_cdc_with_theta_zero_is_a_plain_conv():
    torch.manual_seed(0)
    cdc = CentralDifferenceConv2d(3, 5, theta=0.0, bias=True)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=True)
    conv.load_state_dict(cdc.state_dict())
    x = torch.rand(2, 3, 9, 9)
    assert torch.allclose(cdc(x), conv(x), atol=1e-6)


def test_cdc_response_to_a_constant_image():
    """Away from the zero-padded border a constant image gives (1 - theta) x the plain conv's response:
    zero for a pure central difference (theta = 1), 0.3 x for CDCN's theta = 0.7."""
    torch.manual_seed(0)
    x = torch.full((1, 3, 8, 8), 0.6)
    plain = CentralDifferenceConv2d(3, 4, theta=0.0)
    for theta in (0.7, 1.0):
        cdc = CentralDifferenceConv2d(3, 4, theta=theta)
        cdc.load_state_dict(plain.state_dict())
        inner = cdc(x)[..., 1:-1, 1:-1]
        assert torch.allclose(inner, (1 - theta) * plain(x)[..., 1:-1, 1:-1], atol=1e-6)
    assert cdc(x)[..., 1:-1, 1:-1].abs().max().item() < 1e-6
    stride2 = CentralDifferenceConv2d(3, 4, stride=2, theta=0.7)
    assert stride2(torch.rand(1, 3, 8, 8)).shape == (1, 4, 4, 4)


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("name", FAS_VARIANTS)
def test_variant_builds_and_returns_logits_and_depth(name):
    spec = get_variant(name)
    assert spec.task == "fas" and spec.recipe is not None and spec.citation
    assert spec.input_size == {"tiny": 64, "paper": 256}
    model = spec.build("tiny").eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        logit, depth = model(x), model.depth_map(x)
    assert logit.shape == (3,)
    assert depth.ndim == 3 and depth.shape[0] == 3 and depth.shape[1] == depth.shape[2]
    assert depth.min() >= 0 and depth.max() <= 1
    assert hasattr(model, "backbone")  # the card names the backbone's class


def test_parameter_counts_per_profile():
    def count(name, profile):
        with torch.device("meta"):
            return sum(p.numel() for p in get_variant(name).build(profile).parameters())

    gan, multi = count("depth-gan-spoof", "paper"), count("multiloss-sota", "paper")
    assert 13 < multi / gan < 18  # the method's claim: ~15.8x fewer parameters than the multi-loss baseline
    assert 10e6 < multi < 12.5e6  # ResNet-18 class
    assert count("depth-gan-spoof", "tiny") < count("multiloss-sota", "tiny")
    assert count("cdcn", "tiny") < count("cdcn", "paper")


def test_pseudo_depth_logit_is_higher_for_higher_mean_depth_in_cdcn():
    model = get_variant("cdcn").build("tiny")
    assert model.logit_of_depth(torch.full((1, 4, 4), 0.9)) > model.logit_of_depth(torch.full((1, 4, 4), 0.1))


# --------------------------------------------------------------------------- recipes


def _train(name, epochs, **options):
    torch.manual_seed(0)
    spec = get_variant(name)
    model = spec.build("tiny")
    info = spec.recipe(model, TinyProtocol(), profile="tiny", size=32, epochs=epochs, device=torch.device("cpu"),
                       seed=0, progress=False, batch=16, **options)
    return model, info


def _round_trip(name, model, tmp_path):
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(model, {"variant": name, "profile": "tiny"}, path)
    again = get_variant(name).build("tiny").eval()
    load_checkpoint(again, path, variant=name, profile="tiny")  # strict
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), again(x))
        assert torch.equal(model.depth_map(x), again.depth_map(x))


def test_depth_gan_recipe_learns_in_both_stages_and_round_trips(tmp_path):
    model, info = _train("depth-gan-spoof", 4, pretrain="gan")
    assert info["pretrain"] == "gan" and info["stage_epochs"] == {"pretrain": 2, "finetune": 2}
    pre = info["pretrain_history"]
    assert set(pre) >= {"l1", "adv", "d", "g"} and len(pre["l1"]) == 2
    assert pre["l1"][-1] < pre["l1"][0]
    assert len(info["loss_history"]) == 2 and info["loss_history"][-1] < info["loss_history"][0]
    _round_trip("depth-gan-spoof", model, tmp_path)


@pytest.mark.parametrize("mode,stages", [("none", {"pretrain": 0, "finetune": 2}), ("l1", {"pretrain": 1, "finetune": 1})])
def test_depth_gan_ablations_share_the_recipe(mode, stages):
    _, info = _train("depth-gan-spoof", 2, pretrain=mode)
    assert info["pretrain"] == mode and info["stage_epochs"] == stages
    if mode == "l1":
        assert set(info["pretrain_history"]) == {"l1", "g"}  # no discriminator terms
    else:
        assert "pretrain_history" not in info


def test_depth_gan_refuses_an_unknown_pretrain_mode():
    from bench.errors import BadInputError

    with pytest.raises(BadInputError, match="unknown --pretrain"):
        _train("depth-gan-spoof", 1, pretrain="vae")


def test_multiloss_recipe_learns_every_term_and_round_trips(tmp_path):
    model, info = _train("multiloss-sota", 3)
    assert info["loss_history"][-1] < info["loss_history"][0]
    assert set(info["loss_terms"]) == {"live", "spoof_type", "illumination", "depth", "reflection"}
    assert info["loss_weights"]["depth"] > 0 and info["map_size"] == 4
    for term in ("live", "spoof_type", "depth"):
        assert info["loss_terms"][term][-1] < info["loss_terms"][term][0], term
    _round_trip("multiloss-sota", model, tmp_path)


def test_cdcn_recipe_learns_depth_sets_the_offset_and_round_trips(tmp_path):
    model, info = _train("cdcn", 3)
    assert info["loss_history"][-1] < info["loss_history"][0]
    assert set(info["loss_terms"]) == {"mse", "contrastive"}
    assert 0 < float(model.logit_offset) < 1 and "midpoint" in info["logit"]
    _round_trip("cdcn", model, tmp_path)  # the offset buffer travels with the weights


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def toy_protocol(monkeypatch):
    proto = TinyProtocol(n=16)
    monkeypatch.setitem(PROTOCOLS._entries, proto.name, proto)
    return proto


def test_train_passes_pretrain_to_the_recipe(toy_protocol, tmp_path):
    out = tmp_path / "gan.safetensors"
    r = CliRunner().invoke(main, ["train", "--model", "depth-gan-spoof", "--protocol", toy_protocol.name, "--epochs", "2",
                                  "--pretrain", "l1", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "dev EER" in r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["pretrain"] == "l1" and card["training"]["stage_epochs"] == {"pretrain": 1, "finetune": 1}


def test_train_refuses_pretrain_for_a_variant_without_it(toy_protocol, tmp_path):
    r = CliRunner().invoke(main, ["train", "--model", "cdcn", "--protocol", toy_protocol.name, "--epochs", "1",
                                  "--pretrain", "gan", "--out", str(tmp_path / "x.safetensors"), "-q"])
    assert r.exit_code == 2
    assert "does not take --pretrain" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.safetensors").exists()


def test_models_lists_the_fas_variants_with_counts_and_shipped_weights():
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0, r.output
    for name in FAS_VARIANTS:
        line = next(line for line in r.output.splitlines() if line.startswith(name + " "))
        shipped = shipped_weights(name, "tiny") is not None
        assert " fas " in line and ("EER" in line if shipped else "not shipped" in line)
        assert line.count("M ") >= 2  # tiny and paper parameter counts
    assert set(FAS_VARIANTS) <= set(VARIANTS.names())
