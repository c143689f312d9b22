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
