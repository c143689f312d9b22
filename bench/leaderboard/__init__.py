"""Leaderboards rendered from one or more stores: an index page and one page per task and protocol.

Pages: FR verification robustness (per FR protocol), FR identification robustness (when identification
goals were run), FAS robustness (per FAS protocol) and FAS cross-domain generalization (the protocols
named `A->B`). Robust accuracy at a budget is the per-sample worst case over every attack (every
cascade stage, every transfer source) stored at that budget. Everything is computed from the stores'
per-sample arrays and run metadata; nothing is fitted on test data.
"""
from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from bench.config import format_eps
from bench.errors import BadInputError, FacebenchError, StoreError
from bench.goals import GOALS, goal_order, goals_of
from bench.metrics import wilson_interval
from bench.report import (FORMATS, BulletList, Cell, Figure, Heading, Page, Paragraph, Table, anchor_of,
                          page_markdown, site_html, table_csv, table_latex, write_atomic)
from bench.store import CellResult, ResultsStore

EXAMPLES_PER_MODEL = 4
INDEX = "README"
GENERALIZATION = "fas-generalization"
HTML_FILE = "leaderboard.html"


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


def attack_label(cell: CellResult) -> str:
    c = cell.config
    if c["attack"] == "transfer":
        return f"transfer from {c['params'].get('source', '?')}"
    if c["attack"] == "cascade":
        return "cascade(" + " -> ".join(st["attack"] for st in c["params"].get("stages", [])) + ")"
    return c["attack"]


# --------------------------------------------------------------------------- reading the stores

@dataclass
class RunRecord:
    """A complete run, its cells (with arrays) and the store it came from."""

    run: dict
    store: Path
    cells: list[CellResult]

    @property
    def config(self) -> dict:
        raw = self.run.get("config") or "{}"
        return json.loads(raw) if isinstance(raw, str) else dict(raw)

    @property
    def dev(self) -> dict:
        raw = self.run.get("dev_metrics") or "{}"
        return json.loads(raw) if isinstance(raw, str) else dict(raw)


def latest_complete_runs(store: ResultsStore) -> list[dict]:
    """The newest complete run of each (model, profile, protocol, suite) in a store."""
    latest: dict[tuple, dict] = {}
    for run in store.runs():
        if run.get("status") != "complete":
            continue
        latest[(run["model"], run.get("profile"), run["protocol"], run["suite"])] = run
    return list(latest.values())


def collect_runs(store_paths: Iterable[Path]) -> list[RunRecord]:
    """Every store's newest complete run per (model, profile, protocol, suite); across stores the newest wins.

    Anything wrong with a store (missing, not a facebench store, a run naming a missing cell, cells of one
    goal that do not cover the same samples, unreadable metadata) raises `StoreError` naming the store.
    """
    chosen: dict[tuple, RunRecord] = {}
    for path in store_paths:
        store = ResultsStore(path)
        try:
            for run in latest_complete_runs(store):
                cells = store.read_cells(run["cell_ids"])
                rec = RunRecord(run, Path(path), cells)
                rec.config, rec.dev  # noqa: B018 - fail here on unreadable JSON, not while rendering
                for c in cells:
                    for key in ("goal", "attack", "norm", "eps"):
                        if key not in c.config:
                            raise StoreError(f"cell {c.cell_id} has no {key!r} in its configuration")
                key = (run["model"], run.get("profile"), run["protocol"], run["suite"])
                old = chosen.get(key)
                if old is None or _started(run) >= _started(old.run):
                    chosen[key] = rec
        except FacebenchError as e:
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"store {path}: {e}") from None
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise StoreError(f"store {path} cannot be read as a facebench store: {type(e).__name__}: {e}") from None
    return sorted(chosen.values(), key=lambda r: (r.run["protocol"], r.run["model"], str(r.run.get("profile")), r.run["suite"]))


def _started(run: dict) -> tuple:
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
    args += ["--store", str(cfg.get("store", rec.store))]
    return " ".join(shlex.quote(a) for a in args), True


# --------------------------------------------------------------------------- models: parameters and recipes

@dataclass
class ModelInfo:
    params: Optional[int]
    recipe: str  # short, for the table
    description: str  # long, for the models section
    citation: str = ""
    trained_on: str = ""  # the protocol the evaluated weights were trained on (model card)
    training_command: str = ""


_INFO_CACHE: dict[tuple, ModelInfo] = {}


def _card_for(run: dict) -> dict:
    """The model card of the weights the run evaluated (matched by sha256), or {}."""
    from models_zoo.checkpoint import read_card, shipped_weights

    sha = run.get("checkpoint_sha256")
    candidates = []
    ckpt = str(run.get("checkpoint") or "")
    if ckpt and not ckpt.startswith("none"):
        candidates.append(Path(ckpt))
    if run.get("source") != "user" and run.get("profile"):
        shipped = shipped_weights(str(run["model"]), str(run["profile"]))
        if shipped is not None:
            candidates.append(shipped)
    for weights in candidates:
        try:
            card = read_card(weights)
        except FacebenchError:
            continue
        if card.get("sha256") == sha:
            return card
    return {}


def _shorten(text: str, limit: int = 70) -> str:
    for sep in ("; ", " ("):
        head = text.split(sep)[0]
        if 20 <= len(head) < len(text):
            text = head
            break
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return text


def recipe_of(description: str, card: dict, task: str) -> str:
    """A short recipe: the variant's description cut short, plus what its model card says about training."""
    parts = [_shorten(description)] if description else []
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    adv = training.get("adversarial")
    if isinstance(adv, dict):
        parts.append(f"adv. training PGD-{adv.get('steps', '?')} {adv.get('norm', '')} {adv.get('eps', '')}".rstrip())
    elif card and task == "fr":
        parts.append("no adv. training")
    if training.get("pretrain") and training.get("pretrain") != "none":
        parts.append(f"pre-training: {training['pretrain']}")
    if training.get("label_fraction"):
        parts.append(f"labels {100 * float(training['label_fraction']):g} %")
    if card.get("epochs"):
        parts.append(f"{card['epochs']} epochs")
    return "; ".join(parts) or "-"


def model_info(run: dict) -> ModelInfo:
    """Parameters and recipe of a run's model: from the zoo registry and the model card of the evaluated weights.

    A user model gets its parameter count only from a card beside its checkpoint ('-' otherwise): its
    factory is not imported to render a leaderboard.
    """
    key = (run["model"], run.get("profile"), run.get("checkpoint_sha256"))
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    card = _card_for(run)
    if run.get("source") == "user":
        info = ModelInfo(card.get("parameters"), "user model", f"user model `{run['model']}` (a factory of your own)",
                         str(card.get("citation", "")), str(card.get("protocol", "")), str(card.get("training_command", "")))
    else:
        from models_zoo import VARIANTS

        spec = VARIANTS.get(run["model"]) if run["model"] in VARIANTS else None
        params = card.get("parameters")
        if params is None and spec is not None:
            params = _parameter_count(spec, str(run.get("profile") or "tiny"))
        description = spec.description if spec is not None else ""
        info = ModelInfo(params, recipe_of(description, card, str(run.get("task", ""))), description or "-",
                         spec.citation if spec is not None else "", str(card.get("protocol", "")),
                         str(card.get("training_command", "")))
    _INFO_CACHE[key] = info
    return info


def _parameter_count(spec, profile: str) -> Optional[int]:
    """Parameters of a zoo variant at `profile`; None when it cannot be built here."""
    try:
        return spec.parameter_count(profile)
    except Exception:  # a variant that cannot be built here: the count is unknown, not an error
        return None


def fmt_params(n: Optional[int]) -> str:
    if n is None:
        return "-"
    return f"{n / 1e3:.1f}k" if n < 1e6 else f"{n / 1e6:.2f}M"


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
    from bench.data.media import SUBTYPES

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

    @property
    def run(self) -> dict:
        return self.rec.run

    @property
    def model(self) -> str:
        return str(self.run["model"])

    @property
    def label(self) -> str:
        return f"{self.model} ({self.run.get('profile', '')})"

    @property
    def n(self) -> int:
        return self.clean.n

    @property
    def unreliable(self) -> bool:
        return bool(self.reasons)

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

    def as_dict(self) -> dict:
        """The row as plain data (the shape `leaderboard_rows` has always returned, plus more)."""
        return {
            "model": self.model, "profile": self.run.get("profile", ""), "protocol": self.run["protocol"],
            "suite": self.run["suite"], "goal": self.goal, "run_id": self.run["run_id"], "command": command_of(self.rec)[0],
            "threshold_rule": self.run.get("threshold_rule", ""), "n": self.n, "clean": (self.clean.k, self.clean.n),
            "robust": {b.label: (r.k, r.n) for b, r in self.robust.items()},
            "attacks": sorted({a for v in self.attacks.values() for a in v}), "params": self.info.params,
            "recipe": self.info.recipe, "seconds": self.seconds, "unreliable": self.unreliable, "reasons": self.reasons,
        }


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
    robust, attacks = {}, {}
    for b in sorted(by_budget, key=budget_order):
        broken = ~clean
        for c in by_budget[b]:
            broken = broken | c.arrays["success"].astype(bool)
        robust[b] = Rate(int((~broken).sum()), n)
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
    reasons = []
    for c in cells:
        for r in str(c.unreliable_reason or "").split("; ") if c.unreliable else []:
            r = r.strip() or "marked unreliable (no reason stored)"
            if r not in reasons:
                reasons.append(r)
    seconds = float(sum(float(c.summary.get("seconds", 0.0) or 0.0) for c in cells))
    return Row(rec, info, goal, cells, Rate(int(clean.sum()), n), robust, attacks, breaking, curve_max, min_eps,
               seconds, reasons, fas)


def sweep_budgets(rows: list[Row]) -> set[Budget]:
    """The budgets of a table's suites that bound whole-image attacks: mask-confined budgets (eyeglass, patch)
    and budgets reached only by minimal-eps searches (their eps is the search's ceiling) left out."""
    from attacks import declares

    found = set()
    for r in rows:
        for b in r.robust:
            if b.masked:
                continue
            if all(declares(c.config["attack"], "budget_is_ceiling") for c in r.cells if budget_of(c.config) == b):
                continue
            found.add(b)
    return found


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


# --------------------------------------------------------------------------- page building

PAGE_KINDS = {  # the goals of each page kind are those whose record names it (bench.goals)
    "fr-verification": "FR verification robustness",
    "fr-identification": "FR identification robustness",
    "fas-robustness": "FAS robustness",
}


def page_slug(kind: str, protocol: str) -> str:
    return f"{kind}-{protocol_slug(protocol)}"


def protocol_slug(protocol: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", protocol.lower().replace("->", "-to-")).strip("-")


def is_cross_domain(protocol: str) -> bool:
    return "->" in protocol


@dataclass
class Options:
    figures: bool = True  # draw the plots (md and html); csv and latex need only the tables
    examples: bool = True
    examples_per_model: int = EXAMPLES_PER_MODEL
    log: Callable[[str], None] = lambda s: None


def build_pages(records: list[RunRecord], stores: list[Path], options: Optional[Options] = None) -> list[Page]:
    """The index page first, then one page per task and protocol, then the generalization page."""
    options = options or Options()
    rows = [r for rec in records for r in rows_of_run(rec)]
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        kind = _kind_of(r.goal, str(r.run.get("task", "")))
        groups[(kind, str(r.run["protocol"]))].append(r)
    pages = []
    for (kind, protocol) in sorted(groups, key=lambda k: (list(PAGE_KINDS).index(k[0]), k[1])):
        pages.append(_task_page(kind, protocol, groups[(kind, protocol)], options))
    cross = [rec for rec in records if rec.run.get("task") == "fas" and is_cross_domain(str(rec.run["protocol"]))]
    if cross:
        pages.append(_generalization_page(cross))
    return [_index_page(records, rows, pages, stores)] + pages


def _kind_of(goal: str, task: str) -> str:
    if goal in GOALS:
        return GOALS[goal].page
    return "fas-robustness" if task == "fas" else "fr-verification"


def _protocol_text(protocol: str) -> str:
    from bench.data.protocols import PROTOCOLS

    if protocol in PROTOCOLS:
        p = PROTOCOLS.get(protocol)
        return f"Protocol `{protocol}`: {p.description}. Threshold: {p.threshold_rule}."
    return f"Protocol `{protocol}` (not registered in this facebench)."


DEFINITIONS = [
    "**Robust accuracy** at a budget is the per-sample worst case over every attack stored at that budget "
    "(every attack, every cascade stage, every transfer source): a sample counts as correct only if no attack broke "
    "it; samples already wrong on clean input count as broken. Brackets are 95 % Wilson intervals; **n** is the "
    "number of evaluated pairs / probes / frames of the goal.",
    "Decision thresholds are the ones stored with the run, fitted on the protocol's dev split (FR: at the stated "
    "FAR on dev impostor pairs; FAS: the dev EER threshold), never on test.",
    "**AUC** is the normalised area under the robust-accuracy-vs-eps curve over [0, E], E = the table's headline "
    "budget: (1/E) times the integral of robust accuracy from 0 to E. Robust accuracy at eps is the fraction of "
    "samples for which no stored attack found a successful perturbation of norm <= eps (a sample broken at budget b "
    "counts as broken for every eps >= b; a minimal-eps search gives each sample's breaking budget exactly; "
    "clean-wrong samples count as broken at 0). Equivalently, the mean over samples of min(breaking budget, E) / E. "
    "1 = nothing broken up to E, 0 = everything wrong on clean input. Given only where the row has a minimal-eps "
    "search or at least two budgets of the norm; between budgets the curve is a step, so AUCs compare best between "
    "rows of the same suite.",
    "**median min eps** is the median, over the clean-correct samples, of the smallest perturbation norm at which "
    "a minimal-perturbation attack (`min-eps` bisection, `cw-l2`) reached the goal (`> E` when more than half were "
    "never broken up to the search ceiling E); '-' when the suite has no such attack. Linf in units of 1/255.",
    "**time** is the sum of the stored compute seconds of the row's cells (cells reused from earlier runs count "
    "with their own time). **checks**: `ok`, or `unreliable` when an integrity check failed for a contributing "
    "cell (reason in the numbered note under the table).",
]


def _task_page(kind: str, protocol: str, rows: list[Row], options: Options) -> Page:
    title_kind = PAGE_KINDS[kind]
    goals = tuple(g for g in GOALS if GOALS[g].page == kind)
    slug = page_slug(kind, protocol)
    page = Page(slug, f"{title_kind}: {protocol}")
    page.blocks += [Paragraph(_protocol_text(protocol)), Paragraph("[Back to the index](README.md)")]
    page.blocks += [Heading("How to read these tables", 2)] + [Paragraph(d) for d in DEFINITIONS]
    if kind == "fas-robustness":
        page.blocks.append(Paragraph(
            "**test ACER / HTER** are clean error rates on the protocol's whole test split at the stored dev EER "
            "threshold, measured by the run and stored with it (`test_metrics`). HTER = (pooled APCER + BPCER) / 2; "
            "ACER = (worst-species APCER + BPCER) / 2. Runs stored before facebench measured them fall back to the "
            "run's evaluated test frames (APCER from `spoof-to-live` cells, BPCER from `live-to-spoof` cells; '-' "
            "where there are none). **dev HTER** is the run's own dev-split figure."))
    by_goal: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_goal[r.goal].append(r)
    order = [g for g in goals if g in by_goal] + sorted(g for g in by_goal if g not in goals)
    for goal in order:
        page.blocks += _goal_section(kind, protocol, slug, goal, by_goal[goal], options)
    page.blocks += _models_section(rows) + _reproduce_section(rows)
    return page


def _goal_section(kind: str, protocol: str, slug: str, goal: str, rows: list[Row], options: Options) -> list:
    from bench import plots

    headline = headline_budget(rows)
    rows = sort_rows(rows, headline)
    budgets = sorted({b for r in rows for b in r.robust}, key=budget_order)
    blocks: list = [Heading(f"{goal}", 2, anchor=f"{slug}-{anchor_of(goal)}")]
    if headline is not None:
        blocks.append(Paragraph(
            f"Headline budget: **{headline.label}**, the largest "
            f"{'Linf' if headline.norm == 'linf' else 'L2'} budget of the suites on this table; rows are sorted by "
            f"robust accuracy there (best first); ties by robust accuracy at the next smaller budgets in turn, then by "
            f"clean accuracy."))
    table = _goal_table(kind, slug, goal, rows, budgets, headline)
    blocks.append(table)
    attacks_at = []
    for b in budgets:
        names = sorted({a for r in rows for a in r.attacks.get(b, [])})
        attacks_at.append(f"{b.label}: {', '.join(names)}")
    blocks.append(Paragraph("Attacks per budget (union over the rows): " + "; ".join(attacks_at) + "."))
    base = f"{slug}-{anchor_of(goal)}"
    transfer = transfer_matrix(rows, headline)
    if transfer is not None:
        budget, sources, targets, values = transfer
        blocks.append(_transfer_table(base, goal, budget, sources, targets, values))
    if not options.figures:
        return blocks
    curves = [r for r in rows if r.breaking]
    if curves:
        png = plots.success_vs_eps(rows, title=f"{goal} on {protocol}")
        blocks.append(Figure(f"{base}-success-vs-eps.png",
                             f"Success rate vs eps, {goal} on {protocol}: the fraction of samples broken at a budget <= eps "
                             "(step line; clean-wrong samples count at eps 0) and, as markers with 95 % Wilson "
                             "intervals, the worst case at each stored budget (1 - robust accuracy).", png))
    if headline is not None and any(headline in r.robust for r in rows):
        png = plots.robust_vs_clean(rows, headline, title=f"{goal} on {protocol}")
        blocks.append(Figure(f"{base}-robust-vs-clean.png",
                             f"Robust accuracy at {headline.label} vs clean accuracy, {goal} on {protocol} "
                             "(95 % Wilson intervals).", png))
    if transfer is not None:
        png = plots.transfer_heatmap(sources, targets, values, title=f"Transfer success rate, {goal}, {budget.label}")
        blocks.append(Figure(f"{base}-transfer.png",
                             f"Transfer matrix at {budget.label}, {goal} on {protocol}: success rate (%) over the "
                             "target's clean-correct samples of examples crafted on the source (row) and scored on the "
                             "target (column); the diagonal is the target's own white-box worst case at that budget.",
                             png))
    if goal == "spoof-to-live":
        blocks += _fas_score_figure(base, protocol, rows, headline)
    if options.examples and headline is not None:
        blocks += _examples_figure(base, goal, protocol, rows, headline, options)
    return blocks


def _goal_table(kind: str, slug: str, goal: str, rows: list[Row], budgets: list[Budget],
                headline: Optional[Budget]) -> Table:
    main_norm = headline.norm if headline is not None else "linf"
    tops = curve_tops(rows, headline)
    # AUC and minimal-eps columns: the headline's norm always, other norms where some row has a value
    auc_norms = [n for n in tops if n == main_norm or any(r.auc(n, tops[n]) is not None for r in rows)]
    min_norms = [main_norm] + [n for n in ("linf", "l2") if n != main_norm and any(n in r.min_eps for r in rows)]
    fr_ver = kind == "fr-verification"
    fas = kind == "fas-robustness"
    dev_rule = sorted({str(r.rec.dev.get("threshold_rule", r.run.get("threshold_rule", ""))) for r in rows})
    dev_header = "dev TAR" + (f" @ {dev_rule[0].replace('dev ', '')}" if len(dev_rule) == 1 else "")
    headers = ["#", "model", "params", "recipe", "suite"]
    if fr_ver:
        headers.append(dev_header)
    if fas:
        headers += ["dev HTER", "test ACER", "test HTER"]
    headers.append("clean acc")
    headers += [f"robust @ {b.label}" for b in budgets]
    auc_headers = {n: f"AUC {n} [0, {format_eps(n, tops[n])}]" for n in auc_norms}
    headers += list(auc_headers.values()) + [f"median min eps ({n})" for n in min_norms]
    headers += ["n", "time (s)", "checks", "run"]
    align = ["r", "l", "r", "l", "l"] + ["r"] * (len(headers) - 5 - 2) + ["l", "l"]
    notes: list[str] = []
    table_rows, raw = [], []
    for i, r in enumerate(rows, 1):
        cells = [Cell(str(i)), Cell(r.model, code=True, suffix=f" ({r.run.get('profile', '')})"),
                 Cell(fmt_params(r.info.params)), Cell(r.info.recipe), Cell(str(r.run["suite"]))]
        rec_raw: dict = {"rank": i, "model": r.model, "profile": r.run.get("profile", ""), "protocol": r.run["protocol"],
                         "goal": goal, "suite": r.run["suite"], "params": r.info.params, "recipe": r.info.recipe}
        if fr_ver:
            dev = r.rec.dev
            tar, ng = dev.get("dev_tar"), dev.get("dev_genuine_pairs")
            if tar is not None and ng:
                dr = Rate(int(round(float(tar) * int(ng))), int(ng))
                cells.append(Cell(dr.pct() + ("" if len(dev_rule) == 1 else f" ({dev.get('threshold_rule', '')})")))
                rec_raw.update(dr.raw("dev tar"))
                rec_raw["dev threshold rule"] = dev.get("threshold_rule", "")
            else:
                cells.append(Cell("-"))
        if fas:
            dev_hter = r.rec.dev.get("dev_hter")
            cells.append(Cell(f"{100 * float(dev_hter):.1f}" if dev_hter is not None else "-"))
            f = r.fas
            acer = f.acer if f is not None else None
            hter = f.hter if f is not None else None
            cells.append(Cell(f"{100 * acer:.1f}" if acer is not None else "-"))
            cells.append(Cell(f"{100 * hter:.1f}" if hter is not None else "-"))
            rec_raw.update({"dev hter": dev_hter, "test acer": acer, "test hter": hter,
                            "test spoof frames": f.apcer_pooled.n if f is not None and f.apcer_pooled else None,
                            "test live frames": f.bpcer.n if f is not None and f.bpcer else None})
        cells.append(Cell(r.clean.pct()))
        rec_raw.update(r.clean.raw("clean acc"))
        for b in budgets:
            rate = r.robust.get(b)
            cells.append(Cell(rate.pct() if rate is not None else "-"))
            if rate is not None:
                rec_raw.update(rate.raw(f"robust {b.label}"))
        for n_, header in auc_headers.items():
            auc = r.auc(n_, tops[n_])
            cells.append(Cell(f"{auc:.3f}" if auc is not None else "-"))
            rec_raw[header] = auc
        for n_ in min_norms:
            me = r.min_eps.get(n_)
            if me is None:
                cells.append(Cell("-"))
                continue
            med, _, search = me
            cells.append(Cell(f"> {format_eps(n_, search, measured=True)}" if not np.isfinite(med)
                              else format_eps(n_, med, measured=True)))
            rec_raw[f"median min eps {n_}"] = med
        cells.append(Cell(str(r.n)))
        cells.append(Cell(f"{r.seconds:.1f}"))
        if r.unreliable:
            refs = []
            for reason in r.reasons:
                if reason not in notes:
                    notes.append(reason)
                refs.append(str(notes.index(reason) + 1))
            cells.append(Cell(f"unreliable (note {', '.join(refs)})"))
        else:
            cells.append(Cell("ok"))
        cells.append(Cell(str(r.run["run_id"]), href=f"#run-{r.run['run_id']}", code=True))
        rec_raw.update({"n": r.n, "seconds": r.seconds, "unreliable": r.unreliable, "unreliable reason": "; ".join(r.reasons),
                        "headline budget": headline.label if headline else "", "run id": r.run["run_id"],
                        "command": command_of(r.rec)[0], "store": str(r.rec.store)})
        table_rows.append(cells)
        raw.append(rec_raw)
    caption = f"{goal}: robust accuracy (%) per budget" + (f", sorted at {headline.label}" if headline else "")
    return Table(f"{slug}-{anchor_of(goal)}", caption, headers, table_rows, raw, notes, align, print_skip=("recipe", "run"))


def transfer_matrix(rows: list[Row], headline: Optional[Budget]):
    """(budget, sources, targets, values %) of the transfer cells of a goal's rows, or None without any.

    Values are success rates over the target's clean-correct samples; the diagonal (source = target) is the
    target's white-box worst case (every non-transfer attack) at that budget.
    """
    cells = [(r, c) for r in rows for c in r.cells if c.config["attack"] == "transfer"]
    if not cells:
        return None
    budgets = {budget_of(c.config) for _, c in cells}
    budget = headline if headline in budgets else max(budgets, key=lambda b: (b.norm == "linf", b.eps))
    targets = sorted({r.model for r, c in cells if budget_of(c.config) == budget})
    sources = sorted({str(c.config["params"].get("source")) for r, c in cells if budget_of(c.config) == budget} | set(targets))
    values = np.full((len(sources), len(targets)), np.nan)
    for r, c in cells:
        if budget_of(c.config) != budget:
            continue
        att = c.arrays["attacked"].astype(bool)
        if att.any():
            values[sources.index(str(c.config["params"].get("source"))), targets.index(r.model)] = \
                100 * float(c.arrays["success"][att].mean())
    for r in rows:
        if r.model not in targets:
            continue
        own = [c for c in r.cells if c.config["attack"] != "transfer" and budget_of(c.config) == budget]
        if not own:
            continue
        att = own[0].arrays["attacked"].astype(bool)
        broken = np.zeros_like(att)
        for c in own:
            broken |= c.arrays["success"].astype(bool)
        if att.any():
            values[sources.index(r.model), targets.index(r.model)] = 100 * float(broken[att].mean())
    return budget, sources, targets, values


def _transfer_table(base: str, goal: str, budget: Budget, sources: list[str], targets: list[str], values: np.ndarray) -> Table:
    headers = ["source / target"] + targets
    rows, raw = [], []
    for i, s in enumerate(sources):
        rows.append([Cell(s, code=True)] + [Cell("-" if np.isnan(v) else f"{v:.1f}") for v in values[i]])
        raw.append({"source": s, **{t: (None if np.isnan(v) else float(v)) for t, v in zip(targets, values[i])}})
    return Table(f"{base}-transfer", f"Transfer success rate (%) at {budget.label}, {goal} (diagonal: white-box)",
                 headers, rows, raw, [], ["l"] + ["r"] * len(targets))


def _fas_score_figure(base: str, protocol: str, rows: list[Row], headline: Optional[Budget]) -> list:
    from bench import plots

    if headline is None:
        return []
    data = []
    for r in rows:
        if r.fas is None or r.fas.spoof_scores is None:
            continue
        spoof_adv = _worst_adv(r.cells, headline, "spoof-to-live")
        live_row = [c for c in r.rec.cells if c.config["goal"] == "live-to-spoof"]
        live_adv = _worst_adv(live_row, headline, "live-to-spoof") if live_row else None
        data.append(plots.ScoreSet(r.model, r.fas.threshold, r.fas.spoof_scores, spoof_adv, r.fas.live_scores, live_adv))
    if not data:
        return []
    png, kinds = plots.fas_roc(data, headline.label, title=f"FAS scores on {protocol}")
    roc = [d.label for d, k in zip(data, kinds) if k == "roc"]
    hist = [d.label for d, k in zip(data, kinds) if k == "hist"]
    parts = []
    if roc:
        parts.append(f"ROC curves ({', '.join(roc)}): x = APCER (spoof frames accepted as live), y = 1 - BPCER (live "
                     "frames accepted), over every threshold, for clean spoof vs clean live scores, attacked spoofs "
                     f"(worst case over the spoof-to-live attacks at {headline.label}) vs clean live scores, and, where "
                     "live-to-spoof cells exist, attacked spoofs vs attacked live frames; the dot is the stored dev "
                     "threshold. Scores are those of the evaluated test frames only.")
    if hist:
        parts.append(f"No live frames are stored for {', '.join(hist)} (the suite ran spoof-to-live only), so no ROC "
                     "can be drawn: their panels show the distribution of the spoof frames' liveness scores before "
                     f"and after the worst-case attack at {headline.label}, with the dev threshold (right of it = "
                     "accepted as live). This is a score shift, not a ROC.")
    return [Figure(f"{base}-scores.png", " ".join(parts), png)]


def _worst_adv(cells: list[CellResult], budget: Budget, goal: str) -> Optional[np.ndarray]:
    """Per sample, the attacker's best stored score over the cells at `budget` (spoof-to-live: highest)."""
    at = [c for c in cells if c.config["goal"] == goal and budget_of(c.config) == budget]
    if not at:
        return None
    scores = np.stack([c.arrays["adv_score"].astype(np.float64) for c in at])
    return scores.max(axis=0) if goal == "spoof-to-live" else scores.min(axis=0)


def _examples_figure(base: str, goal: str, protocol: str, rows: list[Row], headline: Budget, options: Options) -> list:
    from bench import plots
    from bench.examples import regenerate_examples

    sets, notes = [], []
    for r in rows:
        options.log(f"examples: {r.model} {goal} at {headline.label}")
        ex = regenerate_examples(r.rec, goal, headline, options.examples_per_model)
        if ex.error:
            notes.append(f"`{r.model}`: {ex.error}")
        else:
            sets.append(ex)
    blocks: list = []
    if sets:
        png = plots.examples_grid(sets, title=f"{goal} on {protocol}")
        blocks.append(Figure(
            f"{base}-examples.png",
            f"Example adversarial inputs, {goal} on {protocol}, regenerated for this page (the store holds no "
            f"images): per model, the first {options.examples_per_model} clean-correct samples of the run's items, "
            f"attacked again with the first attack of the first cell at {headline.label} (a cascade's first stage). "
            "Per sample: clean input, adversarial input, and the perturbation magnified (mid-grey = 0, the factor "
            "is in the title). The titles give the decision scores and whether the goal was reached; these are "
            "fresh runs of the attack, so they need not match the stored per-sample results exactly.", png))
    if notes:
        blocks.append(Paragraph("Examples not regenerated for: " + "; ".join(notes) + "."))
    return blocks


def _models_section(rows: list[Row]) -> list:
    seen, items = set(), []
    for r in sorted(rows, key=lambda r: r.model):
        key = (r.model, r.run.get("profile"), r.run.get("checkpoint_sha256"))
        if key in seen:
            continue
        seen.add(key)
        i = r.info
        extra = []
        if i.trained_on:
            extra.append(f"trained on `{i.trained_on}`")
        if i.training_command:
            extra.append(f"training: `{i.training_command}`")
        if i.citation:
            extra.append(f"cite: {i.citation}")
        items.append(f"`{r.model}` ({r.run.get('profile', '')}, {fmt_params(i.params)} parameters, weights sha256 "
                     f"`{str(r.run.get('checkpoint_sha256', ''))[:12]}`): {i.description}"
                     + (". " + "; ".join(extra) if extra else ""))
    return [Heading("Models", 2), BulletList(items)]


def _reproduce_section(rows: list[Row]) -> list:
    seen, items, anchors = set(), [], []
    for r in sorted(rows, key=lambda r: r.run["run_id"]):
        rid = r.run["run_id"]
        if rid in seen:
            continue
        seen.add(rid)
        cmd, rebuilt = command_of(r.rec)
        items.append(f"`{rid}`: `{r.model}` ({r.run.get('profile', '')}), protocol `{r.run['protocol']}`, suite "
                     f"`{r.run['suite']}`, device {r.run.get('device', '?')}, store `{r.rec.store}`: `{cmd}`"
                     + (" (rebuilt from the run's stored configuration: the run stored no command line)" if rebuilt else ""))
        anchors.append(f"run-{rid}")
    return [Heading("Reproduce", 2), Paragraph("Each run id in the tables links here: the command that reproduces it."),
            BulletList(items, anchors)]


def _generalization_page(records: list[RunRecord]) -> Page:
    page = Page(GENERALIZATION, "FAS cross-domain generalization")
    page.blocks += [
        Paragraph("[Back to the index](README.md)"),
        Paragraph(
            "Clean error rates of each FAS model on the cross-domain protocols (`A->B`: threshold at the EER of the "
            "source domains' dev split, test on the unseen target). **dev EER / ACER / HTER** come from the run's "
            "dev-split evaluation (stored with the run). **test** rates are the run's clean error rates on the "
            "target's whole test split at the stored dev threshold (`test_metrics`): HTER = (pooled APCER + BPCER) "
            "/ 2, ACER = (worst-species APCER + BPCER) / 2, with 95 % Wilson intervals on APCER and BPCER. Nothing "
            "is fitted on test. Runs stored before facebench measured them fall back to the evaluated frames' "
            "stored clean scores (APCER from spoof-to-live cells, BPCER from live-to-spoof cells; '-' where there "
            "are none). Rows are sorted by test HTER (lowest first), rows "
            "without it last."),
        Paragraph(
            "**trained on** is the protocol in the model card of the evaluated weights: a model evaluated on a "
            "protocol other than the one it was trained on may have seen the target domain in training, and its "
            "row is then not a cross-domain result (marked `seen?`)."),
    ]
    best: dict[tuple, RunRecord] = {}
    for rec in records:
        key = (rec.run["model"], rec.run.get("profile"), rec.run["protocol"])
        fc = fas_clean(rec.cells, rec.run)
        score = (fc is not None and fc.bpcer is not None, fc is not None and fc.apcer_pooled is not None, _started(rec.run))
        if key not in best or score > best[key][1]:
            best[key] = (rec, score)
    protocols = sorted({k[2] for k in best})
    models = sorted({(k[0], k[1]) for k in best})
    # the matrix
    headers = ["model"] + [f"test HTER {p}" for p in protocols]
    mrows, mraw = [], []
    for m, prof in models:
        cells, raw = [Cell(m, code=True, suffix=f" ({prof})")], {"model": m, "profile": prof}
        for p in protocols:
            rec = best.get((m, prof, p), (None,))[0]
            fc = fas_clean(rec.cells, rec.run) if rec is not None else None
            h = fc.hter if fc is not None else None
            cells.append(Cell(f"{100 * h:.1f}" if h is not None else "-"))
            raw[p] = h
        mrows.append(cells)
        mraw.append(raw)
    page.blocks += [Heading("Overview", 2),
                    Table("fas-generalization-overview", "Test HTER (%) per model and cross-domain protocol", headers,
                          mrows, mraw, [], ["l"] + ["r"] * len(protocols))]
    for p in protocols:
        recs = [best[k][0] for k in best if k[2] == p]
        page.blocks += [Heading(p, 2, anchor=f"gen-{protocol_slug(p)}"), Paragraph(_protocol_text(p)),
                        _generalization_table(p, recs)]
    rows = [r for rec in records for r in rows_of_run(rec)]
    page.blocks += _models_section(rows) + _reproduce_section(rows)
    return page


def _generalization_table(protocol: str, recs: list[RunRecord]) -> Table:
    headers = ["#", "model", "params", "recipe", "trained on", "dev EER", "dev ACER", "dev HTER", "test APCER",
               "test BPCER", "test HTER", "test ACER", "spoof / live frames", "run"]
    entries = []
    for rec in recs:
        fc = fas_clean(rec.cells, rec.run)
        entries.append((rec, fc, fc.hter if fc is not None else None))
    entries.sort(key=lambda e: (e[2] is None, e[2] if e[2] is not None else 0.0, e[0].run["model"]))
    rows, raw = [], []
    for i, (rec, fc, hter) in enumerate(entries, 1):
        info, dev = model_info(rec.run), rec.dev
        trained = info.trained_on or "-"
        if info.trained_on and info.trained_on != protocol:
            trained += " (seen?)"

        def pct(v):
            return f"{100 * float(v):.1f}" if v is not None else "-"

        ap = fc.apcer_pooled if fc is not None else None
        bp = fc.bpcer if fc is not None else None
        acer = fc.acer if fc is not None else None
        rows.append([Cell(str(i)), Cell(str(rec.run["model"]), code=True, suffix=f" ({rec.run.get('profile', '')})"), Cell(fmt_params(info.params)), Cell(info.recipe),
                     Cell(trained), Cell(pct(dev.get("dev_eer"))), Cell(pct(dev.get("dev_acer"))), Cell(pct(dev.get("dev_hter"))),
                     Cell(ap.pct() if ap else "-"), Cell(bp.pct() if bp else "-"), Cell(pct(hter)), Cell(pct(acer)),
                     Cell(f"{ap.n if ap else 0} / {bp.n if bp else 0}"),
                     Cell(str(rec.run["run_id"]), href=f"#run-{rec.run['run_id']}", code=True)])
        r = {"rank": i, "model": rec.run["model"], "profile": rec.run.get("profile", ""), "protocol": protocol,
             "params": info.params, "recipe": info.recipe, "trained on": info.trained_on,
             "dev eer": dev.get("dev_eer"), "dev acer": dev.get("dev_acer"), "dev hter": dev.get("dev_hter"),
             "test hter": hter, "test acer": acer, "threshold": fc.threshold if fc else None,
             "run id": rec.run["run_id"], "command": command_of(rec)[0], "store": str(rec.store)}
        if ap:
            r.update(ap.raw("test apcer"))
        if bp:
            r.update(bp.raw("test bpcer"))
        if fc is not None and fc.apcer_species:
            r.update({f"test apcer {sp}": v for sp, v in fc.apcer_species.items()})
        raw.append(r)
    return Table(f"fas-generalization-{protocol_slug(protocol)}", f"{protocol}: clean error rates (%)", headers, rows, raw, [],
                 ["r", "l", "r", "l", "l"] + ["r"] * 8 + ["l"], print_skip=("recipe", "run"))


def _index_page(records: list[RunRecord], rows: list[Row], pages: list[Page], stores: list[Path]) -> Page:
    page = Page(INDEX, "facebench leaderboards")
    ended = max((str(rec.run.get("ended", "")) for rec in records), default="")
    page.blocks.append(Paragraph(
        f"Rendered by `facebench leaderboard` from {len(records)} complete run(s)"
        + (f" (the newest ended {ended})" if ended else "") + " in " + ", ".join(f"`{s}`" for s in stores)
        + ". For each (model, profile, protocol, suite) the newest complete run is shown. Robust accuracy is the "
        "per-sample worst case over every attack at a budget; thresholds come from the dev split, never from test; "
        "rates carry 95 % Wilson intervals. The columns and plots are described in `docs/leaderboards.md` of the "
        "facebench repository."))
    if not records:
        page.blocks.append(Paragraph("No complete runs in the store yet: run `facebench run --model ...` first."))
        return page
    prows, praw = [], []
    by_page: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_page[page_slug(_kind_of(r.goal, str(r.run.get("task", ""))), str(r.run["protocol"]))].append(r)
    for p in pages:
        if p.slug == GENERALIZATION:
            n_models = len({(rec.run["model"], rec.run.get("profile")) for rec in records
                            if rec.run.get("task") == "fas" and is_cross_domain(str(rec.run["protocol"]))})
            prows.append([Cell(p.title, href=f"{p.slug}.md"), Cell("fas"), Cell("cross-domain protocols"),
                          Cell(str(n_models)), Cell("clean test HTER / ACER"), Cell("-")])
            praw.append({"page": p.slug, "models": n_models})
            continue
        rs = by_page.get(p.slug, [])
        goals = [g for g in GOALS if any(r.goal == g for r in rs)]
        heads = sorted({headline_budget([r for r in rs if r.goal == g]).label for g in goals
                        if headline_budget([r for r in rs if r.goal == g]) is not None})
        prows.append([Cell(p.title, href=f"{p.slug}.md"), Cell(str(rs[0].run.get("task", "")) if rs else "-"),
                      Cell(str(rs[0].run["protocol"]) if rs else "-"), Cell(str(len({(r.model, r.run.get('profile')) for r in rs}))),
                      Cell(", ".join(goals)), Cell(", ".join(heads) or "-")])
        praw.append({"page": p.slug, "models": len({r.model for r in rs}), "goals": ", ".join(goals), "headline": ", ".join(heads)})
    page.blocks += [Heading("Pages", 2),
                    Table("index-pages", "", ["page", "task", "protocol", "models", "goals", "headline budget"], prows, praw)]
    # one line per model: where it appears and its headline robust accuracy per goal
    mrows, mraw = [], []
    seen: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        seen[(r.model, str(r.run.get("profile", "")))].append(r)
    for (m, prof), rs in sorted(seen.items()):
        links = sorted({(page_slug(_kind_of(r.goal, str(r.run.get('task', ''))), str(r.run['protocol'])), str(r.run['protocol']))
                        for r in rs})
        heads = []
        for r in rs:
            peers = by_page[page_slug(_kind_of(r.goal, str(r.run.get("task", ""))), str(r.run["protocol"]))]
            h = headline_budget([x for x in peers if x.goal == r.goal])
            if h is not None and h in r.robust:
                heads.append(f"{r.goal} @ {h.label} on {r.run['protocol']}: {100 * r.robust[h].value:.1f}")
        info = rs[0].info
        flag = " (unreliable cells)" if any(r.unreliable for r in rs) else ""
        mrows.append([Cell(m, code=True, suffix=f" ({prof})"), Cell(str(rs[0].run.get("task", ""))), Cell(fmt_params(info.params)),
                      Cell(info.recipe), Cell("; ".join(heads) + flag or "-"),
                      Cell(", ".join(p for _, p in links))])
        mraw.append({"model": m, "profile": prof, "params": info.params, "recipe": info.recipe,
                     "headline robust": "; ".join(heads), "protocols": ", ".join(p for _, p in links)})
    page.blocks += [Heading("Models", 2),
                    Table("index-models", "", ["model", "task", "params", "recipe", "headline robust acc (%)", "protocols"],
                          mrows, mraw)]
    return page


# --------------------------------------------------------------------------- writing

@dataclass
class Output:
    path: Path
    data: object


def render(pages: list[Page], fmt: str) -> list[Output]:
    """The files of one output format, in memory (paths relative to the output directory)."""
    if fmt == "md":
        out = [Output(Path(f"{p.slug}.md"), page_markdown(p)) for p in pages]
        out += [Output(Path("plots") / f.name, f.png) for p in pages for f in p.figures()]
        return out
    if fmt == "html":
        return [Output(Path(HTML_FILE), site_html("facebench leaderboards", pages))]
    if fmt == "csv":
        return [Output(Path(f"{t.id}.csv"), table_csv(t)) for p in pages for t in p.tables()]
    if fmt == "latex":
        return [Output(Path(f"{t.id}.tex"), table_latex(t)) for p in pages for t in p.tables() if t.rows]
    raise BadInputError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")


def write_leaderboard(store_paths: list[Path], out_dir: Path, fmt: str = "md", examples: bool = False,
                      log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Render the leaderboards of `store_paths` into `out_dir` in format `fmt`; returns the files written.

    Every store is read and every file rendered in memory first: a bad store (or a bad output directory)
    raises before anything is written. Each file is then written atomically (temporary name + rename).
    """
    if fmt not in FORMATS:
        raise BadInputError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"--out {out_dir} exists and is not a directory")
    if not store_paths:
        raise BadInputError("no store given")
    records = collect_runs([Path(p) for p in store_paths])
    figures = fmt in ("md", "html")
    pages = build_pages(records, [Path(p) for p in store_paths], Options(figures=figures, examples=examples and figures, log=log))
    outputs = render(pages, fmt)
    written = []
    for o in outputs:
        path = out_dir / o.path
        write_atomic(path, o.data)
        written.append(path)
    return written
