"""Start-up (issue 20): `--help`, usage errors and the listings import none of the heavy libraries, checked in a fresh
interpreter (which modules are loaded, not how long it took: docs/performance.md has the timings, from
`python -m perf.startup`); what they print from bench/listings.json is what the registries themselves give."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "timm", "h5py", "matplotlib", "ray", "pandas", "foolbox", "art", "torchattacks",
         "safetensors", "scipy", "cv2")

# the command (after `facebench`), its exit status
LISTINGS = [["models"], ["models", "--names"], ["attacks"], ["suites"], ["suites", "--brief"], ["protocols"]]
ERRORS = [
    ["run", "--model", "mypkg.models:build"],  # a user model without --task
    ["run", "--model", "mypkg.models:build", "--task", "fr", "--profile", "tiny"],
    ["run", "--model", "nope"],
    ["run", "--model", "mypkg.models"],  # the hint: a model of your own is module:function
    ["run", "--model", "facenet-baseline", "--task", "fas"],
    ["run", "--model", "facenet-baseline", "--input-size", "32"],
    ["run", "--model", "facenet-baseline", "--input-size", "8"],
    ["run", "--model", "facenet-baseline", "--attack-suite", "nope"],
    ["run", "--model", "facenet-baseline", "--protocol", "nope"],
    ["run", "--model", "facenet-baseline", "--protocol", "synth-oulu"],
    ["run", "--model", "cdcn", "--protocol", "synth-fr"],
    ["run", "--model", "facenet-baseline", "--name", "mine"],  # --name is for models of your own
    ["run", "--model", "mypkg.models:build", "--task", "fr", "--name", "facenet-baseline"],
    ["run", "--model", "mypkg.models:build", "--task", "fr", "--name", "two words"],
    ["run", "--model", "facenet-baseline", "--samples", "0"],
    ["run", "--model", "facenet-baseline", "--shard-size", "0"],
    ["run", "--model", "facenet-baseline", "--address", "auto"],  # --address without --executor ray
]
COMMANDS = [(["--help"], 0), (["run", "--help"], 0), (["run"], 2), (["run", "--model", "facenet-baseline", "--device", "tpu"], 2)] \
    + [(c, 0) for c in LISTINGS] + [(c, 2) for c in ERRORS]

PROBE = """
import json, os, sys
from bench.cli import main
code = 0
try:
    main(sys.argv[1:], prog_name="facebench")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def fresh(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """`facebench ARGS` in a new interpreter: the process and {code, modules loaded at the end}."""
    out = tmp_path / "probe.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), PROBE_OUT=str(out))
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert out.exists(), proc.stderr
    return proc, json.loads(out.read_text())


@pytest.mark.parametrize("args,code", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_command_imports_no_heavy_library(args, code, tmp_path):
    proc, probe = fresh(args, tmp_path)
    assert probe["code"] == code, proc.stderr
    heavy = sorted({m.split(".")[0] for m in probe["modules"]} & set(HEAVY))
    assert not heavy, f"facebench {' '.join(args)} imported {heavy}"
    if code == 2:
        assert "Traceback" not in proc.stderr and proc.stderr.strip(), proc.stderr
    assert not list(tmp_path.glob("results*")), "a refused command created a store"


def _registries_loaded() -> None:
    """Import every registry here, so that this process's CLI reads them, not the file."""
    from bench.listings import REGISTRY_MODULES, registries_loaded

    for module in REGISTRY_MODULES:
        importlib.import_module(module)
    assert registries_loaded()


@pytest.mark.parametrize("args", LISTINGS + ERRORS, ids=[" ".join(c) for c in LISTINGS + ERRORS])
def test_fresh_output_is_the_registries_output(args, tmp_path):
    """The file's listings and refusals equal what this process prints from the registries themselves (the
    runner's own checks, for the refusals)."""
    from bench.cli import main

    _registries_loaded()
    proc, _ = fresh(args, tmp_path)
    live = CliRunner().invoke(main, args)
    if args[0] == "run":
        assert proc.stderr.strip() == live.output.strip() and live.exit_code == 2, (proc.stderr, live.output)
        assert len(live.output.strip().splitlines()) == 1
    else:
        assert proc.stdout == live.output and live.exit_code == 0


def test_listings_file_is_up_to_date():
    from bench.listings import LISTINGS_FILE, build, dumps

    assert LISTINGS_FILE.read_text() == dumps(build()), \
        f"{LISTINGS_FILE.name} differs from the registries: regenerate it with `python -m bench.listings`"


def test_listings_check_reports_a_stale_file(tmp_path, monkeypatch):
    import bench.listings as listings

    monkeypatch.setattr(listings, "LISTINGS_FILE", tmp_path / "listings.json")
    assert listings.main(["--check"]) == 1
    assert listings.main([]) == 0 and listings.main(["--check"]) == 0
    written = (tmp_path / "listings.json").stat().st_mtime_ns
    assert listings.main([]) == 0 and (tmp_path / "listings.json").stat().st_mtime_ns == written  # up to date: left as is
    data = json.loads((tmp_path / "listings.json").read_text())
    assert {e["name"] for e in data["models"]["entries"]} >= {"facenet-baseline", "cdcn"}


def test_training_writes_under_results_and_rewrites_the_listings_only_over_named_shipped_weights(tmp_path, monkeypatch):
    """`facebench train` (and `zoo build`) write under results/weights/ by default and leave the shipped weights and
    bench/listings.json alone; named shipped weights (`--out models_zoo/weights`) are overwritten and the listing,
    which quotes their cards, is rewritten (here a stale copy in tmp_path) and said so."""
    import bench.listings as listings
    import models_zoo.checkpoint as checkpoint
    import models_zoo.training as training
    from bench.cli import main

    shipped = tmp_path / "weights"
    shipped.mkdir()
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", shipped)
    monkeypatch.setattr(listings, "LISTINGS_FILE", tmp_path / "listings.json")
    monkeypatch.chdir(tmp_path)
    calls = []

    def fake_train(model, *, out, **_):
        calls.append(out)
        weights = out if out.suffix == ".safetensors" else out / f"{model}-tiny.safetensors"
        weights.parent.mkdir(parents=True, exist_ok=True)
        weights.write_bytes(b"")
        return weights, {"parameters": 1, "wall_time_s": 1.0,
                         "dev": {"dev_eer": 0.1, "dev_acer": 0.1, "threshold_rule": "dev EER", "threshold": 0.5}}

    monkeypatch.setattr(training, "train_variant", fake_train)
    listings.LISTINGS_FILE.write_text("stale\n")
    out = CliRunner().invoke(main, ["train", "--model", "cdcn", "-q"])
    assert out.exit_code == 0 and "listings" not in out.output, out.output
    assert calls[-1] == Path("results/weights") and (tmp_path / "results/weights/cdcn-tiny.safetensors").is_file()
    assert "evaluate with: facebench run --model cdcn --checkpoint results/weights/cdcn-tiny.safetensors" in out.output
    assert listings.LISTINGS_FILE.read_text() == "stale\n" and not any(shipped.iterdir())
    out = CliRunner().invoke(main, ["train", "--model", "cdcn", "--out", str(shipped), "-q"])
    assert out.exit_code == 0 and f"updated {listings.LISTINGS_FILE}" in out.output, out.output
    assert "evaluate with" not in out.output and (shipped / "cdcn-tiny.safetensors").is_file()
    assert listings.LISTINGS_FILE.read_text() == listings.dumps(listings.build())
    out = CliRunner().invoke(main, ["train", "--model", "cdcn", "--out", str(shipped), "-q"])  # up to date: not rewritten
    assert out.exit_code == 0 and "listings" not in out.output, out.output

    start = {"from": "results/weights/facenet-baseline-tiny.safetensors", "sha256": "0123456789ab" + "f" * 52}

    def fake_build(profile, names, *, out_dir, **_):
        return [(n, fake_train(n, out=out_dir)[0], {"task": "fr", "epochs": 1, "wall_time_s": 1.0, "training": {"init": start},
                                                   "dev": {"dev_tar": 0.9, "threshold_rule": "dev FAR=0.001",
                                                           "threshold": 0.5}}) for n in names]

    monkeypatch.setattr(training, "build_zoo", fake_build)
    listings.LISTINGS_FILE.write_text("stale\n")
    out = CliRunner().invoke(main, ["zoo", "build", "--only", "triplet-adv", "-q"])
    assert out.exit_code == 0 and calls[-1] == Path("results/weights") and "listings" not in out.output, out.output
    assert listings.LISTINGS_FILE.read_text() == "stale\n"
    # which baseline the fine-tuning started from (an earlier run's, in that folder, or the shipped one) is said
    assert "triplet-adv was fine-tuned from results/weights/facenet-baseline-tiny.safetensors (sha256 0123456789ab...)" \
        in out.output, out.output
