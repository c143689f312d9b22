"""The CLI through click's test runner: listings, errors, and a real run on the shipped tiny model."""
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.store import ResultsStore


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def _one_line_error(result, needle):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and needle in lines[0], result.output
    assert "Traceback" not in result.output


def test_version_and_help(runner):
    assert runner.invoke(main, ["--version"]).output.startswith("facebench, version")
    out = runner.invoke(main, ["run", "--help"]).output
    for opt in ["--model", "--attack-suite", "--protocol", "--samples", "--store", "--device", "--seed",
                "--checkpoint", "--profile", "--batch-size", "--quiet"]:
        assert opt in out, opt
    for cmd in ["run", "leaderboard", "check", "models", "attacks", "suites", "protocols", "show", "train"]:
        assert runner.invoke(main, [cmd, "--help"]).exit_code == 0


def test_listings(runner):
    assert "facenet-baseline" in runner.invoke(main, ["models"]).output
    out = runner.invoke(main, ["attacks"]).output
    assert "pgd" in out and "fgsm" in out
    assert "quick" in runner.invoke(main, ["suites"]).output
    assert "synth-fr" in runner.invoke(main, ["protocols"]).output


def test_a_suites_budgets_are_listed_once_each():
    from bench.config import format_eps
    from bench.suites import SUITES

    for name in SUITES:
        suite = SUITES.get(name)
        budgets = suite.budgets()
        assert len(budgets) == len(set(budgets)), name
        assert set(budgets) == {f"{e.norm} {format_eps(e.norm, v)}" for e in suite.entries for v in e.eps}, name
    standard = SUITES.get("standard").budgets()
    assert "linf 0.5/255" in standard and "linf 8/255" in standard and "l2 0.5" in standard


def test_unknown_model(runner, store_path):
    _one_line_error(runner.invoke(main, ["run", "--model", "nope", "--store", str(store_path)]), "unknown model 'nope'")
    assert not store_path.exists()


def test_unknown_suite(runner, store_path):
    r = runner.invoke(main, ["run", "--model", "facenet-baseline", "--attack-suite", "nope", "--store", str(store_path)])
    _one_line_error(r, "unknown attack suite 'nope'")
    assert not store_path.exists()


def test_store_in_missing_directory(runner):
    r = runner.invoke(main, ["run", "--model", "facenet-baseline", "--store", "/nonexistent/dir/x.h5"])
    _one_line_error(r, "/nonexistent/dir does not exist")


def test_bad_suite_yaml_budget(runner, store_path, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("attacks:\n  - attack: pgd\n    eps: [2]\n")
    r = runner.invoke(main, ["run", "--model", "facenet-baseline", "--attack-suite", str(suite), "--store", str(store_path)])
    _one_line_error(r, f"{suite}: entry #1 at line 2 (pgd): Linf budget 2 (510/255) is outside (0, 1]")
    suite.write_text("attacks:\n  - attack: pgd\n    eps: [2/255\n")  # the list is never closed
    r = runner.invoke(main, ["run", "--model", "facenet-baseline", "--attack-suite", str(suite), "--store", str(store_path)])
    _one_line_error(r, f"suite file {suite} is not valid YAML: line 4, column 1: expected ',' or ']'")
    assert not store_path.exists()


def test_run_show_leaderboard_end_to_end(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default store, results/facebench.h5, is created here
    store_path = tmp_path / "results" / "facebench.h5"
    suite = tmp_path / "small.yaml"
    suite.write_text(
        "name: small\nattacks:\n  - attack: fgsm\n    eps: [8/255]\n  - attack: pgd\n    params: {steps: 5}\n    eps: [2/255, 8/255]\n"
    )
    args = ["run", "--model", "facenet-baseline", "--attack-suite", str(suite), "--samples", "24", "-q"]
    r = runner.invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "dodging" in r.output and "impersonation" in r.output and "6 cells computed" in r.output

    st = ResultsStore(store_path)
    run = st.run()
    assert run["status"] == "complete" and len(run["cell_ids"]) == 6
    assert len(run["checkpoint_sha256"]) == 64 and run["threshold_rule"] == "dev FAR=0.001"
    assert run["card_reproduces"]  # the shipped card's dev threshold reproduces on load
    cells = st.read_cells(run["cell_ids"])
    for c in cells:
        a = c.arrays
        assert len(a["sample_id"]) == 24
        assert np.all(a["linf"][a["attacked"]] <= c.config["eps"] + 1e-5)
        assert not np.any(a["attacked"] & ~a["clean_correct"])
        # stored success agrees with the stored adversarial score at the stored threshold
        tau = float(c.attrs["threshold"])
        accepted = a["adv_score"] >= tau
        expect = ~accepted if c.config["goal"] == "dodging" else accepted
        assert np.array_equal(a["success"], expect)

    # the same command again reuses every cell
    r2 = runner.invoke(main, args)
    assert r2.exit_code == 0 and "0 cells computed, 6 reused" in r2.output

    r3 = runner.invoke(main, ["show", run["run_id"], "--store", str(store_path)])
    assert r3.exit_code == 0, r3.output
    assert run["run_id"] in r3.output and "pgd" in r3.output and "impersonation" in r3.output
    assert "integrity: model in eval mode;" in r3.output and "train mode" not in r3.output  # a zoo model is built in eval
    r3b = runner.invoke(main, ["show", "--all", "--store", str(store_path)])
    assert r3b.output.count("complete") == 2
    out_dir = tmp_path / "lb"
    r4 = runner.invoke(main, ["leaderboard", "--store", str(store_path), "--out", str(out_dir), "--no-examples"])
    assert r4.exit_code == 0, r4.output
    index = (out_dir / "README.md").read_text()
    assert "| `facenet-baseline` (tiny)" in index and "(fr-verification-synth-fr.md)" in index
    page = (out_dir / "fr-verification-synth-fr.md").read_text()
    newest = st.run()["run_id"]  # the second, identical run (every cell reused) is the one shown
    assert "| 1 | `facenet-baseline` (tiny) |" in page and "robust @ linf 8/255" in page and newest in page

    with h5py.File(store_path, "r") as f:  # a plain h5py reader sees the documented layout
        assert f.attrs["schema_version"] == 1
        assert set(f["cells"]) == set(run["cell_ids"])


def test_datasets_show_counts_and_sheet(runner, tmp_path):
    sheet = tmp_path / "sheet.png"
    r = runner.invoke(main, ["datasets", "show", "synth-casia", "--size", "32", "--sheet", str(sheet)])
    assert r.exit_code == 0, r.output
    assert "print-warped" in r.output and "replay-tablet" in r.output
    from PIL import Image

    img = Image.open(sheet)
    assert img.size[0] > 0 and img.size[1] > 0


def test_datasets_prepare_is_attached(runner):
    r = runner.invoke(main, ["datasets", "prepare", "--help"])
    assert r.exit_code == 0 and "--src" in r.output and "--out" in r.output


def test_datasets_build_writes_an_official_layout(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    r = runner.invoke(main, ["datasets", "build", "--only", "msu-mfsd", "--size", "32"])
    assert r.exit_code == 0, r.output
    root = next((tmp_path / "cache").glob("world-*/msu-mfsd"))
    assert (root / "train_sub_list.txt").exists() and (root / "scene01" / "real").is_dir()
    _one_line_error(runner.invoke(main, ["datasets", "build", "--only", "nope"]), "unknown stand-in dataset")


def test_quiet_run_prints_no_progress_bars(store_path, monkeypatch):
    """--quiet switches off every bar of the process, the world's rendering included."""
    from bench import progress
    from bench.data.synth import export

    monkeypatch.setattr(progress, "_enabled", True)
    assert not export._progress("lfw", 64, 10).disable
    result = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--attack-suite", "quick", "--samples", "4",
                                       "--store", str(store_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert export._progress("lfw", 64, 10).disable  # a bar made after --quiet is hidden


def test_datasets_prune_lists_then_removes_only_the_worlds_this_code_no_longer_reads(runner, tmp_path, monkeypatch):
    from bench.data.synth.export import world_dir

    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path))
    current, unrelated = world_dir(0, 64), tmp_path / "notes"
    old = tmp_path / "world-v1-seed0-64px-000000000000"
    for folder in (current / "lfw", old / "lfw", unrelated):
        folder.mkdir(parents=True)
    (old / "lfw" / "a.png").write_bytes(b"x" * 2_000_000)
    r = runner.invoke(main, ["datasets", "prune"])
    assert r.exit_code == 0 and r.output.splitlines() == [
        f"{old}  2 MB", "1 stale world folder, 2 MB; `facebench datasets prune --yes` removes them"], r.output
    assert old.is_dir()
    r = runner.invoke(main, ["datasets", "prune", "--yes"])
    assert r.exit_code == 0 and r.output.splitlines()[-1] == "removed 1 stale world folder, 2 MB", r.output
    assert not old.exists() and current.is_dir() and unrelated.is_dir()
    r = runner.invoke(main, ["datasets", "prune"])
    assert r.output.strip() == f"no stale world in {tmp_path}"
