"""Example adversarial inputs for the leaderboard, regenerated from a stored cell's configuration.

The store keeps per-sample numbers, not images. To show what an attack does, the run's model and items
are rebuilt from the run's stored configuration (the same code path as `facebench run`) and the cell's
attack is run again on a few clean-correct items. These are fresh runs: they illustrate the attack and
need not reproduce the stored per-sample results bit for bit.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from bench.cells import kind_of
from bench.leaderboard.cells import example_attack, is_transfer
from bench.leaderboard.results import Budget, RunRecord, budget_of, run_label
from bench.planning import cell_seed
from bench.store import CellResult


@dataclass
class ExampleSet:
    """A few samples of one model: clean and adversarial images (N, H, W, 3 in [0, 1]) and their scores."""

    label: str
    attack: str = ""
    clean: Optional[np.ndarray] = None
    adv: Optional[np.ndarray] = None
    clean_scores: Optional[np.ndarray] = None
    adv_scores: Optional[np.ndarray] = None
    success: Optional[np.ndarray] = None
    error: str = ""


def strongest_cell(cells: list[CellResult]) -> Optional[CellResult]:
    """The strongest attack among cells of one goal at one budget: the lowest stored robust accuracy (then the
    highest success rate, then the most gradient steps, then run order). A fixed-budget attack is preferred to a
    minimal-eps search, whose ceiling is no budget it was held to; transfer cells are left out (their examples
    come from another model). None when no cell qualifies."""
    cands = [c for c in cells if not is_transfer(c) and example_attack(c) is not None]

    def strength(pair: tuple[int, CellResult]) -> tuple:
        i, c = pair
        robust, asr = (float(c.summary.get(k, math.nan)) for k in ("robust_accuracy", "asr"))
        return (kind_of(c.config).capability(c.config, "budget_is_ceiling"), math.inf if math.isnan(robust) else robust,
                -(asr if not math.isnan(asr) else -1.0), -kind_of(c.config).steps(c.config), i)

    return min(enumerate(cands), key=strength)[1] if cands else None


def regenerate_examples(rec: RunRecord, goal: str, budget: Budget, k: int = 4) -> ExampleSet:
    """Re-run the strongest attack of the run at `budget` on `goal` (`strongest_cell`) on `k` clean-correct items;
    a cascade contributes its first stage. Never raises: a model or dataset that cannot be rebuilt here gives an
    `ExampleSet` whose `error` says why.
    """
    label = run_label(rec.run)
    try:
        return _regenerate(rec, goal, budget, k)
    except Exception as e:  # an optional illustration: report why it is missing instead of failing the page
        return ExampleSet(label, error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def _regenerate(rec: RunRecord, goal: str, budget: Budget, k: int) -> ExampleSet:
    import torch

    from attacks import make_attack
    from bench import checks
    from bench.batching import auto_batch_size, batched_scores
    from bench.config import resolve_device
    from bench.protocols import get_protocol
    from models_zoo.factory import load_model, resolve_model

    label = run_label(rec.run)
    cell = strongest_cell([c for c in rec.cells if c.config["goal"] == goal and budget_of(c.config) == budget])
    if cell is None:
        return ExampleSet(label, error=f"no attack cell of {goal} at {budget.label}")
    attack_name, params, name = example_attack(cell)
    attack = make_attack(attack_name, params)
    cfg = rec.config
    device = resolve_device("auto")
    # what the run evaluated, rebuilt from its stored configuration as the runner builds it (models_zoo.factory),
    # seeded with the run's seed: a user model's factory weights are then the run's
    mut = resolve_model(str(cfg["model"]), cfg.get("task"), cfg.get("profile"), cfg.get("input_size"), cfg.get("name"),
                        cfg.get("preprocess"))
    samples, seed = int(cfg.get("samples", 200)), int(cfg.get("seed", 0))
    loaded = load_model(mut, cfg.get("checkpoint"), device, seed=seed, flip_tta=bool(cfg.get("flip_tta")))
    if loaded.sha256 != rec.run.get("checkpoint_sha256"):
        return ExampleSet(label, error=f"the weights found now (sha256 {loaded.sha256[:12]}) are not the run's "
                                       f"({str(rec.run.get('checkpoint_sha256'))[:12]})")
    protocol = get_protocol(cfg.get("protocol") or mut.default_protocol)
    taus = cell.attrs.get("fold_thresholds")  # k-fold protocols: each fold's threshold, as the run judged them
    threshold = tuple(json.loads(taus) if isinstance(taus, str) else taus) if taus else float(rec.run["threshold"])
    items = protocol.goal_items(goal, loaded.module, threshold, samples, seed, mut.input_size, device)
    task = items.task
    clean = batched_scores(task, items.x, cfg.get("batch_size") or auto_batch_size(device, samples))
    ok = (~task.broken_on_clean(clean)).nonzero().squeeze(1)[:k]
    if ok.numel() == 0:
        return ExampleSet(label, error="no clean-correct sample to attack")
    eot = int(cell.attrs.get("eot", 1) or 1)
    attack_task = checks.EOTTask(task, eot) if eot > 1 else task
    gen = torch.Generator(device=items.x.device)
    gen.manual_seed(cell_seed(cell.config, seed))  # the random numbers the cell drew
    x = items.x[ok]
    out = attack.run(attack_task.subset(ok), x, budget.norm, budget.eps, generator=gen)
    sub = task.subset(ok)
    with torch.no_grad():
        adv_scores = sub.scores(out.x_adv.detach())
        success = sub.success_from_scores(adv_scores)

    def hwc(t: torch.Tensor) -> np.ndarray:
        return t.detach().permute(0, 2, 3, 1).float().cpu().numpy()

    return ExampleSet(label, f"{name} {budget.label}", hwc(x), hwc(out.x_adv), sub.sample_scores(clean[ok]).cpu().numpy(),
                      sub.sample_scores(adv_scores).cpu().numpy(), success.cpu().numpy())
