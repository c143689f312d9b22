"""Grid-level cases: what the cascade saves over running its attacks independently, and peak memory."""
from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from attacks import make_attack
from bench.batching import batched_scores
from bench.cells import attack_cell, attack_cells_together, cascade_cell
from bench.suites import standard_cascade
from bench.tasks.items import GoalItems
from perf.cases import CASES, GOAL, MODEL, CaseResult, Settings, contender_rows, paired, register_case
from perf.timing import Contender, interleaved
from perf.workloads import workload

CASCADE_MODEL, CASCADE_GOAL, CASCADE_EPS = "facenet-baseline", "impersonation", 8 / 255
SQUARE_QUERIES = 500  # the harness caps the cascade's Square stage (5000 in `standard`) to stay within minutes


def cascade_stages(max_queries: int) -> list:
    stages = []
    for st in standard_cascade("linf"):
        params = dict(st.params)
        if st.attack == "square":
            params["max_queries"] = max_queries
        stages.append(make_attack(st.attack, params))
    return stages


def goal_workload(goal: str, settings: Settings):
    """The FR workload of `goal` as the runner's cell functions take it: (workload, items, clean scores)."""
    w = workload(CASCADE_MODEL, goal, settings.batch, settings.device, settings.profile, settings.seed)
    return w, GoalItems(goal, w.x, w.task, [f"s{i}" for i in range(w.batch)]), batched_scores(w.task, w.x, w.batch)


def square_budget(settings: Settings) -> int:
    """Square's queries in a case: `--square-queries` (default SQUARE_QUERIES); 50 in a `--quick` smoke run."""
    return 50 if settings.steps < 10 else (settings.square_queries or SQUARE_QUERIES)


@register_case("cascade-cost", "the standard Linf cascade (APGD -> APGD-T -> DeepFool -> Square) on the samples "
               "still unbroken, vs the same four attacks each run on every sample (worst case taken after)")
def cascade_cost(settings: Settings) -> CaseResult:
    w, items, clean = goal_workload(CASCADE_GOAL, settings)
    queries = square_budget(settings)
    stages = cascade_stages(queries)
    seed = settings.seed
    out: dict[str, object] = {}

    def run_cascade():
        out["cascade"] = cascade_cell(items, clean, stages, "linf", CASCADE_EPS, w.batch, seed, attack_task=w.view)
        return out["cascade"]

    def run_independent():
        # each stage with the generator the cascade gives it (seeded from the seed and its position)
        out["independent"] = [attack_cell(items, clean, a, "linf", CASCADE_EPS, w.batch, (seed + 7919 * (k + 1)) % 2**63,
                                          attack_task=w.view) for k, a in enumerate(stages)]
        return out["independent"]

    cs = [Contender("cascade", run_cascade, w.batch, "grid", "facebench", "cascade_cell: each stage on the unbroken samples"),
          Contender("independent", run_independent, w.batch, "grid", "facebench", "attack_cell per stage on every sample")]
    repeats = max(1, min(settings.repeats, 3))
    timings = interleaved(cs, repeats, settings.device, warmup=0)
    casc = out["cascade"].arrays["success"]
    indep = np.any([a["success"] for a in out["independent"]], axis=0)
    t_c, t_i = timings["cascade"].median, timings["independent"].median
    rows = contender_rows(cs, timings, None)
    summary = {"cascade_over_independent": round(t_c / t_i, 4), "target": 0.5, "within_target": t_c / t_i <= 0.5,
               "broken_cascade": int(casc.sum()), "broken_independent": int(indep.sum()),
               "samples_differing": int((casc != indep).sum()),
               "stage_attacked": out["cascade"].stage_attacked, "stage_broken": out["cascade"].stage_broken}
    notes = [f"Square at {queries} queries (standard: 5000)",
             "per-sample results can differ where a stage draws random numbers for a batch whose make-up differs "
             "between the two (later cascade stages see only the unbroken samples): samples_differing counts them"]
    attack = {"cascade": [a.name for a in stages], "norm": "linf", "eps": CASCADE_EPS, "eps_255": 8, "seed": seed}
    return CaseResult("cascade-cost", CASES["cascade-cost"].description, w.describe(), attack, rows, summary, notes)


MEMORY_MODELS = ("facenet-baseline", "multiloss-sota")  # the largest FR and FAS zoo models
MEMORY_LIMIT_GIB = 3.0


@register_case("peak-memory", "peak resident memory of `facebench run --attack-suite full` on the largest FR and FAS "
               "zoo models (a fresh process each, CPU)")
def peak_memory(settings: Settings) -> CaseResult:
    quick = settings.steps < 10  # --quick: a smoke run of the quick suite on one model
    samples, suite = (2, "quick") if quick else (8, "full")
    rows, peaks = [], {}
    for model in MEMORY_MODELS[:1] if quick else MEMORY_MODELS:
        start = time.perf_counter()
        code = ("import resource, sys; from bench.cli import main; sys.argv = ['facebench'] + sys.argv[1:]\n"
                "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
                "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
                "sys.exit(code)")
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.run([sys.executable, "-c", code, "run", "--model", model, "--attack-suite", suite,
                                   "--samples", str(samples), "--device", "cpu", "--store", f"{d}/m.h5", "-q"],
                                  capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"peak-memory: the run of {model} failed: {proc.stderr.strip().splitlines()[-1:]}")
        kib = int(next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_KIB")))
        peaks[model] = round(kib / 1024**2, 3)
        seconds = time.perf_counter() - start
        rows.append({"name": model, "kind": "run", "library": "facebench", "note": f"{suite} suite, {samples} samples",
                     "samples": samples, "seconds": [round(seconds, 3)], "median_s": round(seconds, 3),
                     "samples_per_s": round(samples / seconds, 3), "ratio_to_bare": None, "paired_ratio_to_bare": None,
                     "peak_gib": peaks[model]})
    summary = {"peak_gib": peaks, "limit_gib": MEMORY_LIMIT_GIB, "within_limit": max(peaks.values()) <= MEMORY_LIMIT_GIB}
    notes = ["ru_maxrss of each run's own process (models, data, attacks, the store writes); per-sample results stream "
             "to the store cell by cell, so the peak grows with the batch size, not with --samples"]
    return CaseResult("peak-memory", CASES["peak-memory"].description, {"models": list(peaks)},
                      {"suite": suite, "samples": samples}, rows, summary, notes)



BUDGET_EPS = (2 / 255, 4 / 255, 8 / 255)  # the quick suite's budgets
BUDGET_GOAL = "impersonation"


@register_case("budgets-together", "PGD at the quick suite's three Linf budgets run as one stacked batch (eps per "
               "sample) vs one pass per budget, as the runner computes cells (attack_cells_together vs attack_cell)")
def budgets_together(settings: Settings) -> CaseResult:
    w, items, clean = goal_workload(BUDGET_GOAL, settings)
    attack = make_attack("pgd", {"steps": settings.steps})
    budgets = [(eps, settings.seed + k) for k, eps in enumerate(BUDGET_EPS)]
    out: dict[str, object] = {}

    def apart():
        out["apart"] = [attack_cell(items, clean, attack, "linf", eps, w.batch, seed, attack_task=w.view)
                        for eps, seed in budgets]

    def together():
        out["together"] = attack_cells_together(items, clean, attack, "linf", budgets, w.batch, w.view)

    cs = [Contender("budgets apart", apart, w.batch * len(budgets), "grid", "facebench", "attack_cell per budget"),
          Contender("budgets together", together, w.batch * len(budgets), "grid", "facebench",
                    f"one stacked batch of {len(budgets)} x {w.batch}")]
    timings = interleaved(cs, settings.repeats, settings.device, settings.warmup)
    if out["together"] is None:
        raise RuntimeError("budgets-together: the stacked batch did not fit in memory; pass a smaller --batch")
    differ = sum(int((a["success"] != t["success"]).sum()) for a, t in zip(out["apart"], out["together"]))
    t_a, t_t = timings["budgets apart"].median, timings["budgets together"].median
    rows = contender_rows(cs, timings, None)
    summary = {"together_over_apart": round(t_t / t_a, 4), "paired_together_over_apart": round(paired(
               timings["budgets together"], timings["budgets apart"]), 4), "samples_differing": differ,
               "broken_per_budget": [int(a["success"].sum()) for a in out["apart"]]}
    notes = ["the gain is in fewer, larger batches: a GPU that one budget's batch leaves idle; on a CPU the work per "
             "sample-step is the same either way"]
    attack_desc = {"attack": "pgd", "norm": "linf", "eps_255": [round(e * 255, 3) for e in BUDGET_EPS],
                   "steps": settings.steps, "seed": settings.seed}
    return CaseResult("budgets-together", CASES["budgets-together"].description, w.describe(), attack_desc, rows,
                      summary, notes)


@register_case("forward-options", "native PGD at full steps on the default forward (BatchNorm folded, fp32) vs "
               "channels_last, bf16 autocast and (on CUDA) torch.compile: the speed-ups of the GPU path")
def forward_options(settings: Settings) -> CaseResult:
    from bench.precision import ForwardOptions, fast_view, prepare_model

    w = workload(MODEL, GOAL, settings.batch, settings.device, settings.profile, settings.seed)
    eps = 0.1 / 255
    folded_model = getattr(w.view, "model", None) if w.bn_folded else None
    options = {"default (fp32)": ForwardOptions(fold_bn=True),
               "channels_last": ForwardOptions(channels_last=True, fold_bn=True),
               "bf16 autocast": ForwardOptions(precision="bf16", fold_bn=True),
               "channels_last + bf16": ForwardOptions(precision="bf16", channels_last=True, fold_bn=True)}
    if settings.device.type == "cuda":
        options["torch.compile"] = ForwardOptions(compile=True, fold_bn=True)
    attack = make_attack("pgd", {"steps": settings.steps, "step_size": 0.25, "random_start": True})
    cs = []
    for name, opt in options.items():
        module = folded_model if folded_model is not None else w.task.model
        if opt.channels_last or opt.compile:
            module = prepare_model(copy.deepcopy(module), opt)
        view = fast_view(w.task, opt, settings.device, module)
        cs.append(Contender(name, (lambda v=view: attack.run(v, w.x, "linf", eps, torch.Generator(device=w.x.device)
                                                             .manual_seed(settings.seed))), w.batch, "forward"))
    timings = interleaved(cs, settings.repeats, settings.device, max(settings.warmup, 1))
    rows = contender_rows(cs, timings, "default (fp32)")
    summary = {"time_ratio_to_default": {r["name"]: r["ratio_to_bare"] for r in rows}}
    notes = ["ratios are to the default forward (not the bare loop); whether an option keeps the attacks' successes is "
             "tests/test_gpu_path.py's question, not this case's"]
    return CaseResult("forward-options", CASES["forward-options"].description, w.describe(),
                      {"attack": "pgd", "norm": "linf", "eps_255": 0.1, "steps": settings.steps}, rows, summary, notes)
