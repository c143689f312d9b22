"""`facebench check`: the CI regression gate against a baseline."""
import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A store with two FAS models (a small PGD grid each), and one with only the first."""
    d = tmp_path_factory.mktemp("gate")
    suite = d / "s.yaml"
    suite.write_text("attacks:\n  - attack: pgd\n    params: {steps: 3}\n    eps: [1/255, 2/255]\n")
    both, one = d / "both.h5", d / "one.h5"
    for model in ("depth-gan-spoof", "cdcn"):
        run_benchmark(RunConfig(model=model, suite=str(suite), samples=48, store=str(both), device="cpu"), progress=False)
    run_benchmark(RunConfig(model="depth-gan-spoof", suite=str(suite), samples=48, store=str(one), device="cpu"),
                  progress=False)
    return both, one


def check(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)])


def test_update_then_check_the_same_store_passes(stores, tmp_path):
    both, _ = stores
    baseline = tmp_path / "baseline.json"
    out = check("--baseline", baseline, "--store", both, "--update")
    assert out.exit_code == 0, out.output
    data = json.loads(baseline.read_text())
    metrics = {(m["model"], m["metric"]) for m in data["metrics"]}
    assert ("cdcn", "robust accuracy @ linf 2/255") in metrics and ("depth-gan-spoof", "clean accuracy") in metrics
    assert len(data["metrics"]) == 2 * 3  # per model: clean + robust at 2 budgets
    out = check("--baseline", baseline, "--store", both)
    assert out.exit_code == 0, out.output
    assert "6 metrics: 6 ok, 0 improved, 0 regressed, 0 missing" in out.output


def lower_robust_accuracy(path, model, eps):
    """Mark every sample of one cell broken (as an attack that got stronger, or a model that got weaker)."""
    with h5py.File(path, "a") as f:
        for cid, g in f["cells"].items():
            if g.attrs["model"] == model and abs(float(g.attrs["eps"]) - eps) < 1e-9:
                g["success"][...] = np.ones_like(g["success"][()])
                return cid
    raise AssertionError("no such cell")


def test_a_metric_lowered_past_the_tolerance_fails_and_is_named(stores, tmp_path):
    both, _ = stores
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", both, "--update").exit_code == 0
    worse = tmp_path / "worse.h5"
    shutil.copy(both, worse)
    lower_robust_accuracy(worse, "depth-gan-spoof", 1 / 255)
    out = check("--baseline", baseline, "--store", worse)
    assert out.exit_code == 1, out.output
    bad = [line for line in out.output.splitlines() if "REGRESSED" in line]
    assert len(bad) == 1 and "depth-gan-spoof" in bad[0] and "robust accuracy @ linf 1/255" in bad[0]
    gh = check("--baseline", baseline, "--store", worse, "--format", "github")
    assert gh.exit_code == 1
    errors = [line for line in gh.output.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "depth-gan-spoof" in errors[0] and "robust accuracy @ linf 1/255" in errors[0]
    # a tolerance larger than the drop lets it through
    assert check("--baseline", baseline, "--store", worse, "--tolerance", "0.99").exit_code == 0


def test_a_drop_inside_the_sampling_interval_passes(stores, tmp_path):
    """One sample more broken is noise at n = 48, even with a tolerance of zero."""
    both, _ = stores
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", both, "--update").exit_code == 0
    data = json.loads(baseline.read_text())
    # a cdcn metric with room above it (clean accuracy first; the shipped cdcn may detect every spoof, k = n)
    room = sorted((m for m in data["metrics"] if m["model"] == "cdcn" and m["k"] < m["n"]),
                  key=lambda m: m["metric"] != "clean accuracy")
    assert room, "no cdcn metric below 100 % to lower by one sample"
    room[0]["k"] += 1
    baseline.write_text(json.dumps(data))
    out = check("--baseline", baseline, "--store", both, "--tolerance", "0")
    assert out.exit_code == 0, out.output


def test_a_baseline_with_more_successes_than_samples_is_refused_in_one_line(stores, tmp_path):
    both, _ = stores
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", both, "--update").exit_code == 0
    data = json.loads(baseline.read_text())
    data["metrics"][0]["k"] = data["metrics"][0]["n"] + 1
    baseline.write_text(json.dumps(data))
    out = check("--baseline", baseline, "--store", both)
    assert out.exit_code != 0
    assert "k must be between 0 and n" in out.output and "Traceback" not in out.output


def test_a_model_missing_from_the_store_is_reported_not_ignored(stores, tmp_path):
    both, one = stores
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", both, "--update").exit_code == 0
    out = check("--baseline", baseline, "--store", one)
    assert out.exit_code == 1
    missing = [line for line in out.output.splitlines() if "MISSING" in line]
    assert len(missing) == 3 and all("cdcn" in line for line in missing)
    js = json.loads(check("--baseline", baseline, "--store", one, "--format", "json").output)
    assert not js["passed"] and {c["status"] for c in js["comparisons"] if c["model"] == "cdcn"} == {"MISSING"}


def test_bad_baselines_fail_with_one_line(stores, tmp_path):
    both, _ = stores
    out = check("--baseline", tmp_path / "none.json", "--store", both)
    assert out.exit_code == 2 and "does not exist" in out.output
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    out = check("--baseline", junk, "--store", both)
    assert out.exit_code == 2 and "is not a facebench baseline" in out.output
    assert junk.read_text() == "{not json"
    out = check("--baseline", junk, "--store", tmp_path / "nostore.h5")
    assert out.exit_code == 2 and "does not exist" in out.output


def test_update_on_an_empty_store_writes_nothing(tmp_path):
    empty = tmp_path / "empty.h5"
    ResultsStore(empty).begin_run({"model": "x", "protocol": "p", "suite": "s"})
    baseline = tmp_path / "b.json"
    out = check("--baseline", baseline, "--store", empty, "--update")
    assert out.exit_code == 2 and "no complete runs" in out.output and not baseline.exists()


def test_update_without_a_named_baseline_rewrites_nothing(stores, tmp_path, monkeypatch):
    """`check --update` with the default --baseline would rewrite a checkout's committed leaderboards/baseline.json:
    it must be named explicitly (as `make gate-update` does)."""
    monkeypatch.chdir(tmp_path)
    committed = tmp_path / "leaderboards" / "baseline.json"
    committed.parent.mkdir()
    committed.write_text('{"committed": true}')
    out = CliRunner().invoke(main, ["check", "--store", str(stores[0]), "--update"])
    assert out.exit_code == 2 and "--baseline" in out.output and len(out.output.strip().splitlines()) == 1, out.output
    assert committed.read_text() == '{"committed": true}'
    named = check("--baseline", committed, "--store", stores[0], "--update")
    assert named.exit_code == 0 and "committed" not in committed.read_text()


def test_the_gate_and_its_baseline_cover_every_shipped_variant():
    """`make gate` (.ci/run) evaluates every variant with shipped tiny weights, and the committed baseline has them all."""
    import re
    from pathlib import Path

    from models_zoo import VARIANTS
    from models_zoo.checkpoint import shipped_weights

    from click.testing import CliRunner

    from bench.cli import main

    root = Path(__file__).resolve().parent.parent
    makefile = (root / "Makefile").read_text()
    # both lists come from the registry, not from a copy of it
    assert re.search(r"^SHIPPED_MODELS = \$\$\(\$\(BIN\)/facebench models --names\)$", makefile, re.M)
    for name in ("GATE_MODELS", "LEADERBOARD_MODELS"):
        assert re.search(rf"^{name} \?= \$\(SHIPPED_MODELS\)$", makefile, re.M)
    out = CliRunner().invoke(main, ["models", "--names"])
    assert out.exit_code == 0, out.output
    shipped = {n for n in VARIANTS if shipped_weights(n, "tiny") is not None}
    assert set(out.output.split()) == shipped and len(out.output.split()) == len(shipped)
    baseline = json.loads((root / "leaderboards" / "baseline.json").read_text())
    assert {m["model"] for m in baseline["metrics"]} == shipped
    assert {m["suite"] for m in baseline["metrics"]} == {"quick"} and {m["n"] for m in baseline["metrics"]} == {100}
    assert "make gate" in (root / ".ci" / "run").read_text()


# --------------------------------------------------------------------------- a user model in CI (issue 20, item 4)

TINY_FR = '''
import torch
import torch.nn.functional as F
from torch import nn


class TinyEmbedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.head = nn.Linear(8 * 4 * 4, 16)

    def forward(self, x):
        return F.normalize(self.head(F.adaptive_avg_pool2d(torch.relu(self.conv(x - 0.5)), 4).flatten(1)), dim=1)


def build():
    return TinyEmbedder()
'''


def _run_user(cwd, store, *args):
    """`facebench run` of the tiny FR model from directory `cwd` (a CI checkout), into `store`."""
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        out = CliRunner().invoke(main, ["run", *map(str, args), "--task", "fr", "--samples", "4", "--store", str(store),
                                        "--attack-suite", str(cwd.parent / "fgsm.yaml"), "-q"])
    finally:
        os.chdir(old)
    assert out.exit_code == 0, (out.output, out.exception)
    return store


@pytest.fixture(scope="module")
def user_stores(tmp_path_factory):
    """One model file in two checkouts, run by a relative path from one and by an absolute path from the other;
    the same file with other weights; and runs under a name of their own."""
    import importlib.util

    import torch
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("usergate")
    for checkout in ("ci", "other"):
        (d / checkout / "mine").mkdir(parents=True)
        (d / checkout / "mine" / "tinyfr.py").write_text(TINY_FR)
        (d / checkout / "work").mkdir()
        (d / checkout / "fgsm.yaml").write_text("attacks:\n  - attack: fgsm\n    eps: [2/255, 8/255]\n")
    spec = importlib.util.spec_from_file_location("fbtest_gate_tinyfr", d / "ci" / "mine" / "tinyfr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(7)
    other = d / "other.safetensors"
    save_file(module.build().state_dict(), str(other))
    far = (d / "other" / "mine" / "tinyfr.py").resolve()
    return {
        "relative": _run_user(d / "ci" / "work", d / "relative.h5", "--model", "../mine/tinyfr.py:build"),
        "absolute": _run_user(d / "other" / "work", d / "absolute.h5", "--model", f"{far}:build"),
        "weights": _run_user(d / "other" / "work", d / "weights.h5", "--model", f"{far}:build", "--checkpoint", other),
        "named": _run_user(d / "other" / "work", d / "named.h5", "--model", f"{far}:build", "--name", "mine-fr"),
        "named-relative": _run_user(d / "ci" / "work", d / "named-relative.h5", "--model", "../mine/tinyfr.py:build",
                                    "--name", "mine-fr"),
    }


def test_a_user_model_given_by_another_path_is_the_same_model(user_stores, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", user_stores["relative"], "--update").exit_code == 0
    out = check("--baseline", baseline, "--store", user_stores["absolute"])
    assert out.exit_code == 0, out.output
    assert "6 metrics: 6 ok, 0 improved, 0 regressed, 0 missing" in out.output and "MISSING" not in out.output
    data = json.loads(baseline.read_text())
    assert data["schema"] == 2 and len(data["metrics"]) == 2 * 3  # dodging, impersonation: clean + 2 budgets
    run = ResultsStore(user_stores["relative"]).runs()[0]
    for m in data["metrics"]:
        assert m["model"] == "tinyfr:build" and m["profile"] == "user"
        assert m["sha256"] == run["checkpoint_sha256"] and m["factory"] == "../mine/tinyfr.py:build"


def test_a_user_model_with_other_weights_is_named_a_different_model(user_stores, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", user_stores["absolute"], "--update").exit_code == 0
    out = check("--baseline", baseline, "--store", user_stores["weights"], "--format", "github")
    assert out.exit_code == 1, out.output
    rows = [line for line in out.output.splitlines() if "tinyfr:build" in line and not line.startswith(("::", "OTHER"))]
    assert len(rows) == 6 and all(line.rstrip().endswith("OTHER MODEL") for line in rows)
    assert "MISSING" not in out.output and "REGRESSED" not in out.output
    theirs = ResultsStore(user_stores["weights"]).runs()[0]["checkpoint_sha256"]
    explained = [line for line in out.output.splitlines() if line.startswith("OTHER MODEL: ")]
    assert len(explained) == 1 and f"other weights (sha256 {theirs[:12]}" in explained[0]
    assert "a different model" in explained[0] and "--update" in explained[0]
    assert len([line for line in out.output.splitlines() if line.startswith("::error")]) == 6
    js = json.loads(check("--baseline", baseline, "--store", user_stores["weights"], "--format", "json").output)
    assert not js["passed"] and {c["status"] for c in js["comparisons"]} == {"OTHER MODEL"}
    assert {c["current_detail"]["sha256"] for c in js["comparisons"]} == {theirs}


def test_a_user_model_is_keyed_by_the_name_it_was_run_under(user_stores, tmp_path):
    run = ResultsStore(user_stores["named"]).runs()[0]
    assert run["model_name"] == "mine-fr" and json.loads(run["config"])["name"] == "mine-fr"
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", user_stores["named"], "--update").exit_code == 0
    assert {m["model"] for m in json.loads(baseline.read_text())["metrics"]} == {"mine-fr"}
    assert check("--baseline", baseline, "--store", user_stores["named-relative"]).exit_code == 0
    out = check("--baseline", baseline, "--store", user_stores["relative"])  # run without --name: tinyfr:build
    assert out.exit_code == 1 and len([line for line in out.output.splitlines() if "MISSING" in line]) == 6


def test_two_models_under_one_name_in_the_stores_are_refused(user_stores, tmp_path):
    baseline = tmp_path / "baseline.json"
    out = check("--baseline", baseline, "--store", user_stores["relative"], "--store", user_stores["weights"], "--update")
    assert out.exit_code == 2 and "two different models are named 'tinyfr:build'" in out.output
    assert "--name" in out.output and "Traceback" not in out.output and not baseline.exists()
    # the same weights from two paths are one model: the newest run counts once
    out = check("--baseline", baseline, "--store", user_stores["relative"], "--store", user_stores["absolute"], "--update")
    assert out.exit_code == 0, out.output
    assert len(json.loads(baseline.read_text())["metrics"]) == 6


def test_a_schema_1_baseline_still_matches_a_user_model_by_its_factory_string(user_stores, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", user_stores["relative"], "--update").exit_code == 0
    data = json.loads(baseline.read_text())
    data["schema"] = 1
    for m in data["metrics"]:  # as facebench wrote it before names: keyed by --model as given, no sha256
        m["model"] = m.pop("factory")
        del m["sha256"]
    baseline.write_text(json.dumps(data))
    out = check("--baseline", baseline, "--store", user_stores["relative"])
    assert out.exit_code == 0 and "6 metrics: 6 ok" in out.output and "not in the baseline" not in out.output, out.output


@pytest.mark.parametrize("args,needle", [
    (["--model", "facenet-baseline", "--name", "mine"], "--name mine names weights of your own of zoo variant"),
    (["--model", "facenet-baseline", "--checkpoint", "w.safetensors", "--name", "cdcn"], "is a zoo variant's name"),
    (["--model", "mine/tinyfr.py:build", "--task", "fr", "--name", "cdcn"], "is a zoo variant's name"),
    (["--model", "mine/tinyfr.py:build", "--task", "fr", "--name", "my model"], "must be one word without spaces"),
])
def test_bad_names_are_one_line_errors(tmp_path, args, needle):
    out = CliRunner().invoke(main, ["run", *args, "--store", str(tmp_path / "r.h5")])
    assert out.exit_code == 2 and needle in out.output and "Traceback" not in out.output, out.output
    assert len(out.output.strip().splitlines()) == 1 and not (tmp_path / "r.h5").exists()


def test_a_zoo_variants_own_weights_under_a_name_get_a_row_and_an_identity_of_their_own(tmp_path):
    """`--name` with `--checkpoint` on a zoo variant: the leaderboard shows the run beside the shipped weights' (it
    used to hide the older one), the gate identifies it by the name and its weights' sha256 (other weights under
    that name are OTHER MODEL), and `--if-needed` tells the two configurations apart."""
    import torch

    from bench.leaderboard.results import collect_runs, leaderboard_rows
    from models_zoo import get_variant
    from models_zoo.checkpoint import load_checkpoint, save_checkpoint, shipped_weights

    suite = tmp_path / "s.yaml"
    suite.write_text("attacks:\n  - attack: fgsm\n    eps: [1/255]\n")
    model = get_variant("depth-gan-spoof").build("tiny").eval()
    card = load_checkpoint(model, shipped_weights("depth-gan-spoof", "tiny"))
    card.pop("sha256"), card.pop("parameters")
    mine, other = tmp_path / "mine.safetensors", tmp_path / "other.safetensors"
    save_checkpoint(model, card, mine)
    with torch.no_grad():
        next(model.parameters()).mul_(1.001)  # other weights, the same card
    save_checkpoint(model, card, other)
    store, later = tmp_path / "r.h5", tmp_path / "later.h5"

    def run(path, **kw):
        return run_benchmark(RunConfig(model="depth-gan-spoof", suite=str(suite), samples=8, store=str(path),
                                       device="cpu", **kw), progress=False)

    run(store)
    run(store, checkpoint=str(mine), name="dgs-mine")
    assert run(store, checkpoint=str(mine), name="dgs-mine", if_needed=True).reused  # the same configuration
    shown = CliRunner().invoke(main, ["show", "--store", str(store)]).output
    assert "model depth-gan-spoof (tiny, named dgs-mine)" in shown, shown
    said = []
    assert len(collect_runs([store], log=said.append)) == 2 and not said  # one run each: nothing hidden
    rows = leaderboard_rows([ResultsStore(store)])[0]
    assert sorted({r["name"] for r in rows}) == ["depth-gan-spoof", "dgs-mine"]
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", store, "--update").exit_code == 0
    metrics = json.loads(baseline.read_text())["metrics"]
    by = {m["model"]: m for m in metrics}
    assert by["dgs-mine"]["sha256"] == ResultsStore(store).runs()[1]["checkpoint_sha256"]
    assert by["dgs-mine"]["factory"] == "depth-gan-spoof" and "sha256" not in by["depth-gan-spoof"]
    run(later)
    run(later, checkpoint=str(other), name="dgs-mine")
    out = check("--baseline", baseline, "--store", later)
    assert out.exit_code == 1 and "OTHER MODEL" in out.output, out.output
    assert all("OTHER MODEL" in line for line in out.output.splitlines() if line.startswith("dgs-mine "))
    assert not [line for line in out.output.splitlines() if line.startswith("depth-gan-spoof ") and "ok" not in line]
    said = []
    collect_runs([store, later], log=said.append)  # the newer run of other weights under dgs-mine hides the older
    assert len(said) == 1 and "dgs-mine (" in said[0] and "depth-gan-spoof (" not in said[0], said


def test_default_names_drop_the_directories_of_a_path():
    from models_zoo.factory import default_model_name, model_name

    assert default_model_name("../mine/tinyfr.py:build") == "tinyfr:build"
    assert default_model_name("/srv/ci/checkout/mine/tinyfr.py:build") == "tinyfr:build"
    assert default_model_name("mypkg.models:Zoo.build") == "mypkg.models:Zoo.build"
    # runs stored before names: derived the same way; zoo variants keep their registry names
    assert model_name({"model": "../mine/tinyfr.py:build", "source": "user"}) == "tinyfr:build"
    assert model_name({"model": "x.py:build", "source": "user", "model_name": "mine"}) == "mine"
    assert model_name({"model": "cdcn", "source": "zoo"}) == "cdcn"
    assert model_name({"model": "cdcn", "source": "zoo", "model_name": "cdcn-mine"}) == "cdcn-mine"


# --------------------------------------------------------------------------- unreliable cells (issue 20, item 4)

def test_metrics_of_unreliable_cells_are_marked_in_the_baseline_and_the_report(stores, tmp_path):
    both, _ = stores
    baseline = tmp_path / "baseline.json"
    assert check("--baseline", baseline, "--store", both, "--update").exit_code == 0
    marked = tmp_path / "marked.h5"
    shutil.copy(both, marked)
    reason = "test: flagged by hand"
    st = ResultsStore(marked)
    cells = [c for c in st.read_cells(arrays=False) if c.config["model"] == "depth-gan-spoof"]
    low = next(c for c in cells if abs(c.config["eps"] - 1 / 255) < 1e-9)
    st.flag_cell(low.cell_id, [reason])

    out = check("--baseline", baseline, "--store", marked)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].split()[-2:] == ["unreliable", "status"]
    assert reason in out.output and "marked unreliable" in out.output
    js = json.loads(check("--baseline", baseline, "--store", marked, "--format", "json").output)
    now = {c["metric"]: c["current_detail"]["unreliable"] for c in js["comparisons"] if c["model"] == "depth-gan-spoof"}
    assert reason in now["robust accuracy @ linf 1/255"]
    assert reason not in now["robust accuracy @ linf 2/255"] and reason not in now["clean accuracy"]

    assert check("--baseline", baseline, "--store", marked, "--update").exit_code == 0
    entries = {(m["model"], m["metric"]): m for m in json.loads(baseline.read_text())["metrics"]}
    assert reason in entries[("depth-gan-spoof", "robust accuracy @ linf 1/255")]["unreliable"]
    assert reason not in entries[("depth-gan-spoof", "robust accuracy @ linf 2/255")].get("unreliable", [])
    assert reason not in entries[("depth-gan-spoof", "clean accuracy")].get("unreliable", [])
    # a reason every cell of the goal carries (a run- or goal-level check) marks its clean accuracy too
    for c in cells:
        st.flag_cell(c.cell_id, [reason])
    js = json.loads(check("--baseline", baseline, "--store", marked, "--format", "json").output)
    clean = next(c for c in js["comparisons"] if c["model"] == "depth-gan-spoof" and c["metric"] == "clean accuracy")
    assert reason in clean["current_detail"]["unreliable"] and reason not in clean["baseline_detail"]["unreliable"]
    robust = next(c for c in js["comparisons"] if c["model"] == "depth-gan-spoof" and c["metric"].endswith("1/255"))
    assert reason in robust["current_detail"]["unreliable"] and reason in robust["baseline_detail"]["unreliable"]
