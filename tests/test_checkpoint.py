"""Checkpoints: safetensors + model card, sha256 and architecture checked, never unpickled."""
import json

import numpy as np

import pytest
import torch

from bench.protocols import get_protocol
from bench.errors import BadInputError, CheckpointError
from models_zoo import get_variant
from models_zoo.checkpoint import load_checkpoint, read_card, save_checkpoint, shipped_weights
from models_zoo.registry import VARIANTS
from models_zoo.training import build_zoo, train_variant


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


def test_weights_get_the_same_file_mode_as_their_card(tmp_path):
    """safetensors creates its file 0600; a checkpoint is as readable as any file the user writes (its card)."""
    import os
    import stat

    path = tmp_path / "m.safetensors"
    save_checkpoint(torch.nn.Linear(2, 2), {"variant": "x"}, path)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(path) == mode(path.with_suffix(".json"))


def test_missing_card_is_refused(tmp_path):
    path = tmp_path / "x.safetensors"
    save_checkpoint(torch.nn.Linear(2, 2), {}, path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="card"):
        load_checkpoint(torch.nn.Linear(2, 2), path)


SHIPPED = [n for n in VARIANTS.names() if shipped_weights(n, "tiny") is not None]


def test_every_variant_ships_tiny_weights_of_a_few_mb():
    # external entries (dlib-resnet) read their weights from an installed package: nothing of theirs ships
    assert SHIPPED == [n for n in VARIANTS.names() if VARIANTS.get(n).external is None]
    for name in SHIPPED:
        assert shipped_weights(name, "tiny").stat().st_size < 5 * 2**20, name


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_matches_its_weights_and_dev_metric_reproduces(name):
    """The card's sha256 is its weights' (checked on load) and its dev operating point is measured again."""
    weights = shipped_weights(name, "tiny")
    card = json.loads(weights.with_suffix(".json").read_text())
    spec = get_variant(name)
    model = spec.build("tiny")
    load_checkpoint(model, weights, variant=name, profile="tiny")
    assert card["training_command"].startswith("facebench train")
    model.eval()
    proto = get_protocol(card["protocol"])
    cpu = torch.device("cpu")
    size = spec.input_size["tiny"]
    dev = proto.calibrate(model, proto.dev_split(size), cpu)
    again = dev.as_card()
    assert again["threshold"] == pytest.approx(card["dev"]["threshold"], abs=1e-4)
    key = "dev_tar" if spec.task == "fr" else "dev_eer"
    assert again[key] == pytest.approx(card["dev"][key], abs=1e-3)


def test_paper_profile_is_refused_on_cpu_without_force():
    with pytest.raises(BadInputError, match="--force"):
        train_variant("facenet-baseline", profile="paper", epochs=1, progress=False)


def test_zoo_build_trains_each_variant_with_its_schedule(monkeypatch, tmp_path):
    calls = []

    def fake_train(name, **kw):
        calls.append((name, kw["epochs"], kw["command"], kw["out"]))
        return kw["out"], {"task": "fr"}

    monkeypatch.setattr("models_zoo.training.train_variant", fake_train)
    built = build_zoo("tiny", ["facenet-baseline"], out_dir=tmp_path, progress=False)
    epochs = get_variant("facenet-baseline").zoo_epochs["tiny"]  # 30 since issue 16's world (4 000 identities)
    assert calls == [("facenet-baseline", epochs, f"facebench train --model facenet-baseline --profile tiny --epochs {epochs} --seed 0",
                      tmp_path / "facenet-baseline-tiny.safetensors")]
    assert [b[0] for b in built] == ["facenet-baseline"]
    calls.clear()
    build_zoo("tiny", None, out_dir=tmp_path, progress=False)  # the default: every variant with a recipe
    assert {c[0] for c in calls} == {n for n in VARIANTS.names() if get_variant(n).recipe is not None}
    with pytest.raises(BadInputError, match="paper"):
        build_zoo("paper", ["facenet-baseline"], progress=False)  # no paper schedule yet: refused before training


class _DeferredPool:
    """A stand-in for `build_zoo --jobs`' process pool: a job runs when it has been polled `polls` times (so that
    several are running at once), in this process (monkeypatched `train_variant` included)."""

    def __init__(self, jobs, threads, polls=2):
        self.jobs, self.threads, self.polls = jobs, threads, polls
        self.live, self.most, self.terminated = set(), 0, False

    def apply_async(self, fn, args):
        pool, task = self, args[0]
        pool.live.add(task.name)
        pool.most = max(pool.most, len(pool.live))

        class Job:
            polled, outcome = 0, None

            def ready(self):
                self.polled += 1
                if self.polled >= pool.polls and self.outcome is None:
                    try:
                        self.outcome = ("ok", fn(*args))
                    except Exception as error:  # what a worker's failure gives `get`
                        self.outcome = ("error", error)
                    pool.live.discard(task.name)
                return self.outcome is not None

            def get(self):
                kind, value = self.outcome
                if kind == "error":
                    raise value
                return value

        return Job()

    def terminate(self):
        self.terminated = True

    def close(self):
        pass

    def join(self):
        pass


def test_zoo_build_with_jobs_trains_side_by_side_and_fine_tunes_what_it_built_after_it(monkeypatch, tmp_path):
    """`zoo build --jobs 2`: at most two trainings at once; the variant others fine-tune starts first, and
    triplet-adv starts only once the facenet-baseline of this run is written, from it; the results come back in
    registry order whatever order they finished in."""
    from models_zoo import training

    monkeypatch.setattr(training, "POLL_S", 0.0)
    calls, pools, lines = [], [], []

    def fake_train(name, **kw):
        calls.append((name, kw["options"], kw["command"], kw["progress"]))
        kw["out"].write_bytes(b"")
        return kw["out"], {"task": "fr", "wall_time_s": 1.0}

    def pool_factory(jobs, threads):
        pools.append(_DeferredPool(jobs, threads))
        return pools[-1]

    monkeypatch.setattr("models_zoo.training.train_variant", fake_train)
    names = ["cdcn", "triplet-adv", "facenet-baseline", "depth-gan-spoof"]
    built = build_zoo("tiny", names, out_dir=tmp_path, jobs=2, log=lines.append, pool_factory=pool_factory)
    assert [b[0] for b in built] == names
    order = [c[0] for c in calls]
    assert order[0] == "facenet-baseline" and order.index("triplet-adv") > order.index("facenet-baseline")
    fresh = str(tmp_path / "facenet-baseline-tiny.safetensors")
    assert dict((c[0], c[1]) for c in calls)["triplet-adv"] == {"init": fresh}
    assert not any(c[3] for c in calls)  # the workers' bars are off; lines say what happens
    assert pools[0].most == 2 and pools[0].jobs == 2 and pools[0].threads >= 1
    assert any("training triplet-adv" in line for line in lines) and any("4 of 4 done" in line for line in lines)


def test_zoo_build_with_jobs_stops_the_others_when_a_training_fails(monkeypatch, tmp_path):
    from models_zoo import training

    monkeypatch.setattr(training, "POLL_S", 0.0)
    pools = []

    def fake_train(name, **kw):
        if name == "cdcn":
            raise BadInputError("cdcn went wrong")
        return kw["out"], {"task": "fas", "wall_time_s": 1.0}

    def pool_factory(jobs, threads):
        pools.append(_DeferredPool(jobs, threads))
        return pools[-1]

    monkeypatch.setattr("models_zoo.training.train_variant", fake_train)
    with pytest.raises(BadInputError, match="cdcn went wrong"):
        build_zoo("tiny", ["cdcn", "depth-gan-spoof", "multiloss-sota"], out_dir=tmp_path, jobs=2, pool_factory=pool_factory)
    assert pools[0].terminated
    with pytest.raises(BadInputError, match="--jobs must be at least 1"):
        build_zoo("tiny", ["cdcn"], out_dir=tmp_path, jobs=0)


def test_zoo_build_jobs_trains_in_spawned_workers_with_their_share_of_the_cores_and_the_same_weights(monkeypatch, tmp_path):
    """The real pool: `facebench zoo build --jobs 2` trains in a spawned process with cpu_count // 2 torch threads
    (the card says so) and writes the weights a training here with as many threads writes, bit for bit."""
    import os

    from click.testing import CliRunner

    from bench.cli import main

    threads = max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setitem(get_variant("depth-gan-spoof").zoo_epochs, "tiny", 0.05)  # carried to the worker by its task
    r = CliRunner().invoke(main, ["zoo", "build", "--only", "depth-gan-spoof", "--jobs", "2", "--out", str(tmp_path / "par"), "-q"])
    assert r.exit_code == 0, r.output
    assert "depth-gan-spoof trained in" in r.output and "1 of 1 done" in r.output
    card = json.loads((tmp_path / "par" / "depth-gan-spoof-tiny.json").read_text())
    assert card["host"].endswith(f", {threads} threads"), card["host"]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _, here = train_variant("depth-gan-spoof", epochs=0.05, out=tmp_path / "here", progress=False)
    finally:
        torch.set_num_threads(before)
    assert here["sha256"] == card["sha256"]


def test_training_runs_under_bf16_autocast_on_cuda_and_fp32_on_cpu():
    from models_zoo.training import fit, mixed_precision, precision_card, shuffled_batches

    assert mixed_precision(torch.device("cuda")) and not mixed_precision(torch.device("cpu"))
    assert precision_card(torch.device("cuda")) == "bf16 autocast, channels_last" and precision_card(torch.device("cpu")) == "fp32"
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    for amp, dtype in ((True, torch.bfloat16), (None, torch.float32)):  # the CUDA path's autocast, exercised on the CPU
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                    torch.nn.Linear(4, 1))
        seen = []

        def loss_of(m, x, idx):
            out = m(x)
            seen.append(out.dtype)
            return (out - 1).pow(2).mean()

        rng = np.random.default_rng(0)
        batches, steps = shuffled_batches(len(images), 8, rng)
        history = fit(model, images, batches, loss_of, epochs=3, steps_per_epoch=steps, lr=3e-2,
                      device=torch.device("cpu"), rng=rng, progress=False, amp=amp)
        assert set(seen) == {dtype}
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
        assert np.isfinite(history).all() and history[-1] < history[0], history


def test_a_safetensors_file_whose_header_length_looks_like_a_pickle_is_not_taken_for_one(tmp_path):
    """A safetensors file starts with its header's length: 640 bytes reads 0x80 0x02 like a protocol-2 pickle. It is
    still loaded as safetensors; a real torch.save file (zip or legacy pickle) is recognised without unpickling."""
    from safetensors.torch import save as safetensors_bytes

    from models_zoo.checkpoint import load_weights, torch_pickle_format

    model = torch.nn.Linear(2, 2)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    data = next(d for d in (safetensors_bytes(state, {"pad": "x" * n}) for n in range(700)) if d[:2] == b"\x80\x02")
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    assert torch_pickle_format(path) is None
    load_weights(torch.nn.Linear(2, 2), path)
    torch.save(state, tmp_path / "w.pt")
    torch.save(state, tmp_path / "w.pth", _use_new_zipfile_serialization=False)
    assert torch_pickle_format(tmp_path / "w.pt") == "zip" and torch_pickle_format(tmp_path / "w.pth") == "pickle"
    with pytest.raises(CheckpointError, match=r"PyTorch zip file \(torch.save\).*weights_only=True"):
        load_weights(torch.nn.Linear(2, 2), tmp_path / "w.pt")


def test_a_torch_save_file_as_init_is_named_with_its_conversion_not_as_an_unknown_variant(tmp_path):
    """`--init w.pt` (adversarial fine-tuning's warm start) is refused like `--checkpoint w.pt`, not as a variant name."""
    from models_zoo.training import warm_start

    model = torch.nn.Linear(2, 2)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"w.pt is a PyTorch zip file \(torch.save\), not safetensors"):
        warm_start(model, str(tmp_path / "w.pt"), "tiny")
    with pytest.raises(BadInputError, match="no shipped tiny weights of a variant 'nope'"):
        warm_start(model, "nope", "tiny")


def test_an_output_that_cannot_be_written_is_refused_before_any_training(tmp_path, monkeypatch):
    """`facebench train` / `zoo build` check --out before they train (it used to fail with a traceback after the
    training): a file in the way of the folder, or a folder where the .safetensors would go, is one line."""
    from click.testing import CliRunner

    from bench.cli import main

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the output was checked")

    monkeypatch.setattr("models_zoo.training.get_protocol", no_training)  # the data is read first, then trained on
    (tmp_path / "afile.txt").write_text("mine\n")
    with pytest.raises(BadInputError, match="is a file, not a folder"):
        train_variant("cdcn", out=tmp_path / "afile.txt", progress=False)
    with pytest.raises(BadInputError, match="is a file, not a folder"):
        train_variant("cdcn", out=tmp_path / "afile.txt" / "w.safetensors", progress=False)
    (tmp_path / "taken.safetensors").mkdir()
    with pytest.raises(BadInputError, match="is a folder"):
        train_variant("cdcn", out=tmp_path / "taken.safetensors", progress=False)
    with pytest.raises(BadInputError, match="is a file, not a folder"):
        build_zoo("tiny", ["cdcn"], out_dir=tmp_path / "afile.txt", progress=False)
    r = CliRunner().invoke(main, ["zoo", "build", "--only", "cdcn", "--out", str(tmp_path / "afile.txt" / "zoo"), "-q"])
    assert r.exit_code == 2 and "is a file, not a folder" in r.output and "Traceback" not in r.output, r.output
    assert (tmp_path / "afile.txt").read_text() == "mine\n"
