"""The `facebench` command line."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import click
import numpy as np
from tabulate import tabulate

from bench import __version__
from bench.errors import FacebenchError
from bench.goals import PROFILES, TASKS
from bench.config import DEFAULT_STORE

STORE_HELP = f"HDF5 results store (created if missing; its directory must exist). Default: {DEFAULT_STORE}"
# A user's leaderboard goes beside the default store, under results/: never into a checkout's committed leaderboards/,
# which only an explicit --out writes (the Makefile's `leaderboard` target does).
LEADERBOARD_OUT = DEFAULT_STORE.parent / "leaderboards"
# Likewise trained weights: into results/weights/ unless --out names a place; the shipped models_zoo/weights/ (and the
# bench/listings.json that quotes their cards) are replaced only when named (`--out models_zoo/weights`).
TRAINED_OUT = DEFAULT_STORE.parent / "weights"


class FacebenchGroup(click.Group):
    """Turns every user-caused error into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FacebenchError as e:
            click.echo(f"facebench: error: {e}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during a run (bench.errors.Interrupted: says how to resume)
            click.echo(f"facebench: {str(e) or 'interrupted (completed cells are kept in the store)'}", err=True)
            ctx.exit(getattr(e, "exit_status", 130))


def _silence_bars(quiet: bool) -> None:
    """--quiet: no progress bars from any part of the process (rendering the world included)."""
    if quiet:
        from bench.progress import set_enabled

        set_enabled(False)


def _log(quiet: bool):
    """Log lines to stderr, each on a line of its own between the progress bars; none with --quiet."""
    if quiet:
        return lambda s: None
    from bench.progress import notice

    return notice


def _reliability(unreliable: bool, reason: str) -> str:
    """The checks column: `ok`, or `UNRELIABLE: <why>`."""
    return f"UNRELIABLE: {reason}" if unreliable else "ok"


def _attack_label(cell: dict) -> str:
    """The attack column: the cell kind's label (a transfer cell names its source model)."""
    from bench.cells import kind_of

    return kind_of(cell).stored_label(cell)


def _json_default(value):
    """numpy scalars and the like in JSON output."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _pct(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}"


def _asr(summary: dict) -> str:
    """The attack success rate with its 95 % interval; n/a alone where no sample was decided correctly clean (there
    was nothing to attack, so no interval either)."""
    if summary["asr"] != summary["asr"]:
        return "n/a"
    return f"{_pct(summary['asr'])} [{_pct(summary['asr_low'])}, {_pct(summary['asr_high'])}]"


@click.group(cls=FacebenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facebench")
def main() -> None:
    """facebench: adversarial robustness benchmark for face recognition and face anti-spoofing.

    Evaluate a zoo model against an attack suite (results go to an HDF5 store), then render
    leaderboards from the store. Every command works on the embedded face world when no
    dataset is named.
    """


@main.command()
@click.option("--model", "-m", required=True,
              help="Zoo variant to evaluate (see `facebench models`), or a model of your own as module:function, "
                   "path/to/file.py:function or path/to/model.onnx (needs --task; see docs/adding-a-model.md).")
@click.option("--task", type=click.Choice(list(TASKS)), default=None,
              help="fr (L2-normalised embeddings) or fas (liveness logit). Required for a model of your own.")
@click.option("--input-size", type=int, default=None,
              help="Image size in pixels of a run of a model of your own: images are rendered / read at it and attack "
                   "budgets live there; a network that takes another size is resized to it inside its forward "
                   "(--preprocess size=). Default: 64.")
@click.option("--preprocess", default=None, metavar="KEY=VALUE,...",
              help="What a model of your own expects of its input, applied inside its forward (attack budgets stay in "
                   "[0, 1] at --input-size): size=PX (its own input size; an ONNX graph's fixed size is read from it), "
                   "scale=1|255, mean=M or M1/M2/M3, std=S or S1/S2/S3 (the network sees (x * scale - mean) / std), "
                   "channels=RGB|BGR. Keys given here replace those of an ONNX model's sidecar (model.json beside "
                   "model.onnx). Default: none (the images as they are).")
@click.option("--name", default=None,
              help="A name for a model of your own, or for a zoo variant's weights of your own (with --checkpoint), "
                   "stored with the run: the leaderboard gives it its own row and `facebench check` identifies the "
                   "model by it and its weights' sha256 (docs/ci.md). Default: a zoo variant's name; for a model of "
                   "your own the factory's file stem or module and function, e.g. tinyfr:build for "
                   "path/to/tinyfr.py:build.")
@click.option("--attack-suite", "suite", default="quick", show_default=True,
              help="Attack suite name (see `facebench suites`) or a YAML file describing one.")
@click.option("--protocol", default=None,
              help="Evaluation protocol (see `facebench protocols`). Default: the zoo model's own; synth-fr or synth-oulu "
                   "for a model of your own. synth-fr-dev attacks pairs of synth-fr's dev identities: to compare checkpoints "
                   "without reading a test pair.")
@click.option("--samples", default=200, show_default=True, type=int,
              help="Evaluation items per goal (pairs for FR, frames for FAS), chosen deterministically from --seed.")
@click.option("--store", default=str(DEFAULT_STORE), show_default=True, help=STORE_HELP)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="Where to compute: auto picks CUDA when available.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of item sampling and random starts.")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
              help="Safetensors weights. A zoo variant's (with their .json card) replace the shipped ones; a model of "
                   "your own gets them loaded strictly (a .json card beside them is optional). Default: the shipped "
                   "weights, or your factory's own.")
@click.option("--profile", default=None, type=click.Choice(list(PROFILES)),
              help="Zoo model size profile: tiny (CPU) or paper (the published scale, GPU). Default: tiny.")
@click.option("--batch-size", default=None, type=int,
              help="Samples attacked at once. Default: automatic, 128 on CPU; on CUDA the largest that fits (from 1024, "
                   "halved on out-of-memory).")
@click.option("--eot", default=None, type=int,
              help="Expectation over transformation: average attack gradients over this many forward passes. "
                   "Default: 8 when two forward passes on the same batch disagree (a randomized model), else none; "
                   "1 = never.")
@click.option("--resume", is_flag=True,
              help="Continue the newest unfinished (crashed, killed or interrupted) run of this same configuration "
                   "in the store, under its run id. Without it, the same command run again also skips the cells "
                   "already stored, under a new run id.")
@click.option("--if-needed", is_flag=True,
              help="Do nothing (compute and record nothing) when a complete run of this same configuration in the store "
                   "already holds every cell; print its summary. For committed stores (make leaderboard).")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="Where cells are computed: in this process, or as Ray tasks (docs/scaling.md). Only this process "
                   "writes the store.")
@click.option("--address", default=None, metavar="auto|HOST:PORT",
              help="Ray cluster to join (with --executor ray). Default: start a local Ray on this machine.")
@click.option("--shard-size", default=None, type=int, metavar="N",
              help="Split every cell into shards of N samples (each a task of its own; merged into one cell). "
                   "Sharded cells draw their own random numbers, so they are stored apart from unsharded ones.")
@click.option("--cpus-per-cell", default=1.0, show_default=True, type=float, help="Ray: CPUs each cell or shard task asks for.")
@click.option("--gpus-per-cell", default=None, type=float,
              help="Ray: GPUs each task asks for. Default: 1 on a cluster with GPUs, else 0.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16"]),
              help="The attacks' forward pass: bf16 autocast speeds up GPUs; decisions stay fp32 (bench/precision.py).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="channels_last memory format for the model and images. Default: on for CUDA, off for CPU.")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model (slow to start; for long runs).")
@click.option("--budgets-together/--budgets-apart", default=None,
              help="Run the budgets of an attack that can (fgsm, bim, pgd, mim) as one batch, eps per sample: the same "
                   "per-sample decisions as one pass per budget, fewer and larger batches (a GPU's gain; slower on a "
                   "CPU). Local executor. Default: on for CUDA, off for CPU.")
@click.option("--fold-bn/--no-fold-bn", default=True, show_default=True,
              help="Attacks differentiate a copy of the model with each BatchNorm folded into the convolution before "
                   "it (the same function, faster steps); decisions use the model as loaded (bench/precision.py).")
@click.option("--flip-tta", is_flag=True,
              help="FR models: flip test-time augmentation, the embeddings of each image and of its mirror image "
                   "summed, then L2-normalised, inside every forward pass (calibration, decisions and the attacked "
                   "function). Part of each cell's configuration: never mixed with cells computed without it.")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable: progress and log events as JSON lines on stderr, the summary as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or log lines; only the summary table.")
def run(model: str, task: Optional[str], input_size: Optional[int], preprocess: Optional[str], name: Optional[str], suite: str, protocol: Optional[str], samples: int,
        store: str, device: str, seed: int, checkpoint: Optional[str], profile: Optional[str], batch_size: Optional[int],
        eot: Optional[int], resume: bool, if_needed: bool, executor: str, address: Optional[str], shard_size: Optional[int],
        cpus_per_cell: float, gpus_per_cell: Optional[float], precision: str, channels_last: Optional[bool],
        compile_model: bool, budgets_together: Optional[bool], fold_bn: bool, flip_tta: bool, as_json: bool,
        quiet: bool) -> None:
    """Evaluate MODEL against an attack suite and store every per-sample result.

    MODEL is a zoo variant, or your own model: `mypkg.models:build` or `path/to/file.py:build`, a function
    that takes no arguments and returns an nn.Module (FR: L2-normalised embeddings (N, D); FAS: a liveness
    logit (N,), higher = live), e.g. `facebench run --model mypkg.models:build --task fr --checkpoint w.safetensors`;
    or an ONNX file, `facebench run --model arcface.onnx --task fr --preprocess scale=255,mean=127.5,std=127.5`
    (converted with onnx2torch and checked against onnxruntime first; FR embeddings are L2-normalised for it).
    Its outputs are checked on a batch of the dev split before any attack.

    Cells already in the store under the same configuration are reused, not recomputed.
    Prints a summary table: clean and robust accuracy and attack success rate (95 % interval)
    per goal, attack and budget, and whether the integrity checks passed (else the cell is unreliable
    and the table says why).
    """
    from bench.listings import check_run
    from bench.runconfig import RunConfig

    command = "facebench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv and "facebench" in sys.argv[0] else ""
    if not command:  # called in-process (tests, notebooks): rebuild the command from the options given
        ctx = click.get_current_context()
        given = [p for p in ctx.command.params if isinstance(p, click.Option) and not p.is_flag
                 and ctx.get_parameter_source(p.name) != click.core.ParameterSource.DEFAULT]
        command = "facebench run " + " ".join(f"{p.opts[0]} {shlex.quote(str(ctx.params[p.name]))}" for p in given)
    cfg = RunConfig(model=model, suite=suite, protocol=protocol, samples=samples, seed=seed, device=device,
                    store=store, checkpoint=checkpoint, profile=profile, batch_size=batch_size, command=command,
                    task=task, input_size=input_size, name=name, preprocess=preprocess, eot=eot, shard_size=shard_size, executor=executor,
                    address=address, cpus_per_cell=cpus_per_cell, gpus_per_cell=gpus_per_cell, resume=resume,
                    precision=precision, channels_last=channels_last, compile=compile_model, fold_bn=fold_bn,
                    budgets_together=budgets_together, if_needed=if_needed, flip_tta=flip_tta)
    check_run(cfg)  # what the command line alone shows to be wrong, refused before torch is imported
    from bench.runner import run_benchmark
    from bench.config import format_eps

    _silence_bars(quiet or as_json)
    if as_json:
        log = (lambda s: None) if quiet else (lambda s: click.echo(json.dumps({"event": "log", "message": s}), err=True))
        outcome = run_benchmark(cfg, progress=False if quiet else "json", log=log)
        click.echo(json.dumps({"run_id": outcome.run_id, "store": str(outcome.store), "computed": outcome.computed,
                               "reused": outcome.reused, "cells": outcome.summaries}, default=_json_default))
        return
    outcome = run_benchmark(cfg, progress=not quiet, log=_log(quiet))
    rows = [
        [s["goal"], _attack_label(s), f"{s['norm']} {format_eps(s['norm'], s['eps'])}", _pct(s["clean_accuracy"]),
         _pct(s["robust_accuracy"]), _asr(s),
         s["n"], f"{s['seconds']:.1f}", _reliability(s["unreliable"], s["unreliable_reason"])]
        for s in outcome.summaries
    ]
    click.echo(tabulate(rows, headers=["goal", "attack", "budget", "clean acc %", "robust acc %", "ASR % [95% CI]", "n", "s",
                                       "checks"]))
    click.echo(f"run {outcome.run_id}: {outcome.computed} cells computed, {outcome.reused} reused -> {outcome.store}")


@main.command()
@click.option("--store", "stores", multiple=True, default=[str(DEFAULT_STORE)], show_default=True,
              help="Store(s) to read; repeat the option to merge several (the newest run of each model, profile, "
                   "protocol and suite wins).")
@click.option("--out", default=str(LEADERBOARD_OUT), show_default=True, type=click.Path(file_okay=False),
              help="Directory to write into (md: README.md, one page per task and protocol, plots/*.png; html: "
                   "leaderboard.html; csv, latex: one file per table). Files of the same names there are replaced: "
                   "name a directory of committed pages (a checkout's leaderboards/) only on purpose.")
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "html", "csv", "latex"]),
              help="md: GitHub markdown pages + PNG plots; html: one self-contained leaderboard.html (plots embedded); "
                   "csv: one file per table (raw values); latex: one booktabs table per file.")
@click.option("--no-examples", is_flag=True,
              help="Skip the grid of example adversarial images (it re-runs one attack on a few samples per model).")
@click.option("--quiet", "-q", is_flag=True, help="No log lines; only the summary line.")
def leaderboard(stores: tuple[str, ...], out: str, fmt: str, no_examples: bool, quiet: bool) -> None:
    """Render leaderboards from the newest complete run of each model: an index page, one page per task and
    protocol (FR verification / identification, FAS robustness), FAS cross-domain generalization, and plots.

    Every store is read and every file rendered before anything is written; a bad store is one line and
    exit status 2, with nothing written. See docs/leaderboards.md.
    """
    from bench.leaderboard import write_leaderboard

    _silence_bars(True)
    written = write_leaderboard([Path(s) for s in stores], Path(out), fmt=fmt, examples=not no_examples, log=_log(quiet))
    index = next((p for p in written if p.name in ("README.md", "leaderboard.html")), written[0] if written else Path(out))
    click.echo(f"wrote {index} ({len(written)} files in {out})")


@main.command()
@click.option("--baseline", default="leaderboards/baseline.json", show_default=True, type=click.Path(dir_okay=False),
              help="Baseline metrics file (JSON, written by --update).")
@click.option("--store", "stores", multiple=True, default=[str(DEFAULT_STORE)], show_default=True,
              help="Store(s) with the runs to check; repeat the option to merge several.")
@click.option("--tolerance", default=0.02, show_default=True, type=float,
              help="Allowed drop of a metric (a rate: 0.02 = 2 points). A metric fails only when it drops by more than "
                   "this AND falls below the baseline's 95 % interval.")
@click.option("--update", is_flag=True, help="Rewrite the baseline from the store's metrics (after an intended change); "
                                             "needs --baseline named explicitly, so a committed file is never rewritten by default.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "github", "json"]),
              help="table; github: the table plus ::error annotations a CI service shows inline; json.")
def check(baseline: str, stores: tuple[str, ...], tolerance: float, update: bool, fmt: str) -> None:
    """CI regression gate: compare each model's headline metrics in the store with the baseline.

    Headline metrics: clean accuracy and worst-case robust accuracy at each budget, per model,
    protocol, suite and goal (the newest complete run of each, as in the leaderboard). A model of your own
    is identified by its name (`run --name`) and its weights' sha256. Exits 1 when a metric regressed (worse
    by more than --tolerance and below the baseline's 95 % interval), when a baseline model has no run in the
    store, or when its run has other weights; 0 otherwise. Metrics from cells marked unreliable are marked.
    See docs/ci.md.
    """
    from bench import gate
    from bench.errors import BadInputError
    from bench.store import ResultsStore

    if update and click.get_current_context().get_parameter_source("baseline") is click.core.ParameterSource.DEFAULT:
        raise BadInputError("--update rewrites the baseline file: name it with --baseline (e.g. `--baseline "
                            "leaderboards/baseline.json`, as `make gate-update` does)")
    current = gate.store_metrics([ResultsStore(s) for s in stores])
    if update:
        if not current:
            raise FacebenchError(f"no complete runs in {', '.join(stores)}: nothing to write to the baseline")
        gate.write_baseline(Path(baseline), current, list(stores))
        models = sorted({m.model for m in current})
        click.echo(f"wrote {baseline}: {len(current)} metrics of {len(models)} models ({', '.join(models)})")
        return
    comparisons = gate.compare(gate.read_baseline(Path(baseline)), current, tolerance)
    bad = gate.failed(comparisons)
    new = gate.not_in_baseline(comparisons, current)
    if fmt == "json":
        click.echo(json.dumps(gate.json_report(comparisons, new, tolerance), indent=1))
    else:
        click.echo(tabulate(gate.table_rows(comparisons), headers=gate.TABLE_HEADERS))
        for line in gate.summary_lines(comparisons, new, tolerance):
            click.echo(line)
        if fmt == "github":
            for line in gate.github_annotations(comparisons, tolerance, baseline):
                click.echo(line)
    if bad:
        sys.exit(1)


def _millions(n: Optional[int]) -> str:
    return "-" if n is None else f"{n / 1e6:.3g}M"


@main.command()
@click.option("--names", is_flag=True,
              help="Print only the names of the variants whose tiny weights ship, one per line (for scripts; the "
                   "Makefile's gate and leaderboard lists come from it).")
def models(names: bool) -> None:
    """List the zoo's variants: task, parameters per profile, shipped weights and their dev metrics; an external
    entry (weights read from an installed package, not trained by facebench): where its weights come from and
    whether they are installed."""
    from bench.external import status
    from bench.listings import current

    variants = current()["models"]["entries"]  # the registry's data, without importing torch (bench/listings.py)
    if names:
        for spec in variants:
            if "tiny" in spec["shipped"]:
                click.echo(spec["name"])
        return
    rows = []
    for spec in variants:
        params = spec["parameters"]
        if spec.get("external"):
            ext = spec["external"]
            shipped = f"external: {ext['distribution']} {ext['version']} ({status(ext)})"
        elif "tiny" in spec["shipped"]:
            dev = spec["shipped"]["tiny"]
            if "dev_tar" in dev:
                shipped = f"tiny: TAR {_pct(dev['dev_tar'])} % @ {dev.get('threshold_rule', '?')}"
            else:
                shipped = f"tiny: EER {_pct(dev.get('dev_eer', float('nan')))} % @ {dev.get('threshold_rule', '?')}"
        else:
            shipped = "not shipped"
        rows.append([spec["name"], spec["task"], _millions(params["tiny"]), _millions(params["paper"]), shipped,
                     spec["description"]])
    click.echo(tabulate(rows, headers=["model", "task", "params tiny", "params paper", "shipped weights (dev)", "description"]))


@main.command()
def attacks() -> None:
    """List the registered attacks with their backend, norms and parameters."""
    from bench.listings import current

    rows = [[a["name"], a["backend"], ",".join(a["norms"]), a["parameters"] or "-", a["description"]]
            for a in current()["attacks"]["entries"]]
    click.echo(tabulate(rows, headers=["attack", "backend", "norms", "parameters", "description"]))


@main.command()
@click.option("--brief", is_flag=True, help="One line per suite instead of its grid.")
def suites(brief: bool) -> None:
    """List the built-in attack suites and their grids (a YAML file can be passed to `run --attack-suite` too).

    Each entry is an attack, a worst-case cascade (stages in order, each on the samples still unbroken)
    or a transfer row (crafted on other zoo models, scored on the model under test), at its budgets, for
    the goals it names (`all`: every goal of the run). The built-in suites use the face budgets: Linf
    0.5, 1, 2 and 4/255 for evasion goals, 2, 4 and 8/255 for targeted ones (docs/leaderboards.md).
    """
    from bench.listings import current

    listed = current()["suites"]["entries"]
    if brief:
        rows = [[s["name"], len(s["entries"]), ", ".join(s["budgets"]), s["description"]] for s in listed]
        click.echo(tabulate(rows, headers=["suite", "entries", "budgets", "description"]))
        return
    for i, s in enumerate(listed):
        click.echo(("\n" if i else "") + f"{s['name']}: {s['description']}")
        rows = [[e["kind"], e["label"], e["norm"], ", ".join(e["budgets"]),
                 e["goals"] if isinstance(e["goals"], str) else ", ".join(e["goals"])] for e in s["entries"]]
        click.echo(tabulate(rows, headers=["kind", "attack", "norm", "budgets", "goals"]))


@main.group()
def datasets() -> None:
    """The embedded face world and real datasets: inspect, render ahead of time, prepare videos."""


@datasets.command("build")
@click.option("--size", default=64, show_default=True, type=int, help="Image size in pixels.")
@click.option("--seed", default=0, show_default=True, type=int, help="World seed.")
@click.option("--only", multiple=True, help="Build only these stand-ins (repeatable): celeba, lfw, oulu-npu, casia-fasd, replay-attack, msu-mfsd.")
def datasets_build(size: int, seed: int, only: tuple[str, ...]) -> None:
    """Render the embedded face world ahead of time into its cache ($FACEBENCH_CACHE or ~/.cache/facebench).

    Every stand-in dataset is written in the official layout of the real dataset it replaces, so that
    later runs only read it back through the real loaders. Already-built parts are kept. CelebA and
    the FAS stand-ins are rendered by $FACEBENCH_RENDER_JOBS processes (default: the cores this
    process may use, at most 8).
    """
    from bench.data.synth.export import WRITERS, ensure

    names = list(only) or list(WRITERS)
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        raise FacebenchError(f"unknown stand-in dataset {unknown[0]!r} (known: {', '.join(WRITERS)})")
    for name in names:
        click.echo(f"{name}: {ensure(name, size=size, seed=seed)}")


@datasets.command("prune")
@click.option("--yes", is_flag=True, help="Remove them. Without it, only list them and their size.")
def datasets_prune(yes: bool) -> None:
    """List, and with --yes remove, the cached worlds this version of facebench no longer reads.

    A change of the rendering code, the layouts or the world version starts a new world folder in the cache
    ($FACEBENCH_CACHE or ~/.cache/facebench, about 300 MB at 64 px) and leaves the old one behind. A checkout of
    another version sharing the cache renders its world again when it next needs it; nothing else is touched.
    """
    import shutil

    from bench.data.synth.cache import stale_worlds
    from bench.data.synth.export import cache_root

    stale = stale_worlds()
    sizes = [sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) for path in stale]
    for path, size in zip(stale, sizes):
        click.echo(f"{path}  {size / 1e6:.0f} MB")
    if not stale:
        click.echo(f"no stale world in {cache_root()}")
        return
    total = f"{len(stale)} stale world folder{'s' if len(stale) > 1 else ''}, {sum(sizes) / 1e6:.0f} MB"
    if not yes:
        click.echo(f"{total}; `facebench datasets prune --yes` removes them")
        return
    for path in stale:
        shutil.rmtree(path)
    click.echo(f"removed {total}")


@datasets.command("show")
@click.argument("protocol")
@click.option("--size", default=64, show_default=True, type=int, help="Image size in pixels.")
@click.option("--sheet", default=None, type=click.Path(dir_okay=False),
              help="Where to write the PNG contact sheet. Default: results/<protocol>-samples.png")
def datasets_show(protocol: str, size: int, sheet: Optional[str]) -> None:
    """Print the counts per split of PROTOCOL and write a PNG contact sheet of samples.

    For FR protocols the sheet shows several faces of a few training identities; for the k-fold verification
    protocols (lfw, bin:PATH), which have no training split, the pairs per fold and a few genuine and impostor
    pairs; for anti-spoofing protocols it shows live frames and each spoof sub-type, each beside its depth label.
    """
    from bench.protocols import FRProtocol, get_protocol
    from bench.protocols.contact import contact_sheet
    from bench.protocols.kfold import KFoldProtocol

    proto = get_protocol(protocol)
    rows = []
    if isinstance(proto, KFoldProtocol):
        pairs = proto.pair_folds()
        genuine = np.asarray(pairs.genuine, dtype=bool)
        for fold in np.unique(pairs.folds):
            in_fold = pairs.folds == fold
            rows.append([f"fold {fold}", int((in_fold & genuine).sum()), int((in_fold & ~genuine).sum())])
        rows.append(["all", int(genuine.sum()), int((~genuine).sum())])
        headers = ["fold", "genuine pairs", "impostor pairs"]
    elif isinstance(proto, FRProtocol):
        for split, faces in (("train", proto.train_set(size)), ("dev", proto.dev_set(size))):
            rows.append([split, len(faces), len(np.unique(faces.identities)), "-"])
        for kind in ("genuine", "impostor"):
            pairs = proto.test_pairs(kind, None, 0, size)
            rows.append([f"test {kind} pairs", len(pairs), "-", "-"])
        headers = ["split", "images / pairs", "identities", "-"]
    else:
        for split in ("train", "dev", "test"):
            f = proto.frames(split, size)
            kinds = ", ".join(f"{k}: {int((f.subtype == k).sum())}" for k in sorted(set(f.subtype)))
            rows.append([split, len(f), len(np.unique(f.subjects)), len(np.unique(f.video_ids)), kinds])
        headers = ["split", "frames", "subjects", "videos", "frames per kind"]
    click.echo(tabulate(rows, headers=headers))
    path = contact_sheet(proto, size, Path(sheet) if sheet else Path("results") / f"{protocol.replace('>', '')}-samples.png")
    click.echo(f"wrote {path}")


@main.command()
def protocols() -> None:
    """List the evaluation protocols with their task, splits and threshold rule."""
    from bench.listings import current

    rows = []
    for p in current()["protocols"]["entries"]:
        splits = "; ".join(f"{k}: {v}" for k, v in p["splits"].items())
        if p["frames_per_video"] is not None:  # an anti-spoofing protocol
            items = f"{p['frames_per_video']} frames/video; score higher = live"
        else:
            items = "pairs; cosine higher = same identity"
        rows.append([p["name"], p["task"], p["description"], splits, p["threshold_rule"], items])
    click.echo(tabulate(rows, headers=["protocol", "task", "description", "splits", "threshold", "items, polarity"]))


@main.command()
@click.argument("run_id", required=False)
@click.option("--store", default=str(DEFAULT_STORE), show_default=True, help=STORE_HELP)
@click.option("--all", "list_all", is_flag=True, help="List every run in the store instead of one run's cells.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def show(run_id: Optional[str], store: str, list_all: bool, as_json: bool) -> None:
    """Show a stored run (default: the newest): its provenance and the summary of each cell."""
    from bench.config import format_eps
    from bench.runconfig import stored_config
    from bench.store import ResultsStore

    st = ResultsStore(store)
    if list_all:
        runs = st.runs()
        if as_json:
            click.echo(json.dumps(runs, indent=2, default=str))
            return
        click.echo(tabulate([[r["run_id"], r["model"], r["protocol"], r["suite"], r["status"], len(r["cell_ids"]), r.get("started", "")]
                             for r in runs], headers=["run", "model", "protocol", "suite", "status", "cells", "started"]))
        return
    meta = st.run(run_id)
    cells = st.read_cells(meta["cell_ids"], arrays=False)
    if as_json:
        click.echo(json.dumps({"run": meta, "cells": [{"cell_id": c.cell_id, **c.config, **c.summary, "unreliable": c.unreliable,
                                                       "unreliable_reason": c.unreliable_reason} for c in cells]},
                              indent=2, default=str))
        return
    kind = (f"user model, {meta.get('task')}, {meta.get('input_size')} px" if meta.get("source") == "user"
            else meta.get("profile"))
    named = stored_config(meta).get("name")  # the run's --name (a model of your own, or a zoo variant's weights)
    kind = f"{kind}, named {named}" if named else kind
    click.echo(f"run {meta['run_id']}  status {meta['status']}  model {meta['model']} ({kind})  "
               f"protocol {meta['protocol']}  suite {meta['suite']}")
    click.echo(f"checkpoint {meta['checkpoint']} sha256 {meta['checkpoint_sha256'][:16]}  device {meta['device']}  seed {meta['seed']}")
    click.echo(f"threshold {float(meta['threshold']):.4f} ({meta['threshold_rule']})  started {meta.get('started')}  ended {meta.get('ended', '-')}")
    if meta.get("integrity"):
        integrity = json.loads(meta["integrity"]) if isinstance(meta["integrity"], str) else meta["integrity"]
        eot = ", ".join(f"{g} EOT x{v['eot']}" for g, v in integrity.items() if int(v.get("eot", 1)) > 1)
        click.echo(f"integrity: model {meta.get('eval_mode', '?')}; card {meta.get('card_check', '?')}"
                   f"{'; ' + eot if eot else ''}; {meta.get('cells_unreliable', 0)} unreliable cells")
    rows = [[c.config["goal"], _attack_label(c.config), f"{c.config['norm']} {format_eps(c.config['norm'], c.config['eps'])}",
             _pct(c.summary["clean_accuracy"]), _pct(c.summary["robust_accuracy"]),
             _asr(c.summary), c.summary["n"], c.cell_id,
             _reliability(c.unreliable, c.unreliable_reason)]
            for c in cells]
    click.echo(tabulate(rows, headers=["goal", "attack", "budget", "clean acc %", "robust acc %", "ASR % [95% CI]", "n", "cell",
                                       "checks"]))


@main.group("store")
def store_group() -> None:
    """The results store itself: check that it is sound."""


@store_group.command("verify")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--store", default=str(DEFAULT_STORE), show_default=True,
              help="HDF5 results store to check (the same as giving it as PATH).")
def store_verify(path: Optional[str], store: str) -> None:
    """Check a store without changing it: its schema; every cell (all per-sample arrays present, of equal lengths,
    a summary, an id equal to the hash of its configuration); every run's cell list; runs left `running` by a
    writer that is gone; leftovers of killed writers. Prints what the store holds.

    The store is PATH, or --store, or the default store (`facebench store verify results/gate.h5`).

    Exit status 0 when the store is sound (warnings allowed), 1 when it is not (each problem is listed), 2 when
    there is nothing to verify (no such file) or the store is of a newer schema.
    """
    from bench.errors import BadInputError
    from bench.store import ResultsStore

    if path is not None:
        given = click.get_current_context().get_parameter_source("store") is not click.core.ParameterSource.DEFAULT
        if given and Path(store) != Path(path):
            raise BadInputError(f"two stores to verify: {path} and --store {store} (give one)")
        store = path
    rep = ResultsStore(store).verify()
    if rep.schema:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(rep.runs_by_status.items())) or "none"
        click.echo(f"store {rep.path}: schema {rep.schema}; {sum(rep.runs_by_status.values())} runs ({statuses}); "
                   f"{rep.cells} cells; {rep.samples} samples")
        if rep.cells_by_kind:
            rows = [[m, g, a, c, n] for (m, g, a), (c, n) in sorted(rep.cells_by_kind.items())]
            click.echo(tabulate(rows, headers=["model", "goal", "attack", "cells", "samples"]))
    for line in rep.notes:
        click.echo(f"note: {line}")
    for line in rep.warnings:
        click.echo(f"warning: {line}")
    for line in rep.problems:
        click.echo(f"problem: {line}")
    if rep.sound:
        click.echo(f"store {rep.path} is sound" + (f" ({len(rep.warnings)} warnings)" if rep.warnings else ""))
    else:
        click.echo(f"store {rep.path} is NOT sound: {len(rep.problems)} problem(s)")
        click.get_current_context().exit(1)


@main.command("export")
@click.option("--store", default=str(DEFAULT_STORE), show_default=True, help="HDF5 results store to read.")
@click.option("--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "parquet", "json"]),
              help="csv, parquet (pyarrow) or json (JSON Lines, .jsonl; infinities and NaN become null).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write the tables into (created).")
@click.option("--run", "run_id", default=None,
              help="Only this run's cells (id or unique prefix), and the best_known rows of its samples. Default: every cell.")
def export(store: str, fmt: str, out: str, run_id: Optional[str]) -> None:
    """Export the store as tables for pandas and friends: samples (one row per cell x sample, with the cell's
    identifying columns and every per-sample array), summary (one row per cell), runs (one row per run) and
    best_known (one row per sample and norm: the smallest perturbation at which any stored attack of any run
    broke the sample, per checkpoint, protocol, goal and threshold; derived from every cell, even with --run).

    In Python, `bench.tables.open_results(path)` gives the same tables as DataFrames.
    """
    from bench.tables import open_results
    from bench.tables import write_tables

    results = open_results(store, run=run_id)
    for path in write_tables(results, Path(out), fmt):
        rows = {"samples": results.samples, "summary": results.summary, "runs": results.runs,
                "best_known": results.best_known}[path.stem]
        click.echo(f"wrote {path} ({len(rows)} rows)")


class Epochs(click.FloatRange):
    """A positive number of training epochs (or zero, with `zero`), a fraction allowed; a whole number comes back
    as an int (`epochs_value`)."""

    name = "number"

    def __init__(self, zero: bool = False) -> None:
        super().__init__(min=0, min_open=not zero)

    def get_metavar(self, param, ctx=None):
        return "EPOCHS"

    def convert(self, value, param, ctx):
        from bench.config import epochs_value

        return epochs_value(super().convert(value, param, ctx))


@main.command()
@click.option("--model", "-m", required=True, help="Zoo variant to train (see `facebench models`).")
@click.option("--profile", default="tiny", show_default=True, type=click.Choice(list(PROFILES)), help="Model size profile.")
@click.option("--protocol", default=None, help="Protocol whose train split to use. Default: the model's own.")
@click.option("--epochs", default=60, show_default=True, type=Epochs(),
              help="Training epochs; a fraction runs part of the last one (0.5: half the steps of one epoch).")
@click.option("--out", default=str(TRAINED_OUT), show_default=True, type=click.Path(),
              help="Output .safetensors path or directory (created). The shipped weights are replaced only when their "
                   "folder is named: --out models_zoo/weights (bench/listings.json is then rewritten too).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train.")
@click.option("--seed", default=0, show_default=True, type=int, help="Training seed.")
@click.option("--pretrain", default=None, type=click.Choice(["none", "l1", "gan"]),
              help="Pre-training stage of recipes that have one (depth-gan-spoof: none = from scratch, "
              "l1 = pseudo-depth L1 only, gan = L1 + adversarial). Default: the recipe's own.")
@click.option("--label-fraction", default=None, type=click.FloatRange(0.0, 1.0),
              help="Fraction of identities labelled in pre-training, for recipes that have it "
              "(contrastive-triplet-semi, default 0.1). Default: the recipe's own.")
@click.option("--init", default=None, metavar="VARIANT|PATH|none",
              help="Weights to start from, for recipes that fine-tune (triplet-adv: default facenet-baseline's shipped "
              "weights; a .safetensors path; none = random weights). contrastive-triplet[-semi]: the .safetensors of "
              "a --finetune-epochs 0 run of the same recipe and seed; stages 1 and 2a are loaded from it, not trained.")
@click.option("--pretrain-epochs", default=None, type=Epochs(),
              help="Epochs of the pre-training stage, for recipes that have one (contrastive-triplet[-semi], "
              "depth-gan-spoof: whole epochs). Default: the recipe's split of --epochs.")
@click.option("--warmup-epochs", default=None, type=Epochs(zero=True),
              help="Epochs of the clean triplet warm-up (contrastive-triplet[-semi]). Default: the recipe's split of --epochs.")
@click.option("--finetune-epochs", default=None, type=Epochs(zero=True),
              help="Epochs of the adversarial fine-tuning (contrastive-triplet[-semi]); 0 stops after the warm-up (a "
              "start for --init). Default: the recipe's split of --epochs.")
@click.option("--attack-steps", default=None, type=int,
              help="PGD steps of the training-time attack, for adversarial recipes (triplet-adv, "
              "contrastive-triplet[-semi]: 3 at the tiny profile, 7 at paper). Default: the recipe's own.")
@click.option("--force", is_flag=True, help="Train the paper profile even without a CUDA device.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(model: str, profile: str, protocol: Optional[str], epochs: float, out: str, device: str, seed: int,
          pretrain: Optional[str], label_fraction: Optional[float], init: Optional[str], pretrain_epochs: Optional[float],
          warmup_epochs: Optional[float], finetune_epochs: Optional[float], attack_steps: Optional[int], force: bool,
          quiet: bool) -> None:
    """Train a zoo variant; writes safetensors weights and a JSON model card (under results/weights/ unless --out
    names a place; `facebench run --model M --checkpoint W` evaluates them).

    A recipe's options (--pretrain, --label-fraction, --init, the stage epochs, --attack-steps) are refused by a
    variant whose recipe does not take them. With every stage's epochs given, --epochs is only recorded in the card
    (give their sum)."""
    from bench.config import resolve_device
    from models_zoo.training import train_variant

    _silence_bars(quiet)
    command = "facebench train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else f"facebench train --model {model}"
    given = {"pretrain": pretrain, "label_fraction": label_fraction, "init": init, "pretrain_epochs": pretrain_epochs,
             "warmup_epochs": warmup_epochs, "finetune_epochs": finetune_epochs, "attack_steps": attack_steps}
    options = {key: value for key, value in given.items() if value is not None}
    weights, card = train_variant(model, profile=profile, protocol=protocol, epochs=epochs, out=Path(out),
                                  device=resolve_device(device), seed=seed, progress=not quiet, command=command, options=options,
                                  force=force)
    click.echo(f"wrote {weights} ({card['parameters']} parameters, {card['wall_time_s']} s); {_dev_summary(card['dev'])}")
    _after_training([(model, weights, card)])


def _dev_summary(dev: dict) -> str:
    """One line of a card's dev metrics: TAR at the FAR threshold (FR) or EER / ACER at the EER threshold (FAS)."""
    if "dev_tar" in dev:
        return f"dev TAR {_pct(dev['dev_tar'])} % at {dev['threshold_rule']} (threshold {dev['threshold']:.4f})"
    return (f"dev EER {_pct(dev['dev_eer'])} %, ACER {_pct(dev['dev_acer'])} % at {dev['threshold_rule']} "
            f"(threshold {dev['threshold']:.4f})")


@main.group()
def zoo() -> None:
    """The model zoo as a whole: train every variant with its shipped schedule."""


@zoo.command("build")
@click.option("--profile", default="tiny", show_default=True, type=click.Choice(list(PROFILES)), help="Model size profile.")
@click.option("--only", "only", multiple=True, help="Train only this variant (repeatable). Default: every variant with a recipe.")
@click.option("--out", default=str(TRAINED_OUT), show_default=True, type=click.Path(file_okay=False),
              help="Directory for the weights and cards (created). The shipped weights are replaced only when their "
                   "folder is named: --out models_zoo/weights (bench/listings.json is then rewritten too).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train.")
@click.option("--seed", default=0, show_default=True, type=int, help="Training seed of every variant.")
@click.option("--force", is_flag=True, help="Train the paper profile even without a CUDA device.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Variants trained at once, each by its own process with an equal share of the CPU cores (one "
                   "thread each on the 2-core machine with --jobs 2, as the shipped weights were trained: their cards "
                   "say '1 threads'). A variant that fine-tunes another built in the same run waits for it. The "
                   "workers' progress bars are off; a line says when each training starts and ends.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def zoo_build(profile: str, only: tuple[str, ...], out: str, device: str, seed: int, force: bool, jobs: int,
              quiet: bool) -> None:
    """Train every zoo variant on its default protocol with its zoo epochs; prints the time of each.

    Weights and cards go to results/weights/ unless --out names a place. A variant that fine-tunes another
    (triplet-adv from facenet-baseline) starts from the one in that folder when there is one (built by this run or
    an earlier one; it says which), else from the shipped weights. With --jobs 2 on the 2-core CPU machine the
    build waits for its longest chain, facenet-baseline then triplet-adv (docs/zoo.md gives the cards' times)."""
    from bench.config import resolve_device
    from models_zoo.training import build_zoo

    _silence_bars(quiet)
    built = build_zoo(profile, list(only) or None, out_dir=Path(out), device=resolve_device(device),
                      seed=seed, progress=not quiet, force=force, jobs=jobs, log=lambda line: click.echo(line, err=True))
    rows = [[name, card["task"], card["epochs"], card["wall_time_s"], _dev_summary(card["dev"]), str(weights)]
            for name, weights, card in built]
    click.echo(tabulate(rows, headers=["variant", "task", "epochs", "train s", "dev metrics", "weights"]))
    click.echo(f"total training time {sum(r[3] for r in rows):.0f} s")
    _after_training(built)


def _after_training(written: list[tuple[str, Path, dict]]) -> None:
    """After `train` / `zoo build`: say which weights a fine-tuning started from; keep bench/listings.json (what
    `facebench models` shows, read without importing torch) in step with shipped weights just overwritten; for
    weights written elsewhere, say how to evaluate them."""
    from bench.listings import refresh_after_training
    from models_zoo.checkpoint import in_shipped_folder

    for name, _, card in written:
        training = card.get("training") or {}
        start, stages = training.get("init"), training.get("stages_from")  # a checkpoint's record, or words
        if isinstance(start, dict):
            click.echo(f"{name} was fine-tuned from {start['from']} (sha256 {start['sha256'][:12]}...)")
        if isinstance(stages, dict):
            click.echo(f"{name}: the stages before its fine-tuning were loaded from {stages['init']} "
                       f"(sha256 {stages['sha256'][:12]}...)")
    rewritten = refresh_after_training([weights for _, weights, _ in written])
    if rewritten is not None:
        click.echo(f"updated {rewritten} (the model listing quotes the shipped cards)")
    elsewhere = [(name, weights) for name, weights, _ in written if not in_shipped_folder(weights)]
    if elsewhere:
        name, weights = elsewhere[0]
        click.echo(f"evaluate with: facebench run --model {name} --checkpoint {shlex.quote(str(weights))}"
                   + (" (and likewise the others)" if len(elsewhere) > 1 else ""))


@main.command()
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Run only this claim (repeatable): fr-finetune-epochs, fas-gan-pretraining. Default: every claim.")
@click.option("--seeds", default=None, type=int,
              help="Training seeds per grid point (0 .. N-1). Default: each claim's own (3). Fewer than 3: the tables "
                   "are written, the verdicts say 'not enough seeds'.")
@click.option("--finetune-epochs", default=None, metavar="E1,E2,...",
              help="The adversarial fine-tuning epochs of fr-finetune-epochs (positive numbers; 0.5: half an epoch, "
                   "the zoo's contrastive fine-tuning). Default: 1,2,4,8,16.")
@click.option("--protocols", "protocols", multiple=True, metavar="P1,P2,...",
              help="Replace the protocols of the claims of the same task (comma-separated or repeated). Default: each "
                   "claim's own (fas-gan-pretraining: the six cross-domain synth protocols; fr-finetune-epochs: synth-fr). "
                   "synth-fr-dev attacks pairs of synth-fr's dev identities instead of its test pairs, so that a "
                   "schedule chosen there has read no test pair; its points train on synth-fr, and with both "
                   "(synth-fr,synth-fr-dev) each training is done once and evaluated on each (docs/zoo.md).")
@click.option("--samples", default=200, show_default=True, type=int, help="Pairs per goal in the FR attack runs.")
@click.option("--work", default="results/claims", show_default=True, type=click.Path(file_okay=False),
              help="Work directory: the trained weights and cards, the cached evaluations, the FR store. Reused: what "
                   "is done there is not done again.")
@click.option("--out", default="results/claims.md", show_default=True, type=click.Path(dir_okay=False),
              help="The markdown file the tables are written to.")
@click.option("--docs", default=None, type=click.Path(dir_okay=False),
              help="Also replace the block between <!-- claims:begin --> and <!-- claims:end --> in this file (e.g. "
                   "docs/zoo.md); nothing else in it changes. Refused before any work when the markers are missing.")
@click.option("--dry-run", is_flag=True, help="List every training and evaluation it would do, with the counts; do nothing.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
              help="Where to train and attack.")
@click.option("--tabulate-only", is_flag=True,
              help="Write the tables of what the work directory holds now; train and evaluate nothing (a long run's "
                   "progress: each cell shows its n, a verdict short of seeds says so).")
@click.option("--jobs", default=1, show_default=True, type=int,
              help="Workers sharing the work directory (each training and evaluation under a lock there): the CPU "
                   "cores are split between them, one core each on the 2-core machine with --jobs 2. A shared start "
                   "is trained before the trainings that continue it.")
def claims(only: tuple[str, ...], seeds: Optional[int], finetune_epochs: Optional[str], protocols: tuple[str, ...],
           samples: int, work: str, out: str, docs: Optional[str], dry_run: bool, device: str, tabulate_only: bool,
           jobs: int) -> None:
    """Reproduce the seeds' claims on the embedded world: tables with error bars and a verdict per claim.

    A claim is a record (bench/claims/seeds.py): the seed method's statement, the grid that tests it (zoo
    variants with recipe options, protocols, epochs, seeds), what is measured, and a verdict rule declared before
    anything is measured. Each grid point is trained with `train_variant` into --work and evaluated (FR: the
    claims-fr attack suite through `facebench run --checkpoint`; FAS: test HTER at the source dev EER threshold);
    both are kept, so a stopped run continues where it was. Each cell is the mean over seeds with its 95 % Student-t
    interval, n shown.

    \b
    Verdict rules:
    - fr-finetune-epochs: on each decisive measure (impersonation PGD-10 robust accuracy at 8/255, median minimal
      Linf perturbation of dodging and impersonation), contrastive-triplet's 95 % interval must reach triplet-adv's
      at its largest fine-tuning epochs after at most half the epochs triplet-adv needs to reach it itself; and
      (the semi-supervised part) per seed, each of those measures averaged over the fine-tuning epochs, the 95 %
      Welch interval of the improvement of contrastive-triplet-semi at 10 % labels over contrastive-triplet must
      lie above 0;
    - fas-gan-pretraining: per seed, test HTER averaged over the protocols; the 95 % Welch interval of the
      improvement of --pretrain gan over --pretrain none must lie above 0, and over multiloss-sota above -2 points.
    A verdict reads "reproduced" or "not reproduced on the embedded world", or "not enough seeds" when a cell it
    reads has fewer than 3.

    The full default grid (`make claims`: 150 grid points, 60 FR and 90 FAS, each trained and evaluated, and 9
    shared starts: the contrastive arms' pre-training and warm-up, once per seed) takes hours: about 18 hours of
    one core on the 2-core CPU machine by the zoo's measured times, most of it the FR grid's 372 epochs of
    adversarial fine-tuning (about 130 s each); `--finetune-epochs 1,2,4` about 6.5 hours. Not measured end to
    end. --dry-run lists it.
    """
    from bench.claims.command import Request, dry_run as list_plan, run as run_claims

    req = Request(only=only, seeds=seeds, axis={"--finetune-epochs": finetune_epochs} if finetune_epochs is not None else {},
                  protocols=protocols, samples=samples, work=Path(work), out=Path(out),
                  docs=Path(docs) if docs else None, device=device, jobs=jobs, tabulate_only=tabulate_only,
                  command="facebench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv and "facebench" in
                  sys.argv[0] else "facebench claims")
    if dry_run:
        for line in list_plan(req):
            click.echo(line)
        return
    try:
        _, written = run_claims(req, log=_log(False))
    except KeyboardInterrupt:
        click.echo(f"facebench: interrupted (the trainings and evaluations finished so far are kept in {work}; the "
                   "same command continues from there)", err=True)
        click.get_current_context().exit(130)
    click.echo(f"wrote {', '.join(map(str, written))}")


def _attach_prepare() -> None:
    from bench.data.real.cli import prepare

    datasets.add_command(prepare)


_attach_prepare()

if __name__ == "__main__":  # pragma: no cover
    main()

