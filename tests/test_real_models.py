"""Real models (issue 18): input adaptation inside the attacked forward, ONNX files as models under test, and the
zoo's external entries (weights read from an installed package, pinned by sha256)."""
import hashlib
import json
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from bench.cli import main
from bench.errors import BadInputError, CheckpointError, ModelFactoryError
from bench.external import ExternalWeights, NativeThreshold, status
from bench.modelref import InputConvention, input_convention, parse_preprocess
from bench.store import ResultsStore
from bench.tables import open_results
from models_zoo.adapt import InputAdapter
from models_zoo.factory import create_model
from models_zoo.registry import VARIANTS, VariantSpec, register_external

onnx = pytest.importorskip("onnx", reason="the ONNX path needs the onnx extra: pip install 'facebench[onnx]'")
pytest.importorskip("onnxruntime", reason="the ONNX path needs the onnx extra: pip install 'facebench[onnx]'")
pytest.importorskip("onnx2torch", reason="the ONNX path needs the onnx extra: pip install 'facebench[onnx]'")

# deterministic attacks (no random start: a cell's seed comes from its id, which names the model), so a model and
# its ONNX export must give the same per-sample results
SUITE = textwrap.dedent("""
    name: onnx-roundtrip
    attacks:
      - attack: fgsm
        norm: linf
        eps: [4/255, 8/255]
      - attack: pgd
        params: {steps: 5, random_start: false}
        norm: linf
        eps: 8/255
""")


class TinyNet(nn.Module):
    """A few convolutions that see absolute pixel values (so normalisation and channel order matter)."""

    def __init__(self, out: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 5, stride=3)
        self.head = nn.Linear(6, out)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).mean((2, 3)))


def _export(model: nn.Module, path: Path, size: int, dynamic_size: bool = False) -> Path:
    axes = {"x": {0: "n", 2: "h", 3: "w"} if dynamic_size else {0: "n"}, "y": {0: "n"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.rand(2, 3, size, size),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes=axes)
    return path


# ---------------------------------------------------------------------------- input adaptation


def test_the_adapter_resizes_and_normalises_inside_the_forward_and_passes_gradients():
    net = TinyNet().eval()
    convention = InputConvention(size=96, scale=255, mean=(120.0, 110.0, 100.0), std=(60.0, 50.0, 40.0), channels="BGR")
    wrapped = InputAdapter(net, convention)
    x = torch.rand(3, 3, 64, 64, requires_grad=True)  # a 64-px protocol's images, in [0, 1]
    from torchvision.transforms.v2.functional import resize

    by_hand = resize(x.detach(), [96, 96], antialias=True)[:, [2, 1, 0]] * 255  # BGR, on the 0-255 scale
    by_hand = (by_hand - torch.tensor([120.0, 110.0, 100.0]).view(1, 3, 1, 1)) / torch.tensor([60.0, 50.0, 40.0]).view(1, 3, 1, 1)
    out = wrapped(x)
    assert torch.allclose(out, net(by_hand), atol=1e-5)
    assert not torch.allclose(out, net(resize(x.detach(), [96, 96], antialias=True)), atol=1e-3)  # normalising matters
    assert convention.describe() == "96 px, BGR, (x * 255 - (120, 110, 100)) / (60, 50, 40)"
    out.square().sum().backward()
    assert x.grad is not None and x.grad.shape == (3, 3, 64, 64) and bool((x.grad != 0).any())
    unit = InputAdapter(net, InputConvention(size=96), l2_normalise=True)(x)
    assert torch.allclose(unit.norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("text,message", [
    ("size=112,scale", "key=value"),
    ("size=112.5", "whole number"),
    ("mean=1/2", "three numbers"),
    ("std=0", "must not be 0"),
    ("channels=rbg", "RGB or BGR"),
    ("colour=BGR", "unknown key"),
    ("scale=-1", "positive"),
])
def test_a_bad_preprocess_is_one_line(text, message):
    with pytest.raises(BadInputError, match=message):
        parse_preprocess(text)


def test_preprocess_values_and_the_sidecar_combine_key_by_key(tmp_path):
    assert input_convention(parse_preprocess("size=112,scale=255,mean=127.5,std=128,channels=bgr"), "x") == \
        InputConvention(112, 255.0, (127.5,) * 3, (128.0,) * 3, "BGR")
    r = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--preprocess", "scale=255"])
    assert r.exit_code == 2 and "--preprocess applies to models of your own" in r.output
    r = CliRunner().invoke(main, ["run", "--model", str(tmp_path / "missing.onnx"), "--task", "fr"])
    assert r.exit_code == 2 and "no such file" in r.output and len(r.output.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- ONNX


@pytest.mark.slow  # two CLI runs of facenet-baseline (its dev calibration embeds the whole dev split): ~40 s of CPU
def test_an_exported_zoo_model_gives_the_zoo_models_per_sample_results(tmp_path):
    """The ONNX round trip: facenet-baseline exported with torch.onnx and evaluated through --model x.onnx gives the
    zoo model's per-sample results (same items, same decisions, scores within float error)."""
    path = _export(create_model("facenet-baseline").module, tmp_path / "facenet.onnx", 64)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    store = tmp_path / "r.h5"
    common = ["--attack-suite", str(suite), "--samples", "8", "--store", str(store), "-q", "--device", "cpu"]
    for model in (["--model", "facenet-baseline"], ["--model", str(path), "--task", "fr"]):
        r = CliRunner().invoke(main, ["run", *model, *common])
        assert r.exit_code == 0, r.output
    samples = open_results(store).samples
    zoo, onx = samples[samples.model == "facenet-baseline"], samples[samples.model == str(path)]
    key = ["goal", "attack", "eps", "sample_id"]
    zoo, onx = zoo.sort_values(key).reset_index(drop=True), onx.sort_values(key).reset_index(drop=True)
    assert len(zoo) == len(onx) == 2 * 3 * 8 and (zoo[key] == onx[key]).all().all()
    for column in ("clean_correct", "attacked", "success"):
        assert (zoo[column] == onx[column]).all(), column
    for column in ("clean_score", "adv_score", "linf"):
        assert np.allclose(zoo[column], onx[column], atol=1e-4), column
    runs = {r["model"]: r for r in ResultsStore(store).runs()}
    run = runs[str(path)]
    assert run["source"] == "user" and run["model_name"] == "facenet.onnx"
    assert run["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert abs(float(run["threshold"]) - float(runs["facenet-baseline"]["threshold"])) < 1e-4


def test_an_onnx_model_of_another_size_and_normalisation_is_adapted_to_it(tmp_path):
    """A graph with a fixed 32-px input and a sidecar stating its normalisation: the loaded model is the network
    behind the resize and the normalisation, and its output is checked against onnxruntime."""
    net = TinyNet().eval()
    path = _export(net, tmp_path / "tiny.onnx", 32)
    (tmp_path / "tiny.json").write_text(json.dumps({"scale": 255, "mean": 127.5, "std": [64, 64, 64]}))
    loaded = create_model(str(path), task="fr")
    x = torch.rand(4, 3, 64, 64)
    by_hand = F.normalize(net((F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True) * 255 - 127.5) / 64), dim=1)
    assert torch.allclose(loaded.module(x), by_hand, atol=1e-5)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.card["preprocess"] == {"size": 32, "scale": 255.0, "mean": [127.5] * 3, "std": [64.0] * 3, "channels": "RGB"}
    flipped = create_model(str(path), task="fr", preprocess="channels=BGR")  # the command line over the sidecar
    assert flipped.card["preprocess"]["channels"] == "BGR" and flipped.card["preprocess"]["scale"] == 255.0
    with pytest.raises(ModelFactoryError, match="takes 32 px, but the stated size is 48"):
        create_model(str(path), task="fr", preprocess="size=48")
    (tmp_path / "tiny.json").write_text(json.dumps({"sclae": 255}))
    with pytest.raises(BadInputError, match="unknown key"):
        create_model(str(path), task="fr")


def test_an_onnx_model_that_onnxruntime_disagrees_with_is_refused(tmp_path, monkeypatch):
    import models_zoo.onnx_model as onnx_model

    path = _export(TinyNet(), tmp_path / "tiny.onnx", 32, dynamic_size=True)
    monkeypatch.setattr(onnx_model, "ATOL", -1.0)  # no output can be within a negative tolerance
    with pytest.raises(ModelFactoryError, match="differs from onnxruntime by up to"):
        create_model(str(path), task="fr")


def test_an_onnx_fas_model_with_a_column_logit_runs_one_image_at_a_time_if_exported_so(tmp_path):
    net = TinyNet(out=1).eval()
    path = tmp_path / "fas.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])  # a fixed batch of 1
    loaded = create_model(str(path), task="fas")
    x = torch.rand(5, 3, 64, 64)
    assert torch.allclose(loaded.module(x), net(x).squeeze(1), atol=1e-5)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelFactoryError, match="not a readable ONNX file"):
        create_model(str(bad), task="fas")


# ---------------------------------------------------------------------------- external entries

BUILDER = textwrap.dedent('''
    import numpy as np
    import torch
    from torch import nn


    def build(path):
        """A 2-layer network whose weights are the file's float32 values (a stand-in for dlib's reader)."""
        values = torch.from_numpy(np.fromfile(path, dtype=np.float32).copy())
        net = nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.Flatten(), nn.LazyLinear(6))
        net[0].weight.data = values[:300].view(4, 3, 5, 5)
        net[0].bias.data = values[300:304]
        net(torch.zeros(1, 3, 40, 40))  # the lazy layer takes its shape: 4 x 9 x 9
        net[2].weight.data = values[304:304 + 6 * 324].view(6, 324)
        net[2].bias.data = values[304 + 6 * 324:304 + 6 * 324 + 6]
        return net
''')


@pytest.fixture
def fake_external(tmp_path, monkeypatch):
    """An installed distribution `fbtest-weights` holding a weights file, a builder module, and an external entry
    `fbtest-external` registered for this test."""
    site = tmp_path / "site"
    (site / "fbtest_weights").mkdir(parents=True)
    weights = site / "fbtest_weights" / "w.bin"
    np.random.default_rng(0).standard_normal(304 + 6 * 324 + 6).astype(np.float32).tofile(weights)
    info = site / "fbtest_weights-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fbtest-weights\nVersion: 1.0\n")
    (info / "RECORD").write_text("fbtest_weights/w.bin,,\n")
    (site / "fbtest_ext_builder.py").write_text(BUILDER)
    monkeypatch.syspath_prepend(str(site))
    ext = ExternalWeights("fbtest-weights", "1.0", "fbtest_weights/w.bin", hashlib.sha256(weights.read_bytes()).hexdigest(),
                          "fbtest_ext_builder:build", InputConvention(size=40, scale=2.0, mean=(1.0, 1.0, 1.0)),
                          "a test's stand-in", "CC0", "40x40 RGB", NativeThreshold(0.5, "distance below", "cosine"))
    monkeypatch.setattr(VARIANTS, "_entries", dict(VARIANTS._entries))  # registered for this test only
    register_external("fbtest-external", task="fr", description="a fake external FR entry",
                      input_size={"tiny": 64, "paper": 160}, default_protocol="synth-fr", external=ext)
    yield ext, weights
    sys.modules.pop("fbtest_ext_builder", None)


def test_an_external_entry_builds_from_the_installed_package_behind_its_convention(fake_external):
    ext, weights = fake_external
    loaded = create_model("fbtest-external")
    assert loaded.checkpoint == str(weights) and loaded.sha256 == ext.sha256 and loaded.card["external"]
    net = loaded.module.net
    x = torch.rand(2, 3, 64, 64)
    by_hand = F.normalize(net(F.interpolate(x, size=(40, 40), mode="bilinear", antialias=True) * 2 - 1), dim=1)
    assert torch.allclose(loaded.module(x), by_hand, atol=1e-5)
    assert status(ext.listing()) == "installed"
    with pytest.raises(CheckpointError, match="--checkpoint does not apply"):
        create_model("fbtest-external", checkpoint=str(weights))


def test_an_external_entrys_weights_must_have_the_pinned_sha256(fake_external):
    ext, weights = fake_external
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match=r"not the pinned .* of fbtest-weights 1.0"):
        create_model("fbtest-external")


def test_a_missing_extra_or_builder_is_one_line_saying_how(fake_external, monkeypatch):
    ext, _ = fake_external
    spec = VARIANTS.get("fbtest-external")
    gone = ExternalWeights("fbtest-not-installed", "1.0", "x/w.bin", "0" * 64, ext.builder, ext.convention, "", "", "")
    monkeypatch.setitem(VARIANTS._entries, "fbtest-external", VariantSpec(**{**spec.__dict__, "external": gone}))
    with pytest.raises(CheckpointError, match=r"fbtest-not-installed, which is not installed: pip install 'facebench\[real\]'"):
        create_model("fbtest-external")
    assert status(gone.listing()) == "not installed: pip install 'facebench[real]'"
    nobuilder = ExternalWeights(**{**ext.__dict__, "builder": "fbtest_no_such_module:build"})
    monkeypatch.setitem(VARIANTS._entries, "fbtest-external", VariantSpec(**{**spec.__dict__, "external": nobuilder}))
    with pytest.raises(CheckpointError, match="its network builder fbtest_no_such_module is not in this facebench"):
        create_model("fbtest-external")
    assert "builder fbtest_no_such_module is not in this facebench" in status(nobuilder.listing())


def test_an_external_entry_runs_with_its_native_threshold_recorded_and_is_marked_external(fake_external, tmp_path):
    ext, weights = fake_external
    suite = tmp_path / "suite.yaml"
    suite.write_text("attacks:\n  - attack: fgsm\n    norm: linf\n    eps: 8/255\n")
    store = tmp_path / "r.h5"
    r = CliRunner().invoke(main, ["run", "--model", "fbtest-external", "--attack-suite", str(suite), "--samples", "4",
                                  "--store", str(store), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "native threshold of fbtest-external: distance below 0.5" in r.output
    run = ResultsStore(store).runs()[-1]
    assert run["checkpoint_sha256"] == ext.sha256 and run["source"] == "zoo" and run["card_check"].startswith("external")
    assert json.loads(run["preprocess"])["size"] == 40
    assert json.loads(run["native_threshold"])["value"] == 0.5 and "fbtest-weights 1.0" in run["external"]
    from bench.leaderboard.catalogue import model_info

    info = model_info(run)
    assert info.external and info.recipe.startswith("external (fbtest-weights 1.0)") and "CC0" in info.description
    listed = CliRunner().invoke(main, ["models"])
    line = next(line for line in listed.output.splitlines() if line.startswith("fbtest-external "))
    assert "external: fbtest-weights 1.0 (installed)" in line


def test_dlib_resnet_is_registered_as_an_external_entry_pinned_by_sha256():
    spec = VARIANTS.get("dlib-resnet")
    ext = spec.external
    assert spec.task == "fr" and spec.recipe is None and ext.convention.size == 150
    assert ext.distribution == "face-recognition-models" and ext.version == "0.3.0" and len(ext.sha256) == 64
    assert ext.native_threshold.value == 0.6 and "CC0" in ext.licence
    assert ext.builder == "models_zoo.external.dlib_resnet:build_dlib_resnet"
    listed = CliRunner().invoke(main, ["models"])
    line = next(line for line in listed.output.splitlines() if line.startswith("dlib-resnet "))
    assert "external: face-recognition-models 0.3.0 (" in line
    names = CliRunner().invoke(main, ["models", "--names"]).output.split()
    assert "dlib-resnet" not in names  # nothing of it ships: the gate's and leaderboard's lists leave it out
