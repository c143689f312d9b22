"""The grid runner: a run config becomes cells; each cell is computed (or reused) and stored."""
from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from attacks import Attack, make_attack
from attacks.suites import Suite, load_suite
from bench import __version__
from bench.config import format_eps, resolve_device, seed_everything
from bench.data.protocols import FASProtocol, FRProtocol, Protocol, choose_items, get_protocol
from bench.errors import BadInputError, CheckpointError
from bench.evaluation import embed, fas_operating_point, fr_operating_point, images_to_tensor
from bench.metrics import wilson_interval
from bench.store import DEFAULT_STORE, CellResult, ResultsStore
from bench.tasks import DEFAULT_GOALS, GOALS, SpoofTask, Task, VerificationTask
from models_zoo.checkpoint import load_checkpoint, model_eval, shipped_weights
from models_zoo.registry import VariantSpec, get_variant

BUDGET_TOLERANCE = 1e-5
PAIR_KIND = {"dodging": "genuine", "impersonation": "impostor"}
VERSIONED = ("torch", "timm", "numpy", "h5py", "adversarial-robustness-toolbox", "foolbox", "torchattacks")


@dataclass
class RunConfig:
    """Everything that defines a run; stored as JSON with it."""

    model: str
    suite: str = "quick"
    protocol: Optional[str] = None
    samples: int = 200
    seed: int = 0
    device: str = "auto"
    store: str = "results/facebench.h5"
    checkpoint: Optional[str] = None
    profile: str = "tiny"
    batch_size: int = 128
    command: str = ""


@dataclass
class RunOutcome:
    run_id: str
    store: Path
    summaries: list[dict] = field(default_factory=list)
    computed: int = 0
    reused: int = 0


@dataclass
class GoalItems:
    """The evaluation items of one goal, ready to attack: inputs, their task and sample ids."""

    goal: str
    x: torch.Tensor
    task: Task
    sample_ids: list[str]


def versions() -> dict:
    out = {"python": platform.python_version(), "facebench": __version__}
    for pkg in VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def cell_id_of(config: dict) -> str:
    """Stable id of a cell: a hash of its canonical JSON config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:20]


def load_model(spec: VariantSpec, cfg: RunConfig, device: torch.device) -> tuple[torch.nn.Module, dict, Path]:
    """The variant's network with its checkpoint (the shipped one unless `--checkpoint`), in eval mode."""
    weights = Path(cfg.checkpoint) if cfg.checkpoint else shipped_weights(spec.name, cfg.profile)
    if weights is None:
        raise CheckpointError(
            f"model {spec.name!r} has no shipped {cfg.profile} weights; train them with "
            f"`facebench train --model {spec.name} --profile {cfg.profile}` or pass --checkpoint"
        )
    model = spec.build(cfg.profile)
    card = load_checkpoint(model, weights, variant=spec.name, profile=cfg.profile)
    return model_eval(model).to(device), card, weights


def goal_items(protocol: Protocol, model: torch.nn.Module, goal: str, threshold: float, cfg: RunConfig,
               size: int, device: torch.device) -> GoalItems:
    if isinstance(protocol, FRProtocol) and goal in PAIR_KIND:
        pairs = protocol.test_pairs(PAIR_KIND[goal], cfg.samples, cfg.seed, size)
        refs = embed(model, pairs.references, device).to(device)
        x = images_to_tensor(pairs.probes).to(device)
        return GoalItems(goal, x, VerificationTask(model, refs, threshold, goal), list(pairs.pair_ids))
    if isinstance(protocol, FASProtocol) and goal in SpoofTask.goals:
        test = protocol.frames("test", size)
        pool = np.flatnonzero(~test.live if goal == "spoof-to-live" else test.live)
        chosen = np.sort(pool[choose_items(len(pool), cfg.samples, cfg.seed, 2 if goal == "spoof-to-live" else 3)])
        x = images_to_tensor(test.images[chosen]).to(device)
        return GoalItems(goal, x, SpoofTask(model, threshold, goal, len(chosen)), [test.sample_ids[i] for i in chosen])
    raise BadInputError(f"protocol {protocol.name!r} does not provide items for goal {goal!r}")


@torch.no_grad()
def batched_scores(task: Task, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = []
    for start in range(0, x.shape[0], batch_size):
        idx = torch.arange(start, min(start + batch_size, x.shape[0]), device=x.device)
        out.append(task.subset(idx).scores(x[idx]))
    return torch.cat(out) if out else torch.zeros(0, device=x.device)


def summarise(arrays: dict, seconds: float) -> dict:
    """Clean and robust accuracy, and the attack success rate with its 95 % Wilson interval."""
    n = len(arrays["success"])
    attacked = arrays["attacked"]
    n_att = int(attacked.sum())
    k = int(arrays["success"][attacked].sum())
    robust = int((~arrays["success"]).sum())
    asr_lo, asr_hi = wilson_interval(k, n_att)
    rob_lo, rob_hi = wilson_interval(robust, n)
    return {
        "n": n,
        "n_attacked": n_att,
        "clean_accuracy": float(arrays["clean_correct"].mean()) if n else float("nan"),
        "robust_accuracy": robust / n if n else float("nan"),
        "robust_low": rob_lo,
        "robust_high": rob_hi,
        "asr": k / n_att if n_att else float("nan"),
        "asr_low": asr_lo,
        "asr_high": asr_hi,
        "median_linf": float(np.median(arrays["linf"][attacked])) if n_att else float("nan"),
        "mean_queries": float(arrays["queries"][attacked].mean()) if n_att else 0.0,
        "seconds": round(seconds, 3),
    }


def attack_cell(items: GoalItems, clean_scores: torch.Tensor, attack: Attack, norm: str,
                eps: float, batch_size: int, seed: int) -> dict:
    """Attack every clean-correct item of a goal at one budget; return the per-sample arrays."""
    task, x = items.task, items.x
    clean_success = task.success_from_scores(clean_scores)
    todo = (~clean_success).nonzero().squeeze(1)
    x_adv = x.clone()
    queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)
    for start in range(0, todo.numel(), batch_size):
        idx = todo[start : start + batch_size]
        out = attack.run(task.subset(idx), x[idx], norm, eps, generator=gen)
        x_adv[idx] = out.x_adv.detach()
        queries[idx] = out.queries
    adv_scores = batched_scores(task, x_adv, batch_size)
    delta = (x_adv - x).flatten(1)
    linf = delta.abs().max(dim=1).values
    l2 = delta.norm(dim=1)
    used = linf if norm == "linf" else l2
    if bool((used > eps + BUDGET_TOLERANCE).any()):
        raise RuntimeError(f"attack {attack.name} exceeded its {norm} budget {eps:g}: {float(used.max()):g}")
    success = task.success_from_scores(adv_scores)
    return {
        "sample_id": np.asarray(items.sample_ids, dtype=object),
        "clean_score": clean_scores.cpu().numpy().astype(np.float32),
        "adv_score": adv_scores.cpu().numpy().astype(np.float32),
        "clean_correct": (~clean_success).cpu().numpy(),
        "attacked": (~clean_success).cpu().numpy(),
        "success": success.cpu().numpy(),
        "linf": linf.cpu().numpy().astype(np.float32),
        "l2": l2.cpu().numpy().astype(np.float32),
        "queries": queries.cpu().numpy(),
    }


def plan(suite: Suite, goals: tuple[str, ...]) -> list[tuple[str, str, dict, str, float]]:
    """The grid: (goal, attack, params, norm, eps) in a stable order."""
    cells = []
    for goal in goals:
        for entry in suite.entries:
            params = make_attack(entry.attack, entry.params).params()
            for eps in entry.eps:
                cells.append((goal, entry.attack, params, entry.norm, eps))
    return cells


def run_benchmark(cfg: RunConfig, progress: bool = True, log: Callable[[str], None] = lambda s: None) -> RunOutcome:
    """Evaluate one model against one suite on one protocol; every cell goes to the store."""
    spec = get_variant(cfg.model)
    suite = load_suite(cfg.suite)
    protocol = get_protocol(cfg.protocol or spec.default_protocol)
    if protocol.task != spec.task:
        raise BadInputError(f"protocol {protocol.name!r} is for {protocol.task} models but {spec.name!r} is a {spec.task} model")
    if cfg.samples < 1:
        raise BadInputError(f"--samples must be at least 1, got {cfg.samples}")
    if cfg.batch_size < 1:
        raise BadInputError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    goals = suite.goals or DEFAULT_GOALS[spec.task]
    wrong = [g for g in goals if GOALS[g] != spec.task]
    if wrong:
        raise BadInputError(f"suite {suite.name!r} asks for goals {wrong} that a {spec.task} model cannot serve")
    store = ResultsStore(cfg.store)
    if store.path == DEFAULT_STORE:  # the default location is ours to create; a named one must exist
        store.path.parent.mkdir(parents=True, exist_ok=True)
    store.check_writable()
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    model, card, weights = load_model(spec, cfg, device)
    size = spec.input_size[cfg.profile]

    log(f"model {spec.name} ({cfg.profile}, {weights.name}, sha256 {card['sha256'][:12]}) on {device}")
    if isinstance(protocol, FRProtocol):
        dev = fr_operating_point(model, protocol, size, device)
        log(f"threshold {dev.operating_point.threshold:.4f} ({dev.operating_point.rule}, "
            f"{dev.operating_point.dev_count} dev pairs); dev TAR {dev.tar:.3f}")
    else:
        dev = fas_operating_point(model, protocol, size, device)
        log(f"threshold {dev.operating_point.threshold:.4f} ({dev.operating_point.rule}, "
            f"{dev.operating_point.dev_count} dev frames); dev ACER {dev.rates.acer:.3f}")
    op = dev.operating_point
    card_tau = card.get("dev", {}).get("threshold")
    reproduces = card_tau is not None and abs(float(card_tau) - op.threshold) <= 1e-4
    if card_tau is not None and not reproduces:
        log(f"warning: the dev threshold {op.threshold:.4f} differs from the model card's {float(card_tau):.4f}")

    grid = plan(suite, goals)
    meta = {
        "model": spec.name,
        "task": spec.task,
        "profile": cfg.profile,
        "checkpoint": str(weights),
        "checkpoint_sha256": card["sha256"],
        "protocol": protocol.name,
        "suite": suite.name,
        "suite_budgets": suite.budgets(),
        "config": asdict(cfg),
        "seed": cfg.seed,
        "versions": versions(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "host": f"{platform.node()} {platform.machine()} {torch.get_num_threads()} threads",
        "command": cfg.command,
        "threshold": op.threshold,
        "threshold_rule": op.rule,
        "dev_metrics": dev.as_card(),
        "card_threshold": card_tau,
        "card_reproduces": bool(reproduces),
        "cells_planned": len(grid),
    }
    run_id = store.begin_run(meta)
    outcome = RunOutcome(run_id, store.path)
    items_cache: dict[str, tuple[GoalItems, torch.Tensor]] = {}
    bar = tqdm(grid, desc="cells", unit="cell", disable=not progress, file=sys.stderr)
    try:
        for goal, attack_name, params, norm, eps in bar:
            attack = make_attack(attack_name, params)
            config = {
                "model": spec.name,
                "profile": cfg.profile,
                "checkpoint_sha256": card["sha256"],
                "protocol": protocol.name,
                "goal": goal,
                "attack": attack_name,
                "backend": attack.backend,
                "params": params,
                "norm": norm,
                "eps": eps,
                "samples": cfg.samples,
                "seed": cfg.seed,
                "threshold_rule": op.rule,
            }
            cid = cell_id_of(config)
            bar.set_postfix_str(f"{goal} {attack_name} {norm} {format_eps(norm, eps)}")
            if store.has_cell(cid):
                outcome.reused += 1
                cell = store.read_cells([cid], arrays=False)[0]
            else:
                if goal not in items_cache:
                    items = goal_items(protocol, model, goal, op.threshold, cfg, size, device)
                    items_cache[goal] = (items, batched_scores(items.task, items.x, cfg.batch_size))
                items, clean = items_cache[goal]
                start = time.perf_counter()
                arrays = attack_cell(items, clean, attack, norm, eps, cfg.batch_size,
                                     seed=int(cid[:12], 16) ^ cfg.seed)
                cell = CellResult(cid, config, arrays, summarise(arrays, time.perf_counter() - start),
                                  {"run_id": run_id, "threshold": op.threshold})
                store.write_cell(cell)
                outcome.computed += 1
            store.add_cell_to_run(run_id, cid)
            outcome.summaries.append({**config, **cell.summary, "cell_id": cid})
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        store.finish_run(run_id, status, {"error": f"{type(e).__name__}: {e}"})
        raise
    finally:
        bar.close()
    store.finish_run(run_id, "complete", {"cells_computed": outcome.computed, "cells_reused": outcome.reused})
    return outcome
