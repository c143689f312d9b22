"""Checkpoints: safetensors + model card, sha256 and architecture checked, never unpickled."""
import json

import pytest
import torch

from bench.errors import CheckpointError
from models_zoo import get_variant
from models_zoo.checkpoint import load_checkpoint, read_card, save_checkpoint, shipped_weights
from models_zoo.training import train_variant


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "fb.safetensors"
    weights, card = train_variant("facenet-baseline", epochs=1, out=out, progress=False, command="pytest")
    return weights, card


def test_training_writes_weights_and_a_complete_card(trained):
    weights, card = trained
    assert weights.exists() and weights.with_suffix(".json").exists()
    for key in ("variant", "profile", "architecture", "parameters", "input_size", "protocol", "training_command", "seed",
                "code_version", "epochs", "wall_time_s", "device", "sha256", "dev"):
        assert key in card, key
    assert card["dev"]["threshold_rule"] == "dev FAR=0.001"
    assert len(card["training"]["loss_history"]) == 1


def test_round_trip_gives_the_same_network(trained):
    weights, card = trained
    a = get_variant("facenet-baseline").build("tiny").eval()
    load_checkpoint(a, weights, variant="facenet-baseline", profile="tiny")
    b = get_variant("facenet-baseline").build("tiny").eval()
    load_checkpoint(b, weights)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(a(x), b(x))


def test_corrupted_weights_are_refused(trained, tmp_path):
    weights, _ = trained
    bad = tmp_path / "bad.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    bad.with_suffix(".json").write_text(weights.with_suffix(".json").read_text())
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(get_variant("facenet-baseline").build("tiny"), bad)


def test_wrong_variant_and_architecture_are_refused(trained, tmp_path):
    weights, _ = trained
    with pytest.raises(CheckpointError, match="is for variant"):
        load_checkpoint(get_variant("facenet-baseline").build("tiny"), weights, variant="other")
    small = torch.nn.Linear(2, 2)
    path = tmp_path / "lin.safetensors"
    card = save_checkpoint(small, {"variant": "facenet-baseline", "profile": "tiny"}, path)
    assert read_card(path)["sha256"] == card["sha256"]
    with pytest.raises(CheckpointError, match="does not match the architecture"):
        load_checkpoint(get_variant("facenet-baseline").build("tiny"), path)


def test_missing_card_is_refused(tmp_path):
    path = tmp_path / "x.safetensors"
    save_checkpoint(torch.nn.Linear(2, 2), {}, path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="card"):
        load_checkpoint(torch.nn.Linear(2, 2), path)


def test_shipped_card_matches_its_weights():
    weights = shipped_weights("facenet-baseline", "tiny")
    assert weights is not None
    card = json.loads(weights.with_suffix(".json").read_text())
    model = get_variant("facenet-baseline").build("tiny")
    load_checkpoint(model, weights, variant="facenet-baseline", profile="tiny")  # checks the sha256
    assert card["training_command"].startswith("facebench train")
