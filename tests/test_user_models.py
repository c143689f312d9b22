"""A user's own model (`--model module:function --task fr|fas`): end to end through the CLI, its errors,
and the worked example of docs/adding-a-model.md run exactly as the doc writes it."""
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from bench.cli import main
from bench.store import ResultsStore
from models_zoo.checkpoint import shipped_weights

ROOT = Path(__file__).resolve().parent.parent
MODULE = "fbtest_user_models"  # a name no other test imports, so sys.modules caching cannot mix files up

MODELS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class TinyEmbedder(nn.Module):
        def __init__(self, dim=16, normalise=True):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 5, stride=4)
            self.head = nn.Linear(8 * 4 * 4, dim)
            self.normalise = normalise

        def forward(self, x):
            e = self.head(F.adaptive_avg_pool2d(torch.relu(self.conv(x - 0.5)), 4).flatten(1))
            return F.normalize(e, dim=1) if self.normalise else e


    class TinyLiveness(nn.Module):
        def __init__(self, squeeze=True):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 5, stride=4)
            self.head = nn.Linear(4, 1)
            self.squeeze = squeeze

        def forward(self, x):
            logit = self.head(torch.relu(self.conv(x - 0.5)).mean((2, 3)))
            return logit.squeeze(1) if self.squeeze else logit


    def tiny_fr(dim: int = 16, **options):  # keyword arguments with defaults: facebench passes none
        return TinyEmbedder(dim)


    def tiny_fas():
        return TinyLiveness()


    def unnormalised():
        return TinyEmbedder(normalise=False)


    def feature_map():
        return nn.Conv2d(3, 4, 3)


    def column_logit():
        return TinyLiveness(squeeze=False)


    def not_a_module():
        return 42


    def raises():
        raise ValueError("no weights for you")


    def needs_width(width):
        return TinyEmbedder(width)


    def zoo_fr():
        from models_zoo import get_variant
        return get_variant("facenet-baseline").build("tiny")
''')


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("usermodels")
    (d / f"{MODULE}.py").write_text(MODELS)
    (d / "broken_syntax.py").write_text("def build(:\n")
    return d


@pytest.fixture
def in_models_dir(models_dir, monkeypatch):
    """Run from the directory that holds the user's module (imported from the current directory)."""
    monkeypatch.chdir(models_dir)
    return models_dir


def _user_module(models_dir: Path):
    """The test's model module, imported the way facebench imports it (from the directory that holds it)."""
    if MODULE not in sys.modules:
        sys.path.insert(0, str(models_dir))
        try:
            __import__(MODULE)
        finally:
            sys.path.remove(str(models_dir))
    return sys.modules[MODULE]


def _ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _one_line_error(result, needle):
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and needle in lines[0], result.output
    assert lines[0].startswith("facebench: error: ") and "Traceback" not in result.output


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_help_explains_user_models(runner):
    out = _ok(runner.invoke(main, ["run", "--help"]))
    for text in ("--task", "--input-size", "module:function", "path/to/file.py:function", "adding-a-model.md"):
        assert text in out, text


@pytest.fixture(scope="module")
def fr_run(models_dir, tmp_path_factory):
    """The untrained tiny FR model through `facebench run` with the quick suite on 4 pairs per goal."""
    import os

    store = tmp_path_factory.mktemp("frstore") / "r.h5"
    args = ["run", "--model", f"{MODULE}:tiny_fr", "--task", "fr", "--samples", "4", "--store", str(store), "-q"]
    old = os.getcwd()
    os.chdir(models_dir)
    try:
        first = CliRunner().invoke(main, args)
        again = CliRunner().invoke(main, args)
    finally:
        os.chdir(old)
    return store, first, again


def test_user_fr_model_end_to_end(fr_run, runner, tmp_path):
    store, first, again = fr_run
    out = _ok(first)
    assert "dodging" in out and "impersonation" in out and "14 cells computed, 0 reused" in out
    # factory weights are seeded, so the same command finds its cells again
    assert "0 cells computed, 14 reused" in _ok(again)

    st = ResultsStore(store)
    run = st.runs()[0]
    assert run["status"] == "complete" and run["model"] == f"{MODULE}:tiny_fr"
    assert run["source"] == "user" and run["task"] == "fr" and run["input_size"] == 64 and run["profile"] == "user"
    assert run["protocol"] == "synth-fr" and run["threshold_rule"] == "dev FAR=0.001"
    assert run["checkpoint"] == "none (factory weights)" and re.fullmatch(r"[0-9a-f]{64}", run["checkpoint_sha256"])
    assert json.loads(run["dev_metrics"])["threshold"] == pytest.approx(run["threshold"])
    assert f"--model {MODULE}:tiny_fr --task fr" in run["command"]
    cells = st.read_cells(run["cell_ids"])
    for c in cells:
        assert c.config["model"] == f"{MODULE}:tiny_fr" and c.config["task"] == "fr" and c.config["input_size"] == 64
        assert c.config["checkpoint_sha256"] == run["checkpoint_sha256"]
        a = c.arrays
        assert len(a["sample_id"]) == 4 and np.all(a["linf"][a["attacked"]] <= c.config["eps"] + 1e-5)
        accepted = a["adv_score"] >= float(c.attrs["threshold"])
        assert np.array_equal(a["success"], ~accepted if c.config["goal"] == "dodging" else accepted)

    shown = _ok(runner.invoke(main, ["show", "--store", str(store)]))
    assert f"model {MODULE}:tiny_fr (user model, fr, 64 px)" in shown and "checkpoint none (factory weights)" in shown
    assert f"{MODULE}:tiny_fr" in _ok(runner.invoke(main, ["show", "--all", "--store", str(store)]))
    _ok(runner.invoke(main, ["leaderboard", "--store", str(store), "--out", str(tmp_path / "lb")]))
    assert f"| `{MODULE}:tiny_fr` (user)" in (tmp_path / "lb" / "README.md").read_text()


def test_examples_rebuild_the_factory_weights_the_run_evaluated(fr_run, in_models_dir):
    """The leaderboard's example images rebuild a user model without --checkpoint seeded as the run was, so its
    factory weights are the run's, whatever the generators' state before (issue 20, item 2)."""
    from bench.leaderboard.examples import regenerate_examples
    from bench.leaderboard.results import budget_of, collect_runs

    rec = collect_runs([fr_run[0]])[0]
    assert rec.run["checkpoint"] == "none (factory weights)"
    cell = next(c for c in rec.cells if c.config["goal"] == "impersonation" and c.config["attack"] == "pgd")
    torch.manual_seed(12345)  # not the run's seed: a factory built without seeding gets other weights
    ex = regenerate_examples(rec, "impersonation", budget_of(cell.config), k=2)
    assert not ex.error, ex.error
    assert ex.clean.shape == ex.adv.shape and len(ex.clean) >= 1
    assert np.abs(ex.adv - ex.clean).max() <= cell.config["eps"] + 1e-5


def test_user_model_parameters_are_counted_by_the_run_and_shown_by_the_leaderboard(fr_run, models_dir, tmp_path):
    """The leaderboard never imports a user factory, so the run counts the loaded network's parameters."""
    from bench.leaderboard import write_leaderboard
    from bench.leaderboard.catalogue import fmt_params, model_info

    store, first, _ = fr_run
    _ok(first)
    run = ResultsStore(store).runs()[0]
    expected = sum(p.numel() for p in _user_module(models_dir).tiny_fr().parameters())
    assert expected > 0 and int(run["parameters"]) == expected
    assert model_info(run).params == expected
    write_leaderboard([store], tmp_path / "lb", fmt="md", examples=False)
    page = (tmp_path / "lb" / "fr-verification-synth-fr.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and f"{MODULE}:tiny_fr" in line]
    assert rows and all(f"| {fmt_params(expected)} |" in line for line in rows), page


def test_user_fas_model_end_to_end(in_models_dir, runner, store_path):
    out = _ok(runner.invoke(main, ["run", "--model", f"{MODULE}:tiny_fas", "--task", "fas", "--samples", "4",
                                   "--store", str(store_path), "-q"]))
    assert "spoof-to-live" in out and "8 cells computed" in out
    st = ResultsStore(store_path)
    run = st.run()
    assert run["model"] == f"{MODULE}:tiny_fas" and run["task"] == "fas" and run["protocol"] == "synth-oulu"
    assert run["threshold_rule"] == "dev EER" and run["status"] == "complete"
    for c in st.read_cells(run["cell_ids"]):
        assert c.config["goal"] == "spoof-to-live" and c.config["task"] == "fas"
        assert np.array_equal(c.arrays["success"], c.arrays["adv_score"] >= float(c.attrs["threshold"]))
    shown = _ok(runner.invoke(main, ["show", "--store", str(store_path)]))
    assert f"model {MODULE}:tiny_fas (user model, fas, 64 px)" in shown and "spoof-to-live" in shown


def test_checkpoint_is_loaded_and_its_sha256_stored(in_models_dir, runner, store_path, tmp_path):
    torch.manual_seed(123)
    weights = tmp_path / "tiny.safetensors"
    save_file(_user_module(in_models_dir).tiny_fr().state_dict(), str(weights))
    suite = tmp_path / "fgsm.yaml"
    suite.write_text("attacks:\n  - attack: fgsm\n    eps: [8/255]\n")
    base = ["run", "--model", f"{MODULE}:tiny_fr", "--task", "fr", "--samples", "4", "--attack-suite", str(suite),
            "--store", str(store_path), "-q"]
    _ok(runner.invoke(main, base + ["--checkpoint", str(weights)]))
    _ok(runner.invoke(main, base))  # the factory's own weights: other cells, not a reuse of the checkpoint's
    runs = ResultsStore(store_path).runs()  # two runs may start in the same second: find each by its checkpoint
    with_ckpt = next(r for r in runs if r["checkpoint"] != "none (factory weights)")
    factory = next(r for r in runs if r is not with_ckpt)
    assert with_ckpt["checkpoint"] == str(weights) and with_ckpt["checkpoint_sha256"] == _digest(weights)
    assert factory["checkpoint"] == "none (factory weights)" and factory["checkpoint_sha256"] != _digest(weights)
    assert not set(with_ckpt["cell_ids"]) & set(factory["cell_ids"])
    assert with_ckpt["threshold"] != factory["threshold"]  # the weights were really loaded


def test_zoo_weights_through_a_factory_match_the_zoo_run_but_not_its_cells(in_models_dir, runner, store_path, tmp_path):
    """The same network and weights as a user model and as the zoo variant: same numbers, distinct cell ids."""
    suite = tmp_path / "fgsm.yaml"
    suite.write_text("attacks:\n  - attack: fgsm\n    eps: [8/255]\n")
    common = ["--samples", "4", "--attack-suite", str(suite), "--store", str(store_path), "-q"]
    shipped = shipped_weights("facenet-baseline", "tiny")
    _ok(runner.invoke(main, ["run", "--model", f"{MODULE}:zoo_fr", "--task", "fr", "--checkpoint", str(shipped)] + common))
    out = _ok(runner.invoke(main, ["run", "--model", "facenet-baseline"] + common))
    assert "2 cells computed, 0 reused" in out
    st = ResultsStore(store_path)
    user, zoo = st.runs()
    assert user["checkpoint_sha256"] == zoo["checkpoint_sha256"]  # the sibling card's sha256 was checked too
    assert user["threshold"] == pytest.approx(zoo["threshold"], abs=1e-6) and user["card_reproduces"]
    assert not set(user["cell_ids"]) & set(zoo["cell_ids"])
    for u, z in zip(st.read_cells(user["cell_ids"]), st.read_cells(zoo["cell_ids"])):
        assert u.config["goal"] == z.config["goal"]
        for name in ("sample_id", "clean_score", "adv_score", "success"):
            np.testing.assert_array_equal(u.arrays[name], z.arrays[name])


ERRORS = [
    (["--model", "no_such_module_xyz:build", "--task", "fr"], "cannot import model factory 'no_such_module_xyz:build': No module named"),
    (["--model", "broken_syntax:build", "--task", "fr"], "cannot import model factory 'broken_syntax:build': SyntaxError"),
    (["--model", "missing_file.py:build", "--task", "fr"], "file missing_file.py does not exist"),
    (["--model", f"{MODULE}:nope", "--task", "fr"], f"module '{MODULE}' has no attribute 'nope'"),
    (["--model", f"{MODULE}:not_a_module", "--task", "fr"], "returned int, not a torch.nn.Module"),
    (["--model", f"{MODULE}:raises", "--task", "fr"], f"model factory '{MODULE}:raises' raised ValueError (at {MODULE}.py:"),
    (["--model", f"{MODULE}:needs_width", "--task", "fr"], "must be callable with no arguments, but it requires width"),
    (["--model", f"{MODULE}:feature_map", "--task", "fr"], "FR models must return embeddings of shape (N, D)"),
    (["--model", f"{MODULE}:unnormalised", "--task", "fr"], "FR models must return L2-normalised embeddings"),
    (["--model", f"{MODULE}:column_logit", "--task", "fas"], "returned shape (8, 1) for 8 images: end forward with .squeeze(1)"),
    (["--model", f"{MODULE}:tiny_fr", "--task", "fas"], "FAS models must return one liveness logit per image, shape (N,)"),
    (["--model", f"{MODULE}:tiny_fr"], "--task fr or --task fas is required for a user model"),
    (["--model", f"{MODULE}:tiny_fr", "--task", "fr", "--protocol", "synth-oulu"],
     f"protocol 'synth-oulu' is for fas models but '{MODULE}:tiny_fr' is a fr model (--task fr)"),
    (["--model", f"{MODULE}:tiny_fr", "--task", "fr", "--profile", "paper"], "--profile applies to zoo variants only"),
    (["--model", "facenet-baseline", "--task", "fas"], "--task fas disagrees with zoo variant 'facenet-baseline'"),
    (["--model", "mypkg.models"], "a model of your own is written module:function"),
    (["--model", f"{MODULE}.py", "--task", "fr"], f"--model {MODULE}.py names a Python file: add the function that "
                                                  f"builds your network, e.g. --model {MODULE}.py:build"),
    (["--model", "weights.pth", "--task", "fr"], "--model weights.pth looks like a weights file: --model names the "
                                                 "network"),
    (["--model", "dir/w.SAFETENSORS"], "--checkpoint dir/w.SAFETENSORS its weights"),
]


@pytest.mark.parametrize("args,needle", ERRORS, ids=[f"{i}-{a[1]}" for i, (a, _) in enumerate(ERRORS)])
def test_user_model_errors_are_one_line_and_leave_no_store(in_models_dir, runner, store_path, args, needle):
    _one_line_error(runner.invoke(main, ["run", *args, "--samples", "2", "--store", str(store_path)]), needle)
    assert not store_path.exists()


def test_checkpoint_errors(in_models_dir, runner, store_path, tmp_path):
    module = _user_module(in_models_dir)
    state = {k: v.clone() for k, v in module.tiny_fr().state_dict().items()}
    state["fc.weight"] = state.pop("head.weight")
    wrong = tmp_path / "wrong.safetensors"
    save_file(state, str(wrong))
    base = ["run", "--model", f"{MODULE}:tiny_fr", "--task", "fr", "--samples", "2", "--store", str(store_path)]
    _one_line_error(runner.invoke(main, base + ["--checkpoint", str(wrong)]),
                    "does not match the architecture: missing keys head.weight; unexpected keys fc.weight")
    state["head.weight"] = state.pop("fc.weight")[:, :5].contiguous()
    save_file(state, str(wrong))
    _one_line_error(runner.invoke(main, base + ["--checkpoint", str(wrong)]),
                    "shape mismatch head.weight (16, 5) in the checkpoint vs (16, 128) in the model")
    good = tmp_path / "good.safetensors"
    save_file(module.tiny_fr().state_dict(), str(good))
    good.with_suffix(".json").write_text(json.dumps({"sha256": "0" * 64}))
    _one_line_error(runner.invoke(main, base + ["--checkpoint", str(good)]), "but its card says 000000000000")
    _one_line_error(runner.invoke(main, base + ["--checkpoint", str(tmp_path / "absent.safetensors")]), "does not exist")
    assert not store_path.exists()


class _Touch:
    """Unpickling this writes a file: the proof that a checkpoint was (or was not) unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_torch_pickle_checkpoints_are_recognised_unpickled_and_converted_as_the_message_says(in_models_dir, runner,
                                                                                          store_path, tmp_path):
    """A torch.save checkpoint (zip or legacy pickle) is named as such with the conversion in one line, never
    unpickled (a pickle that would write a file on load writes nothing), and the suggested conversion works."""
    import pickle

    marker = tmp_path / "unpickled"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"weight": _Touch(marker)}, protocol=2))
    state = _user_module(in_models_dir).tiny_fr().state_dict()
    zipped = tmp_path / "zipped.pt"
    torch.save(state, zipped)
    legacy = tmp_path / "legacy.pth"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    user = ["run", "--model", f"{MODULE}:tiny_fr", "--task", "fr", "--samples", "2", "--store", str(store_path)]
    zoo = ["run", "--model", "facenet-baseline", "--samples", "2", "--store", str(store_path)]
    for base, path, kind in [(user, evil, "legacy pickle"), (user, zipped, "zip"), (user, legacy, "legacy pickle"),
                             (zoo, zipped, "zip"), (zoo, evil, "legacy pickle")]:
        result = runner.invoke(main, base + ["--checkpoint", str(path)])
        _one_line_error(result, f"checkpoint {path} is a PyTorch {kind} file (torch.save), not safetensors")
        assert "weights_only=True" in result.output and "save_file(" in result.output, result.output
    assert not marker.exists(), "facebench unpickled a checkpoint"
    assert not store_path.exists()
    command = re.search(r'python -c "([^"]+)"', runner.invoke(main, user + ["--checkpoint", str(zipped)]).output).group(1)
    subprocess.run([sys.executable, "-c", command], check=True, cwd=tmp_path)
    converted = zipped.with_suffix(".safetensors")
    _ok(runner.invoke(main, ["run", "--model", f"{MODULE}:tiny_fr", "--task", "fr", "--checkpoint", str(converted),
                             "--attack-suite", str(_fgsm_suite(tmp_path)), "--samples", "2", "--store", str(store_path),
                             "-q"]))
    assert ResultsStore(store_path).run()["checkpoint_sha256"] == _digest(converted)


def _fgsm_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "fgsm-one.yaml"
    suite.write_text("name: fgsm-one\ngoals: [dodging]\nattacks:\n  - {attack: fgsm, norm: linf, eps: 8/255}\n")
    return suite


def test_errors_leave_an_existing_store_unchanged(fr_run, in_models_dir, runner):
    store = fr_run[0]
    before = (_digest(store), store.stat().st_mtime_ns)
    for args, needle in [ERRORS[8], ERRORS[11], ERRORS[4]]:
        _one_line_error(runner.invoke(main, ["run", *args, "--samples", "2", "--store", str(store)]), needle)
    assert (_digest(store), store.stat().st_mtime_ns) == before


# --------------------------------------------------------------------------- the worked example of the doc

DOC = ROOT / "docs" / "adding-a-model.md"


def doc_commands(example: str) -> list[str]:
    """The lines of the bash block that follows `<!-- worked-example: <example> ...-->` in the doc."""
    text = DOC.read_text()
    match = re.search(rf"<!-- worked-example: {example}\b.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert match, f"no worked example {example!r} in {DOC}"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def doc_sample_output(command: str) -> str:
    """The untagged block that follows `<!-- sample-output: <command> -->` in the doc."""
    match = re.search(rf"<!-- sample-output: {re.escape(command)} -->\s*```\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no sample output of {command!r} in {DOC}"
    return match.group(1)


def _unstamped(text: str) -> list[str]:
    """Lines of `facebench show` output with what differs from run to run (run id, start and end times) blanked."""
    text = re.sub(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", "RUN", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}", "TIME", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_unstamped_keeps_what_a_run_decides():
    a = "run 20261122-074332-c6984e  status complete\nthreshold 0.9974  started 2026-11-22T07:43:32+0000\ngoal  checks\n"
    b = "run 20261205-215921-b7eea9  status complete\nthreshold 0.9974  started 2026-12-05T21:59:21+0000\ngoal  checks\n"
    assert _unstamped(a) == _unstamped(b)
    assert _unstamped(a) != _unstamped(b.replace("0.9974", "0.9975"))
    assert _unstamped(a) != _unstamped(a.replace("  checks", ""))


def _forget_examples():
    for name in [m for m in sys.modules if m == "examples" or m.startswith("examples.")]:
        del sys.modules[name]


def test_doc_shows_the_example_module_as_it_is():
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert block.strip() in (ROOT / "examples" / "my_fr_model.py").read_text()


def test_worked_examples_run_exactly_as_written(tmp_path, monkeypatch, runner):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # the doc runs from the repository root
    monkeypatch.chdir(tmp_path)
    _forget_examples()
    outputs = {}
    try:
        for example in ("fr", "fas"):
            for line in doc_commands(example):
                argv = shlex.split(line)
                if argv[0] == "python":
                    subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, check=True, timeout=300)
                else:
                    assert argv[0] == "facebench", line
                    outputs[line] = _ok(runner.invoke(main, argv[1:]))
    finally:
        _forget_examples()
    fr_cmd = next(c for c in doc_commands("fr") if c.startswith("facebench run"))
    assert "14 cells computed" in outputs[fr_cmd]
    shown, real = _unstamped(doc_sample_output("facebench show")), _unstamped(outputs["facebench show"])
    assert shown == real, ("docs/adding-a-model.md's sample output of `facebench show` is not what it prints now; "
                           f"make it this (run id and times aside):\n{outputs['facebench show']}")
    assert "model examples/my_fr_model.py:build (user model, fr, 64 px)" in outputs["facebench show"]
    fr, fas = ResultsStore(tmp_path / "results" / "facebench.h5").runs()
    assert fr["model"] == "examples/my_fr_model.py:build" and fr["checkpoint"] == "my_fr.safetensors"
    assert fr["checkpoint_sha256"] == _digest(tmp_path / "my_fr.safetensors") and fr["status"] == "complete"
    assert fas["model"] == "examples.my_fas_model:build" and fas["checkpoint"] == "none (factory weights)"
    assert fas["protocol"] == "synth-oulu" and fas["status"] == "complete"
    board = (tmp_path / "results" / "leaderboards" / "README.md").read_text()
    assert "`examples/my_fr_model.py:build` (user)" in board and "`examples.my_fas_model:build` (user)" in board
