"""Results and rows: the leaderboard's numbers, read from the stores, with no page layout or writing.

A `RunRecord` is the newest complete run of a (model, profile, protocol, suite) with its cells; a `Row` is
one model on one protocol and goal: clean accuracy, robust accuracy per budget (the per-sample worst case
over every attack, every cascade stage, every transfer source stored at that budget), the curves behind
the AUC and minimal-eps columns, the median best-known minimal perturbation of its samples (read from
`bench.tables.best_known` over every cell of the stores), clean FAS error rates, provenance. The gate (`bench.gate`), the plots
and the pages all read them from here. Nothing is fitted on test data.
"""
from __future__ import annotations

import json
import shlex
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from bench.config import format_eps
from bench.data.sets import fold_of
from bench.errors import FacebenchError, StoreError
from bench.goals import goal_order, goals_of
from bench.leaderboard.catalogue import ModelInfo, model_info
from bench.leaderboard.cells import attack_label, is_transfer, transfer_source
from bench.metrics import median_interval, wilson_interval
from bench.runconfig import stored_config
from bench.store import CellResult, ResultsStore


# --------------------------------------------------------------------------- rates and budgets

@dataclass(frozen=True)
class Rate:
    """k of n, with its 95 % Wilson interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    def pct(self) -> str:
        if not self.n:
            return "n/a"
        lo, hi = self.interval
        return f"{100 * self.value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"

    def raw(self, prefix: str) -> dict:
        lo, hi = self.interval
        return {prefix: self.value, f"{prefix} low": lo, f"{prefix} high": hi, f"{prefix} k": self.k, f"{prefix} n": self.n}


@dataclass(frozen=True, order=True)
class Budget:
    """A perturbation budget. `masked`: a mask-confined attack (eyeglass, patch), whose eps bounds the inside of the mask."""

    norm: str
    eps: float
    masked: bool = False

    @property
    def label(self) -> str:
        return f"{self.norm} {format_eps(self.norm, self.eps)}" + (" (mask)" if self.masked else "")


def budget_order(b: Budget) -> tuple:
    """Column order: Linf budgets, then L2, then mask-confined ones; each by size."""
    return (b.masked, b.norm != "linf", b.norm, b.eps)


def _masked(attack: str) -> bool:
    from attacks import declares

    return declares(attack, "mask_confined")


def budget_of(config: dict) -> Budget:
    """The budget of a cell; equal budgets compare equal within a tolerance (rounded to 1e-9)."""
    return Budget(str(config["norm"]), round(float(config["eps"]), 9), _masked(str(config["attack"])))


# --------------------------------------------------------------------------- reading the stores

class KnownMinima:
    """The best-known minimal perturbation of every sample of some stores (`bench.tables.best_known`), and each
    attack's optimality against it (`bench.tables.attack_optimality`), derived on first use (the gate, which shows
    neither, never pays for them) and shared by the records read with them."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._by_key: Optional[dict] = None
        self._table = None
        self._optimality = None

    def table(self):
        """The `bench.tables.best_known` table of the stores (a DataFrame), derived once."""
        from bench.tables import best_known

        if self._table is None:
            self._table = best_known([ResultsStore(p) for p in self.paths])
        return self._table

    def rows(self, key: tuple, norm: str):
        """The rows of `table()` of one key (`bench.tables.best_known_key`) and norm, indexed by sample id (None:
        none)."""
        from bench.tables import index_best_known

        if self._by_key is None:
            self._by_key = index_best_known(self.table())
        return self._by_key.get(tuple(key) + (norm,))

    def optimality(self):
        """The `bench.tables.attack_optimality` table of the stores (a DataFrame, against `table()`), derived once."""
        from bench.tables import attack_optimality

        if self._optimality is None:
            self._optimality = attack_optimality([ResultsStore(p) for p in self.paths], known=self.table())
        return self._optimality

    def of(self, cell: CellResult, run: dict, norm: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For samples `ids` of `cell`'s key (`bench.tables.best_known_key`) in `norm`: best-known eps (inf: never
        broken; NaN: not in the table), whether a minimal-norm attack measured it, and the largest budget of the norm
        any cell attacked each at (0: none)."""
        from bench.tables import best_known_key

        part = self.rows(best_known_key(cell, run), norm)
        if part is None:
            return np.full(len(ids), np.nan), np.zeros(len(ids), bool), np.zeros(len(ids))
        found = part.reindex([str(i) for i in ids])
        return (found["best_eps"].to_numpy(np.float64), found["exact"].fillna(False).to_numpy(bool),
                found["largest_eps_tried"].fillna(0.0).to_numpy(np.float64))


@dataclass
class RunRecord:
    """A complete run, its cells (with arrays) and the store it came from; `known`: the best-known minimal
    perturbations of the stores read with it (None: not read)."""

    run: dict
    store: Path
    cells: list[CellResult]
    known: Optional[KnownMinima] = None

    @property
    def config(self) -> dict:
        raw = self.run.get("config") or "{}"
        return json.loads(raw) if isinstance(raw, str) else dict(raw)

    @property
    def dev(self) -> dict:
        raw = self.run.get("dev_metrics") or "{}"
        return json.loads(raw) if isinstance(raw, str) else dict(raw)


def flip_tta(run: dict) -> bool:
    """Whether a run's model embedded with flip test-time augmentation (`--flip-tta`, in its stored configuration)."""
    return bool(stored_config(run).get("flip_tta"))


def run_label(run: dict) -> str:
    """The model as the leaderboard shows it: the run's `--name` (a model of your own, or a zoo variant's weights of
    your own), else the model as given (a zoo variant's name, a factory string, an ONNX file)."""
    return str(stored_config(run).get("name") or run["model"])


def run_key(run: dict) -> tuple:
    """What the leaderboard keeps one run of (the newest): model (as given and as named), profile, protocol, suite
    and flip TTA."""
    return (run_label(run), run["model"], run.get("profile"), run["protocol"], run["suite"], flip_tta(run))


def collect_runs(store_paths: Iterable[Path], log: Callable[[str], None] = lambda s: None) -> list[RunRecord]:
    """The newest complete run per (model and its `--name`, profile, protocol, suite, flip TTA) over every store
    (`run_key`).

    A newer run hides an older one of the same key; when they evaluated other weights (a retrained zoo variant run
    under its zoo name, a model of your own run again with new weights under one name), one line to `log` names
    the hidden runs and says how to show both. Anything
    wrong with a store (missing, not a facebench store, a run naming a missing cell, cells of one goal that do not
    cover the same samples, unreadable metadata) raises `StoreError` naming the store.
    """
    store_paths = [Path(p) for p in store_paths]
    known = KnownMinima(store_paths)
    stores: dict[Path, ResultsStore] = {}
    chosen: dict[tuple, tuple[dict, Path]] = {}
    hidden: dict[tuple, list[tuple[dict, Path]]] = defaultdict(list)
    for path in store_paths:
        with _store_errors(path):
            stores[path] = ResultsStore(path)
            for run in stores[path].runs():
                if run.get("status") != "complete":
                    continue
                key = run_key(run)
                old = chosen.get(key)
                if old is None or started_key(run) >= started_key(old[0]):  # in a store, a later run of a tie wins
                    chosen[key] = (run, path)
                    if old is not None:
                        hidden[key].append(old)
                else:
                    hidden[key].append((run, path))
    records = []
    other_weights: dict[str, list[str]] = defaultdict(list)  # model -> the hidden runs of other weights
    for key, (run, path) in chosen.items():
        shown = run.get("checkpoint_sha256")
        other_weights[run_label(run)] += [old["run_id"] for old, _ in hidden[key] if old.get("checkpoint_sha256") != shown]
        with _store_errors(path):
            cells = stores[path].read_cells(run["cell_ids"])
            rec = RunRecord(run, path, cells, known)
            rec.config, rec.dev  # noqa: B018 - fail here on unreadable JSON, not while rendering
            for c in cells:
                for field_name in ("goal", "attack", "norm", "eps"):
                    if field_name not in c.config:
                        raise StoreError(f"cell {c.cell_id} has no {field_name!r} in its configuration")
        records.append(rec)
    hidden_runs = {model: runs for model, runs in other_weights.items() if runs}
    if hidden_runs:
        log("hidden by a newer run of other weights under the same name (the newest run of each model, protocol and "
            "suite is shown): " + ", ".join(f"{m} ({runs[0] if len(runs) == 1 else f'{len(runs)} runs'})"
                                            for m, runs in sorted(hidden_runs.items()))
            + "; to compare weights, run each under its own name (`facebench run --name`, with --checkpoint for a zoo "
            "variant's weights) or into its own store (`--store`) and leaderboard")
    return sorted(records, key=lambda r: (r.run["protocol"], run_label(r.run), str(r.run.get("profile")), r.run["suite"],
                                          flip_tta(r.run)))


@contextmanager
def _store_errors(path: Path) -> Iterator[None]:
    """A store that cannot be read raises `StoreError` naming it (a `StoreError` of its own passes as it is)."""
    try:
        yield
    except FacebenchError as e:
        if isinstance(e, StoreError):
            raise
        raise StoreError(f"store {path}: {e}") from None
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise StoreError(f"store {path} cannot be read as a facebench store: {type(e).__name__}: {e}") from None


def started_key(run: dict) -> tuple:
    """When a run started, as a sort key (the newest run of a key wins)."""
    return (str(run.get("started", "")), int(run.get("started_ns", 0) or 0))


def command_of(rec: RunRecord) -> tuple[str, bool]:
    """The command line that reproduces a run, and whether it was rebuilt from the stored configuration."""
    stored = str(rec.run.get("command") or "").strip()
    if stored:
        return stored, False
    cfg = rec.config
    args = ["facebench", "run", "--model", str(rec.run["model"])]
    if rec.run.get("source") == "user" or cfg.get("task") and ":" in str(rec.run["model"]):
        args += ["--task", str(cfg.get("task") or rec.run.get("task"))]
        if cfg.get("name"):
            args += ["--name", str(cfg["name"])]
        if cfg.get("input_size"):
            args += ["--input-size", str(cfg["input_size"])]
    elif cfg.get("profile") and cfg["profile"] != "tiny":
        args += ["--profile", str(cfg["profile"])]
    args += ["--attack-suite", str(cfg.get("suite", rec.run["suite"])), "--protocol", str(rec.run["protocol"]),
             "--samples", str(cfg.get("samples", "?")), "--seed", str(cfg.get("seed", 0))]
    if cfg.get("checkpoint"):
        args += ["--checkpoint", str(cfg["checkpoint"])]
    if cfg.get("eot") is not None:
        args += ["--eot", str(cfg["eot"])]
    if cfg.get("shard_size"):
        args += ["--shard-size", str(cfg["shard_size"])]
    if cfg.get("flip_tta"):
        args += ["--flip-tta"]
    args += ["--store", str(cfg.get("store", rec.store))]
    return " ".join(shlex.quote(a) for a in args), True


# --------------------------------------------------------------------------- rows

@dataclass
class FASClean:
    """Clean FAS error rates on the run's evaluated test frames at the stored dev threshold."""

    threshold: float
    spoof_scores: Optional[np.ndarray]  # clean liveness scores of the evaluated spoof frames
    live_scores: Optional[np.ndarray]
    spoof_species: Optional[list[Optional[str]]]
    apcer_pooled: Optional[Rate] = None
    apcer_max: Optional[float] = None
    apcer_species: dict = field(default_factory=dict)
    bpcer: Optional[Rate] = None

    @property
    def hter(self) -> Optional[float]:
        if self.apcer_pooled is None or self.bpcer is None:
            return None
        return (self.apcer_pooled.value + self.bpcer.value) / 2

    @property
    def acer(self) -> Optional[float]:
        if self.apcer_max is None or self.bpcer is None:
            return None
        return (self.apcer_max + self.bpcer.value) / 2


def species_of(sample_id: str) -> Optional[str]:
    """Attack species of a synthetic FAS frame from its id (`domain/subject/NN-medium/fK`); None when unknown."""
    from bench.data.synth.media import SUBTYPES

    parts = str(sample_id).split("/")
    if len(parts) >= 3 and "-" in parts[2]:
        medium = parts[2].split("-", 1)[1]
        if medium in SUBTYPES:
            return str(SUBTYPES[medium])
    return None


def fas_clean(cells: list[CellResult], run: Optional[dict] = None) -> Optional[FASClean]:
    """Clean test error rates at the dev threshold: those the run measured on the protocol's whole test
    split (`test_metrics`, runs since store v1.2) when present; else APCER from the clean scores of the
    evaluated spoof frames (spoof-to-live cells) and BPCER from the live frames (live-to-spoof cells),
    at the threshold stored with the cells. The evaluated frames' scores are kept for the plots."""
    spoof = next((c for c in cells if c.config["goal"] == "spoof-to-live"), None)
    live = next((c for c in cells if c.config["goal"] == "live-to-spoof"), None)
    tm = (run or {}).get("test_metrics")
    if isinstance(tm, str):
        tm = json.loads(tm) if tm else None
    if tm:
        out = FASClean(float(tm["threshold"]), None, None, None)
        if spoof is not None:
            out.spoof_scores = spoof.arrays["clean_score"].astype(np.float64)
        if live is not None:
            out.live_scores = live.arrays["clean_score"].astype(np.float64)
        if tm["frames_spoof"]:
            out.apcer_pooled = Rate(int(tm["apcer_pooled_k"]), int(tm["frames_spoof"]))
            out.apcer_max = float(tm["apcer"])
            out.apcer_species = dict(tm["apcer_per_species"])
        if tm["frames_live"]:
            out.bpcer = Rate(int(tm["bpcer_k"]), int(tm["frames_live"]))
        return out
    if spoof is None and live is None:
        return None
    tau = float((spoof or live).attrs.get("threshold", float("nan")))
    out = FASClean(tau, None, None, None)
    if spoof is not None:
        s = spoof.arrays["clean_score"].astype(np.float64)
        accepted = s >= tau
        out.spoof_scores = s
        out.apcer_pooled = Rate(int(accepted.sum()), len(s))
        species = [species_of(i) for i in spoof.arrays["sample_id"]]
        out.spoof_species = species
        if species and all(sp is not None for sp in species):
            per = {sp: float(accepted[[x == sp for x in species]].mean()) for sp in sorted(set(species))}
            out.apcer_species = per
            out.apcer_max = max(per.values())
    if live is not None:
        s = live.arrays["clean_score"].astype(np.float64)
        out.live_scores = s
        out.bpcer = Rate(int((s < tau).sum()), len(s))
    return out


@dataclass(frozen=True)
class FoldSpread:
    """A rate fold by fold: its mean and standard deviation (ddof=0) over the folds the samples fall in."""

    mean: float
    std: float
    folds: int

    def pct(self) -> str:
        return f"{100 * self.mean:.1f} ± {100 * self.std:.1f}"


@dataclass(frozen=True)
class KnownMedian:
    """A row's median best-known minimal perturbation in one norm, over its clean-correct samples."""

    median: float  # inf: more than half of them were never broken by any stored attack
    low: float  # its 95 % bootstrap interval (`bench.metrics.median_interval`)
    high: float
    n: int  # clean-correct samples
    exact: int  # of which a minimal-norm attack measured the value
    unbroken: int  # of which no stored attack broke
    floor: float  # every unbroken one was attacked at a whole-image budget of the norm >= this (0: not all were)


@dataclass
class Row:
    """One model on one protocol and goal: clean and worst-case robust metrics, provenance."""

    rec: RunRecord
    info: ModelInfo
    goal: str
    cells: list[CellResult]
    clean: Rate
    robust: dict[Budget, Rate]
    attacks: dict[Budget, list[str]]
    breaking: dict[str, np.ndarray]  # per norm: each sample's smallest budget known to break it (inf: none)
    curve_max: dict[str, float]  # per norm: the largest budget any cell of the norm reached
    min_eps: dict[str, tuple[float, int, float]]  # per norm: (median over attacked samples, attacked, search max)
    seconds: float
    reasons: list[str]
    fas: Optional[FASClean] = None
    kept: dict[Budget, np.ndarray] = field(default_factory=dict, repr=False)  # per budget: each sample not broken
    folds: Optional[np.ndarray] = None  # k-fold protocols: each sample's fold (from its id, `f<fold>:...`)
    _known: dict = field(default_factory=dict, repr=False)  # norm -> Optional[KnownMedian], filled on first use

    @property
    def run(self) -> dict:
        return self.rec.run

    @property
    def model(self) -> str:
        """The model as shown and told apart (`run_label`); the run's `model` is the variant or factory string."""
        return run_label(self.run)

    @property
    def label(self) -> str:
        return f"{self.model} ({self.variant})"

    @property
    def variant(self) -> str:
        """How the model was run, after its name: its profile, and `flip TTA` where it embedded with it."""
        return str(self.run.get("profile", "")) + (", flip TTA" if flip_tta(self.run) else "")

    def fold_spread(self, budget: Optional[Budget] = None) -> Optional[FoldSpread]:
        """Clean accuracy (no `budget`) or robust accuracy at `budget` fold by fold (k-fold protocols; None
        elsewhere, or without that budget)."""
        if self.folds is None or (budget is not None and budget not in self.kept):
            return None
        ok = self.cells[0].arrays["clean_correct"].astype(bool) if budget is None else self.kept[budget]
        values = [float(ok[self.folds == f].mean()) for f in np.unique(self.folds)]
        return FoldSpread(float(np.mean(values)), float(np.std(values)), len(values))

    def kfold_clean(self) -> Optional[dict]:
        """The run's clean k-fold verification (`dev_metrics` of a k-fold protocol: accuracy and TAR, mean and std
        over the held-out folds); None for other protocols."""
        dev = self.rec.dev
        return dev if "accuracy_mean" in dev and "folds" in dev else None

    @property
    def n(self) -> int:
        return self.clean.n

    @property
    def unreliable(self) -> bool:
        return bool(self.reasons)

    def clean_reasons(self) -> list[str]:
        """Why the clean accuracy is unreliable: the reasons every cell of the row carries (a run- or goal-level
        check: the model card, the goal's determinism, gradient, large-budget and eval-mode checks); [] if none."""
        each = [cell_reasons([c]) for c in self.cells]
        return [r for r in each[0] if all(r in other for other in each[1:])] if each else []

    def robust_reasons(self, budget: Budget) -> list[str]:
        """Why the robust accuracy at `budget` is unreliable: the reasons of any cell at that budget (its worst case
        reads them all); [] if none."""
        return cell_reasons([c for c in self.cells if budget_of(c.config) == budget])

    def auc(self, norm: str, top: float) -> Optional[float]:
        """Normalised area under robust accuracy vs eps on [0, top]: mean over samples of min(breaking budget, top) / top.

        Defined when the norm has a min-eps curve or at least two budgets reaching `top`.
        """
        b = self.breaking.get(norm)
        budgets = {x.eps for x in self.robust if x.norm == norm and not x.masked}
        has_min = norm in self.min_eps
        if b is None or not len(b) or top <= 0 or self.curve_max.get(norm, 0) < top - 1e-9 or (len(budgets) < 2 and not has_min):
            return None
        return float(np.mean(np.minimum(b, top) / top))

    def curve(self, norm: str, grid: np.ndarray) -> np.ndarray:
        """Success rate (broken / n) at each eps of `grid`: the fraction of samples broken at a budget <= eps."""
        b = self.breaking[norm]
        return (b[None, :] <= grid[:, None] + 1e-12).mean(axis=1)

    def best_known(self, norm: str) -> Optional[KnownMedian]:
        """The median best-known minimal perturbation of the row's clean-correct samples in `norm` (over every cell of
        the stores read, `bench.tables.best_known`); None without a store table, without clean-correct samples, or
        where no cell of the stores attacked them in `norm` (Linf successes also bound L2, but a norm never searched
        is not shown)."""
        if norm not in self._known:
            self._known[norm] = self._best_known(norm)
        return self._known[norm]

    def _best_known(self, norm: str) -> Optional[KnownMedian]:
        if self.rec.known is None:
            return None
        clean = self.cells[0].arrays["clean_correct"].astype(bool)
        ids = self.cells[0].arrays["sample_id"][clean]
        eps, exact, tried = self.rec.known.of(self.cells[0], self.run, norm, ids)
        if not len(ids) or np.isnan(eps).any() or not (tried > 0).any():
            return None
        med, lo, hi = median_interval(eps)
        unbroken = ~np.isfinite(eps)
        floor = float(tried[unbroken].min()) if unbroken.any() else 0.0
        return KnownMedian(med, lo, hi, len(ids), int(exact.sum()), int(unbroken.sum()), floor)

    def as_dict(self) -> dict:
        """The row as plain data (the shape `leaderboard_rows` has always returned, plus more)."""
        from models_zoo.factory import model_name  # torch: only when rows are read, not when this module is imported

        return {
            "model": str(self.run["model"]), "profile": self.run.get("profile", ""), "protocol": self.run["protocol"],
            "suite": self.run["suite"], "goal": self.goal, "run_id": self.run["run_id"], "command": command_of(self.rec)[0],
            "threshold_rule": self.run.get("threshold_rule", ""), "n": self.n, "clean": (self.clean.k, self.clean.n),
            "robust": {b.label: (r.k, r.n) for b, r in self.robust.items()},
            "attacks": sorted({a for v in self.attacks.values() for a in v}), "params": self.info.params,
            "recipe": self.info.recipe, "seconds": self.seconds, "unreliable": self.unreliable, "reasons": self.reasons,
            "name": model_name(self.run), "source": str(self.run.get("source") or ""),
            "checkpoint_sha256": str(self.run.get("checkpoint_sha256") or ""), "started": started_key(self.run),
            "clean_reasons": self.clean_reasons(), "flip_tta": flip_tta(self.run),
            "robust_reasons": {b.label: self.robust_reasons(b) for b in self.robust},
        }


def cell_reasons(cells: list[CellResult]) -> list[str]:
    """The reasons the unreliable ones of `cells` are marked for, each once, in order."""
    reasons: list[str] = []
    for c in cells:
        for r in str(c.unreliable_reason or "").split("; ") if c.unreliable else []:
            r = r.strip() or "marked unreliable (no reason stored)"
            if r not in reasons:
                reasons.append(r)
    return reasons


def rows_of_run(rec: RunRecord) -> list[Row]:
    """One row per goal of a run (goals in the canonical order)."""
    by_goal: dict[str, list[CellResult]] = defaultdict(list)
    for c in rec.cells:
        by_goal[c.config["goal"]].append(c)
    info = model_info(rec.run)
    fas = fas_clean(rec.cells, rec.run) if rec.run.get("task") == "fas" or any(g in goals_of("fas") for g in by_goal) else None
    rows = []
    for goal in sorted(by_goal, key=goal_order):
        rows.append(_goal_row(rec, info, goal, by_goal[goal], fas))
    return rows


def _goal_row(rec: RunRecord, info: ModelInfo, goal: str, cells: list[CellResult], fas: Optional[FASClean]) -> Row:
    ids = cells[0].arrays["sample_id"]
    for c in cells:
        if not np.array_equal(c.arrays["sample_id"], ids):
            raise StoreError(f"store {rec.store}: cell {c.cell_id} does not cover the same samples as its peers "
                             f"(run {rec.run['run_id']}, goal {goal})")
    clean = cells[0].arrays["clean_correct"].astype(bool)
    n = len(ids)
    by_budget: dict[Budget, list[CellResult]] = defaultdict(list)
    for c in cells:
        by_budget[budget_of(c.config)].append(c)
    robust, attacks, kept = {}, {}, {}
    for b in sorted(by_budget, key=budget_order):
        broken = ~clean
        for c in by_budget[b]:
            broken = broken | c.arrays["success"].astype(bool)
        robust[b] = Rate(int((~broken).sum()), n)
        kept[b] = ~broken
        attacks[b] = [attack_label(c) for c in by_budget[b]]
    breaking, curve_max, min_eps = {}, {}, {}
    for norm in sorted({b.norm for b in by_budget if not b.masked}):
        beta = np.where(clean, np.inf, 0.0)
        top = 0.0
        mins = np.full(n, np.inf)
        search = 0.0
        for b, group in by_budget.items():
            if b.masked or b.norm != norm:
                continue
            top = max(top, b.eps)
            for c in group:
                beta = np.minimum(beta, np.where(c.arrays["success"].astype(bool), b.eps, np.inf))
                if "min_eps" in c.arrays:
                    m = c.arrays["min_eps"].astype(np.float64)
                    beta = np.minimum(beta, m)
                    mins = np.minimum(mins, m)
                    search = max(search, b.eps)
        breaking[norm], curve_max[norm] = beta, top
        if search > 0 and clean.any():
            min_eps[norm] = (float(np.median(mins[clean])), int(clean.sum()), search)
    reasons = cell_reasons(cells)
    seconds = float(sum(float(c.summary.get("seconds", 0.0) or 0.0) for c in cells))
    folds = [fold_of(i) for i in ids]
    return Row(rec, info, goal, cells, Rate(int(clean.sum()), n), robust, attacks, breaking, curve_max, min_eps,
               seconds, reasons, fas, kept, np.array(folds) if n and all(f is not None for f in folds) else None)


def ceiling_only(rows: list[Row], b: Budget) -> bool:
    """Whether only minimal-eps searches reached budget `b` in the rows (then `b` is their search ceiling, not a
    budget chosen for the task)."""
    from attacks import declares

    return all(declares(c.config["attack"], "budget_is_ceiling") for r in rows for c in r.cells if budget_of(c.config) == b)


def sweep_budgets(rows: list[Row]) -> set[Budget]:
    """The budgets of a table's suites that bound whole-image attacks: mask-confined budgets (eyeglass, patch)
    and budgets reached only by minimal-eps searches (their eps is the search's ceiling) left out."""
    found = set()
    for r in rows:
        for b in r.robust:
            if b.masked or b in found or ceiling_only([r], b):
                continue
            found.add(b)
    return found


def table_budgets(rows: list[Row]) -> list[Budget]:
    """The budgets a goal table has a robust-accuracy column for, in order: every stored budget but the ceilings of
    minimal-eps searches (a search's robust accuracy at its ceiling is what its `median min eps` column and the
    success-vs-eps plot show)."""
    found = {b for r in rows for b in r.robust}
    return sorted((b for b in found if not ceiling_only(rows, b)), key=budget_order)


def headline_budget(rows: list[Row]) -> Optional[Budget]:
    """The budget a table is sorted by: the largest Linf budget of `sweep_budgets`, else the largest L2 one."""
    candidates = sweep_budgets(rows)
    for norm in ("linf", "l2"):
        found = [b for b in candidates if b.norm == norm]
        if found:
            return max(found)
    return max(candidates) if candidates else None


def curve_tops(rows: list[Row], headline: Optional[Budget]) -> dict[str, float]:
    """Per norm, the E of the AUC columns: the largest sweep budget of the norm (the headline for its norm)."""
    tops: dict[str, float] = {}
    for b in sweep_budgets(rows):
        tops[b.norm] = max(tops.get(b.norm, 0.0), b.eps)
    if headline is not None:
        tops[headline.norm] = headline.eps
    return {n: tops[n] for n in sorted(tops, key=lambda n: (n != (headline.norm if headline else "linf"), n))}


def sort_rows(rows: list[Row], headline: Optional[Budget]) -> list[Row]:
    """Best first by robust accuracy at the headline budget (rows without it last); ties by robust accuracy at the
    next smaller budgets of the same norm in turn, then by clean accuracy, then by name."""
    ladder = [headline] if headline is not None else []
    if headline is not None:
        ladder += sorted({b for r in rows for b in r.robust if b.norm == headline.norm and not b.masked and b < headline},
                         reverse=True)

    def key(r: Row):
        steps = [(r.robust.get(b) is None, -(r.robust[b].value if b in r.robust else 0.0)) for b in ladder]
        return (*steps, -r.clean.value, r.model, str(r.run.get("profile")))

    return sorted(rows, key=key)


def leaderboard_rows(stores: Iterable[ResultsStore]) -> tuple[list[dict], list[str]]:
    """Every row of every store as plain data (model, goal, clean and robust (k, n) per budget label...) and the
    budget labels in order. Kept for scripts and tests that read the numbers without rendering pages."""
    rows = [r for rec in collect_runs([s.path for s in stores]) for r in rows_of_run(rec)]
    budgets = sorted({b for r in rows for b in r.robust}, key=budget_order)
    return [r.as_dict() for r in rows], [b.label for b in budgets]


# --------------------------------------------------------------------------- transfer

def transfer_matrix(rows: list[Row], headline: Optional[Budget]):
    """(budget, sources, targets, values %) of the transfer cells of a goal's rows, or None without any.

    Values are success rates over the target's clean-correct samples; the diagonal (source = target) is the
    target's white-box worst case (every non-transfer attack) at that budget.
    """
    cells = [(r, c) for r in rows for c in r.cells if is_transfer(c)]
    if not cells:
        return None
    budgets = {budget_of(c.config) for _, c in cells}
    budget = headline if headline in budgets else max(budgets, key=lambda b: (b.norm == "linf", b.eps))
    targets = sorted({r.model for r, c in cells if budget_of(c.config) == budget})
    sources = sorted({transfer_source(c) for r, c in cells if budget_of(c.config) == budget} | set(targets))
    values = np.full((len(sources), len(targets)), np.nan)
    for r, c in cells:
        if budget_of(c.config) != budget:
            continue
        att = c.arrays["attacked"].astype(bool)
        if att.any():
            values[sources.index(transfer_source(c)), targets.index(r.model)] = \
                100 * float(c.arrays["success"][att].mean())
    for r in rows:
        if r.model not in targets:
            continue
        own = [c for c in r.cells if not is_transfer(c) and budget_of(c.config) == budget]
        if not own:
            continue
        att = own[0].arrays["attacked"].astype(bool)
        broken = np.zeros_like(att)
        for c in own:
            broken |= c.arrays["success"].astype(bool)
        if att.any():
            values[sources.index(r.model), targets.index(r.model)] = 100 * float(broken[att].mean())
    return budget, sources, targets, values
