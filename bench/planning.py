"""Planning a run, as pure functions: the grid of cells, their configurations, ids and seeds, the transfer
sources they need, and which cells are computed together or in shards. Each cell kind plans its own cells."""
from __future__ import annotations

import json
from typing import Optional

import torch

from bench.cells import PlannedCell
from bench.config import format_eps
from bench.errors import BadInputError
from bench.goals import get_goal
from bench.runconfig import RunConfig
from bench.store import cell_id_of
from bench.suites import Suite
from models_zoo.factory import DEFAULT_PROFILE, ModelUnderTest, zoo_source
from models_zoo.registry import VARIANTS


def plan(suite: Suite, goals: tuple[str, ...], transfer_sources: tuple[str, ...] = ()) -> list[PlannedCell]:
    """The grid in a stable order: per goal, per entry that applies to it (an entry may name its goals), the entry's
    cells (one per budget; a transfer entry one per source and budget: its own `sources`, else
    `transfer_sources`, every other zoo model of the task)."""
    return [cell for goal in goals for entry in suite.entries if entry.applies_to(goal)
            for cell in entry.plan(goal, transfer_sources)]


def transfer_sources(mut: ModelUnderTest, suite: Suite) -> tuple[dict[str, ModelUnderTest], tuple[str, ...]]:
    """The source models the suite's entries need (`CellKind.needs_sources`), resolved (not loaded) before any
    work, and the default sources (for entries that name none).

    Default: every other zoo variant of the same task with shipped weights at the model's profile (the
    tiny one for a user model) and the same input size; for a zoo variant's weights of the user's own run under a
    `--name`, its shipped weights too. Sources named in a suite must be such models.
    """
    wanted = [e.needs_sources() for e in suite.entries if e.needs_sources() is not None]
    if not wanted:
        return {}, ()
    profile = mut.profile if mut.source == "zoo" else DEFAULT_PROFILE

    def resolved(name: str) -> ModelUnderTest:
        return ModelUnderTest(name, "zoo", mut.task, profile, mut.input_size, mut.default_protocol, spec=VARIANTS.get(name))

    out: dict[str, ModelUnderTest] = {}
    defaults: tuple[str, ...] = ()
    for names in wanted:
        for name in names:
            why = zoo_source(name, mut.task, profile, mut.input_size)
            if why is not None:
                raise BadInputError(f"suite {suite.name!r}: transfer source {name!r} cannot be used: {why}")
            out[name] = resolved(name)
    if any(not names for names in wanted):
        own = mut.source == "zoo" and mut.model_name not in ("", mut.name)  # other weights than the shipped ones
        defaults = tuple(n for n in VARIANTS if (n != mut.name or own)
                         and zoo_source(n, mut.task, profile, mut.input_size) is None)
        out.update({n: resolved(n) for n in defaults})
    return out, defaults


def cell_config(pc: PlannedCell, mut: ModelUnderTest, cfg: RunConfig, protocol: str, sha256: str, rule: str,
                source_sha: dict[str, str], data: Optional[str] = None) -> dict:
    """A cell's configuration: everything its per-sample results depend on (its id is the hash of this). `data`:
    the protocol's data fingerprint (`Protocol.data_fingerprint`), where it has one."""
    fields = pc.entry.config_fields(pc, source_sha)
    config = {
        "model": mut.name,
        "profile": mut.profile,
        "checkpoint_sha256": sha256,
        "protocol": protocol,
        **({"data": data} if data is not None else {}),
        "goal": pc.goal,
        "attack": fields["attack"],
        "backend": fields["backend"],
        "params": fields["params"],
        "norm": pc.norm,
        "eps": pc.eps,
        "samples": cfg.samples,
        "seed": cfg.seed,
        "threshold_rule": rule,
    }
    if mut.source == "user":  # zoo cells keep their ids; a user cell can never take one of theirs
        config.update(task=mut.task, input_size=mut.input_size)
        if mut.convention is not None:  # the same weights behind another input convention are another model
            config["preprocess"] = mut.convention.as_dict()
    if get_goal(pc.goal).items == "identification":
        config["threshold_rule"] = "top-1 (closed-set identification, no threshold)"
    if cfg.eot is not None:  # a forced EOT setting is part of the cell; the automatic one follows the model
        config["eot"] = cfg.eot
    if cfg.shard_size:  # shards draw their own random numbers: a sharded cell is a different computation
        config["shard_size"] = cfg.shard_size
    if cfg.precision != "fp32":  # bf16 gradients are a different attack (channels_last only reorders float sums)
        config["precision"] = cfg.precision
    if cfg.compile:
        config["compile"] = True
    if cfg.flip_tta:  # another function of the image: never the cells of the model without it
        config["flip_tta"] = True
    return config


def cell_seed(config: dict, run_seed: int) -> int:
    """A cell's random seed: from its configuration without the data fingerprint, and the run's seed. The same cell
    on other data draws the same random numbers (and a cell stored before the fingerprint was part of the id, the
    ones it drew: its seed came from the hash of exactly that configuration)."""
    return int(cell_id_of({k: v for k, v in config.items() if k != "data"})[:12], 16) ^ run_seed


def shard_seed(seed: int, shard: int, shards: int) -> int:
    """A shard's own seed (a cell computed whole keeps the cell's seed)."""
    return seed if shards == 1 else (seed + 104729 * (shard + 1)) % (2**63)


def shard_ranges(n: int, shard_size: Optional[int]) -> list[tuple[int, int]]:
    """Contiguous item ranges of a cell: one range for the whole cell unless a shard size is set."""
    if not shard_size or shard_size >= n:
        return [(0, -1)]
    return [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]


def budget_groups(grid: list[PlannedCell], configs: list[dict], cids: list[str], cfg: RunConfig, stored: set[str],
                  device: torch.device) -> dict[str, tuple]:
    """Cells to compute as one batch per attack (budgets together): for each cell still to compute (not in
    `stored`) whose kind can (`CellKind.budgets_together`), the (cell id, eps, seed) of every such cell of the
    same goal, attack, parameters and norm, when there are at least two. Only for the local executor and
    unsharded cells (a Ray task computes one cell; shards draw their own random numbers). By default on CUDA
    only: on a CPU the stacked batch is slower than one pass per budget (docs/performance.md)."""
    enabled = cfg.budgets_together if cfg.budgets_together is not None else device.type == "cuda"
    if not enabled or cfg.executor != "local" or cfg.shard_size:
        return {}
    groups: dict[tuple, dict[str, tuple]] = {}
    for pc, config, cid in zip(grid, configs, cids):
        if cid in stored or not pc.entry.budgets_together(pc):
            continue
        key = (pc.goal, pc.attack, json.dumps(pc.params, sort_keys=True, default=str), pc.norm)
        groups.setdefault(key, {})[cid] = (cid, pc.eps, cell_seed(config, cfg.seed))
    return {cid: tuple(members.values()) for members in groups.values() if len(members) > 1 for cid in members}


def cell_label(pc: PlannedCell) -> str:
    """How a cell is named in progress and log lines."""
    shown = f"{pc.attack} from {pc.source}" if pc.source else pc.attack
    return f"{pc.goal} {shown} {pc.norm} {format_eps(pc.norm, pc.eps)}"
