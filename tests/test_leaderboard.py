"""Leaderboards: pages that parse as markdown tables, plots that exist, sorting, marks, intervals, formats, errors."""
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from markdown_it import MarkdownIt

from bench.cli import main
from bench.config import format_eps
from bench.protocols import get_protocol
from bench.evaluation import images_to_tensor
from bench.errors import StoreError
from bench.leaderboard import collect_runs, leaderboard_rows, write_leaderboard
from bench.metrics import wilson_interval
from bench.runner import RunConfig, run_benchmark
from bench.store import CellResult, ResultsStore
from models_zoo.checkpoint import load_checkpoint, shipped_weights
from models_zoo.registry import get_variant

# PGD-10 as in `quick`: on the retrained facenet-baseline (issue 16) PGD-3 with its random start broke fewer dodging
# pairs at 2/255 than FGSM (4 against 6 of 8), and the cross-cell check rightly flags such a cell
FR_SUITE = """name: lb-fr
attacks:
  - attack: fgsm
    eps: [2/255, 8/255]
  - attack: pgd
    params: {steps: 10}
    eps: [2/255, 8/255]
  - attack: min-eps
    params: {attack: pgd, attack_steps: 3, search_steps: 3}
    eps: [16/255]
"""
FAS_SUITE = """name: lb-fas
goals: [spoof-to-live, live-to-spoof]
attacks:
  - cascade: [{attack: fgsm}, {attack: pgd, params: {steps: 3}}]
    eps: [2/255, 8/255]
  - transfer: {attack: pgd, params: {steps: 2}, sources: [cdcn]}
    eps: [8/255]
"""


# --------------------------------------------------------------------------- helpers

def md_tables(text: str) -> list[dict]:
    """Every table of a markdown page: its headers, its rows (cell text) and the heading it sits under."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables, heading, current, row, in_heading = [], "", None, None, False
    for tok in tokens:
        if tok.type == "heading_open":
            in_heading = True
        elif tok.type == "heading_close":
            in_heading = False
        elif tok.type == "inline" and in_heading:
            heading = _text(tok)
        elif tok.type == "table_open":
            current = {"heading": heading, "headers": [], "rows": []}
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and row is not None and current is not None:
            row.append(_text(tok))
        elif tok.type == "tr_close":
            if not current["headers"]:
                current["headers"] = row
            else:
                current["rows"].append(row)
            row = None
        elif tok.type == "table_close":
            tables.append(current)
            current = None
    return tables


def _text(tok) -> str:
    return "".join(c.content for c in (tok.children or []) if c.type in ("text", "code_inline")).strip()


def col(table: dict, header: str) -> list[str]:
    i = table["headers"].index(header)
    return [r[i] for r in table["rows"]]


def table_under(tables: list[dict], heading: str) -> dict:
    found = [t for t in tables if t["heading"] == heading]
    assert found, (heading, [t["heading"] for t in tables])
    return found[0]


def render(tmp_path, stores, fmt="md", examples=False, name="out") -> Path:
    out = tmp_path / name
    write_leaderboard([Path(s) for s in stores], out, fmt=fmt, examples=examples)
    return out


# --------------------------------------------------------------------------- a real store (the runner, zoo models)

@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb-real")
    (root / "fr.yaml").write_text(FR_SUITE)
    (root / "fas.yaml").write_text(FAS_SUITE)
    store = root / "r.h5"
    for model, suite in (("facenet-baseline", "fr.yaml"), ("depth-gan-spoof", "fas.yaml")):
        run_benchmark(RunConfig(model=model, suite=str(root / suite), samples=8, store=str(store), device="cpu",
                                command=f"facebench run --model {model} --attack-suite {suite} --samples 8"), progress=False)
    return store


@pytest.fixture(scope="module")
def real_md(real_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("lb-md")
    write_leaderboard([real_store], out, fmt="md", examples=False)
    return out


def _worst_case(store: Path, model: str, goal: str, eps: float) -> tuple[int, int]:
    """Robust samples at `eps` computed here, independently of the leaderboard: clean-correct and no cell broke it."""
    st = ResultsStore(store)
    run = [r for r in st.runs() if r["model"] == model][-1]
    cells = [c for c in st.read_cells(run["cell_ids"]) if c.config["goal"] == goal and abs(c.config["eps"] - eps) < 1e-9]
    ok = cells[0].arrays["clean_correct"].copy()
    for c in cells:
        ok &= ~c.arrays["success"]
    return int(ok.sum()), len(ok)


def test_index_links_every_page_and_lists_models(real_md):
    index = (real_md / "README.md").read_text()
    pages = table_under(md_tables(index), "Pages")
    assert pages["headers"] == ["page", "task", "protocol", "models", "goals", "headline budget"]
    links = re.findall(r"\]\(([^)#]+\.md)\)", index)
    assert {"fr-verification-synth-fr.md", "fas-robustness-synth-ocim-to-o.md", "fas-generalization.md"} <= set(links)
    for link in links:
        if not link.startswith("../"):
            assert (real_md / link).is_file(), link
    models = table_under(md_tables(index), "Models")
    assert col(models, "model") == ["depth-gan-spoof (tiny)", "facenet-baseline (tiny)"]
    assert "| `facenet-baseline` (tiny) |" in index


def test_fr_page_tables_have_the_expected_columns_and_numbers(real_md, real_store):
    tables = md_tables((real_md / "fr-verification-synth-fr.md").read_text())
    for goal in ("dodging", "impersonation"):
        t = table_under(tables, goal)
        assert t["headers"] == ["#", "model", "params", "recipe", "suite", "dev TAR @ FAR=0.001", "clean acc",
                                "median best-known min eps (linf)", "robust @ linf 2/255", "robust @ linf 8/255",
                                "AUC linf [0, 8/255]", "median min eps (linf)", "n",
                                "time (s)", "checks", "run"]
        assert len(t["rows"]) == 1
        row = dict(zip(t["headers"], t["rows"][0]))
        assert row["model"] == "facenet-baseline (tiny)" and row["n"] == "8" and row["checks"] == "ok"
        assert row["params"] == "341.1k" and "no adv. training" in row["recipe"]
        k, n = _worst_case(real_store, "facenet-baseline", goal, 8 / 255)
        lo, hi = wilson_interval(k, n)
        assert row["robust @ linf 8/255"] == f"{100 * k / n:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        card = json.loads(shipped_weights("facenet-baseline", "tiny").with_suffix(".json").read_text())
        # the shipped card's dev TAR, with its interval
        assert row["dev TAR @ FAR=0.001"].startswith(f"{100 * card['dev']['dev_tar']:.1f} [")
        assert re.fullmatch(r"[01]\.\d{3}", row["AUC linf [0, 8/255]"])
        best = _best_known_median(real_store, "facenet-baseline", goal)
        shown = row["median best-known min eps (linf)"].split(" [")[0]
        assert shown == format_eps("linf", best, measured=True) if np.isfinite(best) else shown.startswith("> ")
        run_id = ResultsStore(real_store).runs()[0]["run_id"]
        assert row["run"] == run_id
    page = (real_md / "fr-verification-synth-fr.md").read_text()
    assert f'<a id="run-{run_id}"></a>`{run_id}`' in page and "facebench run --model facenet-baseline --attack-suite fr.yaml" in page


def test_fas_pages_have_test_rates_transfer_and_generalization(real_md, real_store):
    tables = md_tables((real_md / "fas-robustness-synth-ocim-to-o.md").read_text())
    s2l = table_under(tables, "spoof-to-live")
    assert {"dev HTER", "test ACER", "test HTER", "clean acc", "robust @ linf 8/255"} <= set(s2l["headers"])
    # test HTER: the shipped model on the protocol's whole test split at the stored dev threshold, computed here
    st = ResultsStore(real_store)
    run = [r for r in st.runs() if r["model"] == "depth-gan-spoof"][-1]
    tau = float(run["threshold"])
    test = get_protocol("synth-ocim->o").frames("test", 64)
    model = get_variant("depth-gan-spoof").build("tiny")
    load_checkpoint(model, shipped_weights("depth-gan-spoof", "tiny"), variant="depth-gan-spoof", profile="tiny")
    with torch.no_grad():
        scores = torch.cat([model.eval()(images_to_tensor(test.images[i:i + 256])) for i in range(0, len(test.images), 256)])
    accepted = scores.numpy() >= tau
    hter = (accepted[~test.live].mean() + (~accepted[test.live]).mean()) / 2
    assert col(s2l, "test HTER") == [f"{100 * hter:.1f}"]
    transfer = [t for t in tables if t["headers"][0] == "source / target"]
    assert len(transfer) == 2  # one per goal
    assert col(transfer[0], "source / target") == ["cdcn", "depth-gan-spoof"]
    gen = md_tables((real_md / "fas-generalization.md").read_text())
    t = table_under(gen, "synth-ocim->o")
    assert col(t, "model") == ["depth-gan-spoof (tiny)"] and col(t, "trained on") == ["synth-ocim->o"]
    assert col(t, "test HTER") == [f"{100 * hter:.1f}"]
    assert col(t, "spoof / live frames") == [f"{int((~test.live).sum())} / {int(test.live.sum())}"]


def test_every_png_the_markdown_references_exists(real_md):
    referenced = set()
    for page in real_md.glob("*.md"):
        for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            path = real_md / ref
            assert path.is_file(), (page.name, ref)
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            referenced.add(path.name)
    on_disk = {p.name for p in (real_md / "plots").glob("*.png")}
    assert referenced == on_disk and len(on_disk) >= 8
    assert any("transfer" in n for n in on_disk) and any("scores" in n for n in on_disk)
    assert not any("examples" in n for n in on_disk)  # rendered with examples off
    assert not list(real_md.rglob("*.tmp"))


def test_example_grid_is_regenerated_on_request(real_store, tmp_path):
    from bench.leaderboard.examples import regenerate_examples
    from bench.leaderboard.results import Budget

    rec = next(r for r in collect_runs([real_store]) if r.run["model"] == "facenet-baseline")
    ex = regenerate_examples(rec, "impersonation", Budget("linf", round(8 / 255, 9)), k=3)
    assert not ex.error, ex.error
    assert ex.clean.shape == ex.adv.shape == (3, 64, 64, 3)
    assert np.abs(ex.adv - ex.clean).max() <= 8 / 255 + 1e-5 and np.abs(ex.adv - ex.clean).max() > 0
    assert ex.adv.min() >= 0 and ex.adv.max() <= 1 and len(ex.success) == 3
    out = render(tmp_path, [real_store], examples=True)
    page = (out / "fr-verification-synth-fr.md").read_text()
    assert "(plots/fr-verification-synth-fr-dodging-examples.png)" in page
    assert (out / "plots" / "fr-verification-synth-fr-dodging-examples.png").is_file()


# --------------------------------------------------------------------------- hand-written stores (exact numbers)

def _best_known_median(store: Path, model: str, goal: str) -> float:
    """Median over clean-correct samples of the smallest Linf any cell showed to break each (a success's measured
    Linf, a search's min_eps), computed here, independently of bench.tables."""
    cells = [c for c in ResultsStore(store).read_cells() if c.config["model"] == model and c.config["goal"] == goal]
    clean = cells[0].arrays["clean_correct"].astype(bool)
    best = np.full(len(clean), np.inf)
    for c in cells:
        assert list(c.arrays["sample_id"]) == list(cells[0].arrays["sample_id"])
        best = np.minimum(best, np.where(c.arrays["success"], c.arrays["linf"], np.inf))
        if "min_eps" in c.arrays and c.config["norm"] == "linf":
            best = np.minimum(best, c.arrays["min_eps"])
    return float(np.median(best[clean]))


N = 8


def _arrays(clean_correct, success, ids=None, min_eps=None, clean_score=None, adv_score=None):
    clean_correct = np.asarray(clean_correct, dtype=bool)
    success = np.asarray(success, dtype=bool) | ~clean_correct
    n = len(clean_correct)
    a = {
        "sample_id": np.asarray(ids or [f"s{i}" for i in range(n)], dtype=object),
        "clean_score": np.asarray(clean_score if clean_score is not None else np.linspace(0, 1, n), dtype=np.float32),
        "adv_score": np.asarray(adv_score if adv_score is not None else np.linspace(0, 1, n), dtype=np.float32),
        "clean_correct": clean_correct, "attacked": clean_correct.copy(), "success": success,
        "linf": np.zeros(n, np.float32), "l2": np.zeros(n, np.float32), "queries": np.ones(n, np.int64),
    }
    if min_eps is not None:
        a["min_eps"] = np.asarray(min_eps, dtype=np.float32)
    return a


def write_run(path, model, cells, *, protocol="synth-fr", suite="s", task="fr", unreliable=None, threshold=0.5,
              dev=None, started_ns=None, sha=None, meta=None):
    """A complete run of hand-written cells: `cells` is a list of (goal, attack, eps, arrays[, params]); `meta`
    replaces entries of the run's metadata."""
    st = ResultsStore(path)
    meta = {"model": model, "task": task, "profile": "tiny", "source": "zoo", "protocol": protocol, "suite": suite,
            "checkpoint": "none", "checkpoint_sha256": sha or f"sha-{model}", "threshold": threshold,
            "threshold_rule": "dev FAR=0.001" if task == "fr" else "dev EER",
            "dev_metrics": dev or {"dev_tar": 0.5, "dev_genuine_pairs": 100, "threshold_rule": "dev FAR=0.001"},
            "command": f"facebench run --model {model}", "config": {"samples": N, "seed": 0}, "device": "cpu",
            **(meta or {})}
    run_id = st.begin_run(meta)
    if started_ns is not None:
        with h5py.File(path, "a") as f:
            f["runs"][run_id].attrs["started_ns"] = started_ns
    for k, item in enumerate(cells):
        goal, attack, eps, arrays = item[:4]
        params = item[4] if len(item) > 4 else {}
        cid = f"{run_id}-{k}"
        bad = unreliable.get(k) if unreliable else None
        config = {"model": model, "goal": goal, "attack": attack, "norm": "linf", "eps": eps, "params": params,
                  "protocol": protocol}
        st.write_cell(CellResult(cid, config, arrays, {"n": N, "seconds": 1.5}, {"threshold": threshold},
                                 bad is not None, bad or ""))
        st.add_cell_to_run(run_id, cid)
    st.finish_run(run_id, "complete")
    return run_id


def _robust(k_broken_at_8):
    """Clean all correct; at 8/255 the first k samples broken; at 4/255 none broken."""
    ok = [True] * N
    return [("dodging", "pgd", 4 / 255, _arrays(ok, [False] * N)),
            ("dodging", "pgd", 8 / 255, _arrays(ok, [i < k_broken_at_8 for i in range(N)]))]


@pytest.fixture
def synth_store(tmp_path):
    path = tmp_path / "s.h5"
    write_run(path, "model-b", _robust(2))  # robust 6/8 at 8/255
    write_run(path, "model-a", _robust(6), unreliable={1: "gradients are zero (suspect gradient masking)"})  # 2/8
    write_run(path, "model-c", _robust(4))  # 4/8
    # clean accuracy decides between equal robust accuracies
    worse_clean = [("dodging", "pgd", 4 / 255, _arrays([i > 0 for i in range(N)], [False] * N)),
                   ("dodging", "pgd", 8 / 255, _arrays([i > 0 for i in range(N)], [i in (1, 2) for i in range(N)]))]
    write_run(path, "model-d", worse_clean)  # robust 5/8 at 8/255... 8 - 1 clean-wrong - 2 broken = 5
    return path


def test_rows_are_sorted_by_the_headline_budget(synth_store, tmp_path):
    out = render(tmp_path, [synth_store])
    t = table_under(md_tables((out / "fr-verification-synth-fr.md").read_text()), "dodging")
    assert col(t, "model") == ["model-b (tiny)", "model-d (tiny)", "model-c (tiny)", "model-a (tiny)"]
    assert col(t, "#") == ["1", "2", "3", "4"]
    robust = [float(v.split()[0]) for v in col(t, "robust @ linf 8/255")]
    assert robust == sorted(robust, reverse=True) == [75.0, 62.5, 50.0, 25.0]
    assert "Headline budget: **linf 8/255**" in (out / "fr-verification-synth-fr.md").read_text()


def test_equal_robust_accuracy_sorts_by_clean_accuracy(tmp_path):
    path = tmp_path / "s.h5"
    lower_clean = [("dodging", "pgd", 8 / 255, _arrays([i > 1 for i in range(N)], [False] * N))]  # robust 6, clean 6
    higher_clean = [("dodging", "pgd", 8 / 255, _arrays([True] * N, [i < 2 for i in range(N)]))]  # robust 6, clean 8
    write_run(path, "low-clean", lower_clean)
    write_run(path, "high-clean", higher_clean)
    t = table_under(md_tables((render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()), "dodging")
    assert col(t, "model") == ["high-clean (tiny)", "low-clean (tiny)"]


def test_ties_at_the_headline_budget_fall_to_the_smaller_budgets(tmp_path):
    path = tmp_path / "s.h5"
    ok = [True] * N
    for model, broken_at_4 in (("a-weak-at-4", 6), ("b-strong-at-4", 1)):  # by name alone, a-weak would come first
        write_run(path, model, [("dodging", "pgd", 4 / 255, _arrays(ok, [i < broken_at_4 for i in range(N)])),
                                ("dodging", "pgd", 8 / 255, _arrays(ok, ok))])  # everything broken at 8/255
    t = table_under(md_tables((render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()), "dodging")
    assert col(t, "model") == ["b-strong-at-4 (tiny)", "a-weak-at-4 (tiny)"]
    assert col(t, "robust @ linf 8/255") == ["0.0 [0.0, 32.4]"] * 2


def test_unreliable_cells_mark_their_row_with_the_reason(synth_store, tmp_path):
    out = render(tmp_path, [synth_store])
    page = (out / "fr-verification-synth-fr.md").read_text()
    t = table_under(md_tables(page), "dodging")
    checks = dict(zip(col(t, "model"), col(t, "checks")))
    assert checks["model-a (tiny)"] == "unreliable (note 1)"
    assert all(v == "ok" for m, v in checks.items() if m != "model-a (tiny)")
    assert "1. gradients are zero (suspect gradient masking)" in page
    index = (out / "README.md").read_text()
    assert "(unreliable cells)" in index
    rows = list(csv.DictReader(open(render(tmp_path, [synth_store], "csv", name="c") / "fr-verification-synth-fr-dodging.csv")))
    flagged = {r["model"]: (r["unreliable"], r["unreliable reason"]) for r in rows}
    assert flagged["model-a"] == ("True", "gradients are zero (suspect gradient masking)")
    assert flagged["model-b"] == ("False", "")


def test_rates_carry_wilson_intervals_and_counts(synth_store, tmp_path):
    out = render(tmp_path, [synth_store])
    t = table_under(md_tables((out / "fr-verification-synth-fr.md").read_text()), "dodging")
    row = dict(zip(t["headers"], t["rows"][col(t, "model").index("model-c (tiny)")]))
    lo, hi = wilson_interval(4, 8)
    assert row["robust @ linf 8/255"] == f"50.0 [{100 * lo:.1f}, {100 * hi:.1f}]" == "50.0 [21.5, 78.5]"
    assert row["clean acc"] == "100.0 [67.6, 100.0]" and row["n"] == "8"
    assert row["time (s)"] == "3.0"  # two cells of 1.5 s
    rows = list(csv.DictReader(open(render(tmp_path, [synth_store], "csv", name="c") / "fr-verification-synth-fr-dodging.csv")))
    c = next(r for r in rows if r["model"] == "model-c")
    assert float(c["robust linf 8/255"]) == 0.5 and int(c["robust linf 8/255 k"]) == 4 and int(c["robust linf 8/255 n"]) == 8
    assert float(c["robust linf 8/255 low"]) == pytest.approx(lo) and float(c["robust linf 8/255 high"]) == pytest.approx(hi)


def test_worst_case_auc_and_median_minimal_eps(tmp_path):
    """Two attacks at one budget break different samples; a min-eps search gives breaking budgets exactly."""
    path = tmp_path / "s.h5"
    ok = [True] * N
    min_eps = np.array([1, 2, 3, 5, 7, np.inf, np.inf, np.inf]) / 255
    cells = [("dodging", "fgsm", 8 / 255, _arrays(ok, [i == 0 for i in range(N)])),
             ("dodging", "pgd", 8 / 255, _arrays(ok, [i == 7 for i in range(N)])),
             ("dodging", "min-eps", 16 / 255, _arrays(ok, np.isfinite(min_eps), min_eps=min_eps))]
    write_run(path, "m", cells)
    page = (render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()
    row = dict(zip(*[(t["headers"], t["rows"][0]) for t in md_tables(page) if t["heading"] == "dodging"][0]))
    assert row["robust @ linf 8/255"].startswith("75.0 ")  # samples 0 and 7 broken, by different attacks
    # the search's ceiling (16/255) gets no robust-accuracy column: its median min eps and the AUC carry it
    assert "robust @ linf 16/255" not in row
    # breaking budgets (x 1/255): 1, 2, 3, 5, 7, inf, inf, 8 (pgd at 8/255) -> min(b, 8) / 8
    expected = np.mean(np.minimum([1, 2, 3, 5, 7, np.inf, np.inf, 8], 8) / 8)
    assert float(row["AUC linf [0, 8/255]"]) == pytest.approx(expected, abs=1e-3)
    assert row["median min eps (linf)"] == "6/255"  # median of 1, 2, 3, 5, 7, inf, inf, inf
    # the headline budget ignores a budget reached only by a minimal-eps search
    assert "Headline budget: **linf 8/255**" in page


def test_a_search_ceiling_that_is_also_a_fixed_budget_keeps_its_column(tmp_path):
    path = tmp_path / "s.h5"
    ok = [True] * N
    min_eps = np.array([1, 2, 3, 5, 7, np.inf, np.inf, np.inf]) / 255
    write_run(path, "m", [("dodging", "pgd", 16 / 255, _arrays(ok, [i < 6 for i in range(N)])),
                          ("dodging", "min-eps", 16 / 255, _arrays(ok, np.isfinite(min_eps), min_eps=min_eps))])
    t = table_under(md_tables((render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()), "dodging")
    row = dict(zip(t["headers"], t["rows"][0]))
    assert row["robust @ linf 16/255"].startswith("25.0 ")  # pgd broke 0-5, the search 0-4: 6 and 7 left


def test_l2_budgets_get_their_own_auc_and_minimal_eps_columns(tmp_path):
    path = tmp_path / "s.h5"
    ok = [True] * N
    min_l2 = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, np.inf, np.inf])
    cells = [("dodging", "pgd", 8 / 255, _arrays(ok, [i < 4 for i in range(N)])),
             ("dodging", "pgd", 0.5, _arrays(ok, [i < 2 for i in range(N)])),
             ("dodging", "min-eps", 2.0, _arrays(ok, np.isfinite(min_l2), min_eps=min_l2))]
    st = ResultsStore(path)
    write_run(path, "m", [])
    for k, (goal, attack, eps, arrays) in enumerate(cells):  # the L2 cells need norm l2
        norm = "linf" if k == 0 else "l2"
        cid = f"l2cell{k}"
        st.write_cell(CellResult(cid, {"model": "m", "goal": goal, "attack": attack, "norm": norm, "eps": eps, "params": {}},
                                 arrays, {"n": N, "seconds": 1.0}, {"threshold": 0.5}))
        run_id = st.runs()[-1]["run_id"]
        st.add_cell_to_run(run_id, cid)
    t = table_under(md_tables((render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()), "dodging")
    h = t["headers"]
    assert h[h.index("clean acc") + 1:h.index("n")] == [
        "median best-known min eps (linf)", "median best-known min eps (l2)",
        "robust @ linf 8/255", "robust @ l2 0.5", "AUC linf [0, 8/255]", "AUC l2 [0, 0.5]",
        "median min eps (linf)", "median min eps (l2)"]
    row = dict(zip(h, t["rows"][0]))
    # L2 breaking budgets: 0.1, 0.2 (also pgd at 0.5), 0.3, 0.4, 0.6, 0.7, inf, inf -> min(b, 0.5) / 0.5
    assert float(row["AUC l2 [0, 0.5]"]) == pytest.approx(np.mean(np.minimum(min_l2, 0.5) / 0.5), abs=1e-3)
    assert row["AUC linf [0, 8/255]"] == "-"  # one Linf budget and no search: no curve to integrate
    assert row["median min eps (l2)"] == "0.5" and row["median min eps (linf)"] == "-"


def test_fas_test_rates_from_stored_scores_and_the_score_shift_fallback(tmp_path):
    path = tmp_path / "s.h5"
    spoof_ids = [f"casia/1/0{i}-{m}/f0" for i, m in enumerate(["print-warped", "print-cut", "replay-tablet", "replay-phone"] * 2)]
    spoof_scores = np.array([-1, 1, -1, -1, -1, -1, -1, 2.0])  # accepted (>= 0): ids 1 (print-cut), 7 (replay-phone)
    live_scores = np.array([1, 1, 1, -1, 1, 1, 1, 1.0])  # one rejected
    spoof = _arrays(spoof_scores < 0, [False] * N, ids=spoof_ids, clean_score=spoof_scores, adv_score=spoof_scores + 3)
    live = _arrays(live_scores >= 0, [False] * N, ids=[f"casia/1/0{i}-live/f0" for i in range(N)], clean_score=live_scores)
    dev = {"dev_hter": 0.1, "dev_eer": 0.1, "dev_acer": 0.12, "threshold_rule": "dev EER"}
    write_run(path, "fas-both", [("spoof-to-live", "pgd", 8 / 255, spoof), ("live-to-spoof", "pgd", 8 / 255, live)],
              protocol="synth-ocim->o", task="fas", threshold=0.0, dev=dev)
    write_run(path, "fas-spoof-only", [("spoof-to-live", "pgd", 8 / 255, spoof)], protocol="synth-ocim->o", task="fas",
              threshold=0.0, dev=dev)
    out = render(tmp_path, [path])
    page = (out / "fas-robustness-synth-ocim-to-o.md").read_text()
    t = table_under(md_tables(page), "spoof-to-live")
    rows = {m: dict(zip(t["headers"], r)) for m, r in zip(col(t, "model"), t["rows"])}
    # APCER pooled 2/8, per species: print 1/4 (warped, cut), replay 1/4; BPCER 1/8
    assert rows["fas-both (tiny)"]["test HTER"] == f"{100 * (2 / 8 + 1 / 8) / 2:.1f}"
    assert rows["fas-both (tiny)"]["test ACER"] == f"{100 * (1 / 4 + 1 / 8) / 2:.1f}"
    assert rows["fas-spoof-only (tiny)"]["test HTER"] == "-" and rows["fas-both (tiny)"]["dev HTER"] == "10.0"
    assert "score shift, not a ROC" in page and "ROC curves (fas-both)" in page
    gen = table_under(md_tables((out / "fas-generalization.md").read_text()), "synth-ocim->o")
    assert col(gen, "model") == ["fas-both (tiny)", "fas-spoof-only (tiny)"]  # rows without test HTER last
    assert col(gen, "test APCER")[0] == "25.0 [7.1, 59.1]" and col(gen, "test BPCER")[1] == "-"


def test_identification_goals_get_their_own_page(tmp_path):
    path = tmp_path / "s.h5"
    write_run(path, "m", _robust(3) + [("misidentify", "pgd", 8 / 255, _arrays([True] * N, [i < 5 for i in range(N)]))])
    out = render(tmp_path, [path])
    ident = md_tables((out / "fr-identification-synth-fr.md").read_text())
    assert col(table_under(ident, "misidentify"), "robust @ linf 8/255")[0].startswith("37.5 ")
    assert "misidentify" not in [t["heading"] for t in md_tables((out / "fr-verification-synth-fr.md").read_text())]
    assert "fr-identification-synth-fr.md" in (out / "README.md").read_text()


def test_several_stores_merge_and_the_newest_run_wins(tmp_path):
    old, new = tmp_path / "old.h5", tmp_path / "new.h5"
    write_run(old, "m", _robust(6), started_ns=1)
    write_run(old, "only-old", _robust(1))
    write_run(new, "m", _robust(2), started_ns=2)
    t = table_under(md_tables((render(tmp_path, [old, new]) / "fr-verification-synth-fr.md").read_text()), "dodging")
    got = dict(zip(col(t, "model"), col(t, "robust @ linf 8/255")))
    assert set(got) == {"m (tiny)", "only-old (tiny)"} and got["m (tiny)"].startswith("75.0 ")
    rows, budgets = leaderboard_rows([ResultsStore(old), ResultsStore(new)])
    assert {(r["model"], r["robust"]["linf 8/255"]) for r in rows} == {("m", (6, 8)), ("only-old", (7, 8))}
    assert budgets == ["linf 4/255", "linf 8/255"]


def test_a_run_hidden_by_a_newer_one_of_other_weights_is_said(tmp_path):
    """A retrained zoo variant run under its zoo name hides the older run of the shipped weights (one row per model,
    protocol and suite): the leaderboard says in one line which runs are hidden and how to show both; reruns of the
    same weights hide their predecessors silently. Whichever store order, the newest run is the one shown."""
    from bench.leaderboard import collect_runs

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write_run(a, "m", _robust(6), started_ns=1, sha="shipped-weights")
    write_run(a, "m", _robust(5), started_ns=2, sha="shipped-weights")
    retrained = write_run(b, "m", _robust(2), started_ns=3, sha="retrained-weights")
    for stores in ([a, b], [b, a]):
        said = []
        (rec,) = collect_runs(stores, log=said.append)
        assert rec.run["run_id"] == retrained
        assert len(said) == 1 and said[0].startswith("hidden by a newer run of other weights") and "m (2 runs)" in said[0]
    write_run(a, "n", _robust(6), started_ns=1, sha="shipped-weights")
    write_run(a, "n", _robust(6), started_ns=2, sha="shipped-weights")
    write_run(b, "n", _robust(6), started_ns=3, sha="shipped-weights")
    old_n = write_run(b, "o", _robust(6), started_ns=1, sha="old-weights")
    write_run(b, "o", _robust(6), started_ns=2, sha="new-weights")
    said = []
    assert len(collect_runs([a, b], log=said.append)) == 3
    assert len(said) == 1 and said[0].count(" runs") == 1 and f"o ({old_n})" in said[0] and "n (" not in said[0], said
    said = []
    collect_runs([a], log=said.append)
    assert said == []


def test_runs_under_their_own_names_are_rows_of_their_own(tmp_path):
    """Two weights of one factory (or of one zoo variant) run under two `--name`s are two rows, labelled by those
    names; the leaderboard used to keep one row per `--model` string, hiding the older run and advising the very
    `--name` it ignored. Without names, the newer run of a factory still hides the older one and says so."""
    from bench.leaderboard import collect_runs
    from bench.leaderboard.results import leaderboard_rows

    path = tmp_path / "s.h5"

    def user(name, sha, started):
        return {"source": "user", "model_name": name or "tinyfr:build", "checkpoint_sha256": sha,
                "config": {"samples": N, "seed": 0, "name": name}}

    write_run(path, "mine/tinyfr.py:build", _robust(6), started_ns=1, meta=user("fr-a", "wa", 1))
    write_run(path, "mine/tinyfr.py:build", _robust(2), started_ns=2, meta=user("fr-b", "wb", 2))
    write_run(path, "cdcn", _robust(2), started_ns=3, sha="shipped")
    write_run(path, "cdcn", _robust(4), started_ns=4, sha="mine",
              meta={"model_name": "cdcn-mine", "config": {"samples": N, "seed": 0, "name": "cdcn-mine"}})
    said = []
    assert len(collect_runs([path], log=said.append)) == 4 and not said
    rows = leaderboard_rows([ResultsStore(path)])[0]
    assert sorted((r["name"], r["model"]) for r in rows) == [
        ("cdcn", "cdcn"), ("cdcn-mine", "cdcn"), ("fr-a", "mine/tinyfr.py:build"), ("fr-b", "mine/tinyfr.py:build")]
    page = (render(tmp_path, [path]) / "fr-verification-synth-fr.md").read_text()
    assert all(f"`{name}`" in page for name in ("fr-a", "fr-b", "cdcn-mine"))
    write_run(path, "mine/tinyfr.py:build", _robust(6), started_ns=5, meta=user(None, "wc", 5))
    write_run(path, "mine/tinyfr.py:build", _robust(6), started_ns=6, meta=user(None, "wd", 6))
    said = []
    assert len(collect_runs([path], log=said.append)) == 5
    assert len(said) == 1 and "mine/tinyfr.py:build (" in said[0] and "--name" in said[0], said


def test_transfer_matrix_from_hand_written_cells(tmp_path):
    path = tmp_path / "s.h5"
    ok = [True] * N
    for target, source, k in (("t1", "t2", 2), ("t2", "t1", 5)):
        write_run(path, target, [("dodging", "pgd", 8 / 255, _arrays(ok, [True] * N)),
                                 ("dodging", "transfer", 8 / 255, _arrays(ok, [i < k for i in range(N)]), {"source": source})])
    out = render(tmp_path, [path])
    page = (out / "fr-verification-synth-fr.md").read_text()
    t = next(t for t in md_tables(page) if t["headers"][0] == "source / target")
    assert t["headers"] == ["source / target", "t1", "t2"]
    assert t["rows"] == [["t1", "100.0", "62.5"], ["t2", "25.0", "100.0"]]
    assert (out / "plots" / "fr-verification-synth-fr-dodging-transfer.png").is_file()


# --------------------------------------------------------------------------- formats

class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for key in ("href", "src"):
            if key in a:
                self.refs.append((tag, key, a[key]))


def test_html_is_one_self_contained_file(real_store, tmp_path):
    out = render(tmp_path, [real_store], "html")
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["leaderboard.html"]
    text = (out / "leaderboard.html").read_text()
    parser = _Refs()
    parser.feed(text)
    assert "link" not in parser.tags and "script" not in parser.tags and "http://" not in text and "https://" not in text
    images = [r for r in parser.refs if r[0] == "img"]
    md = render(tmp_path, [real_store], name="md")
    assert len(images) == len(list((md / "plots").glob("*.png"))) >= 8
    assert all(src.startswith("data:image/png;base64,") for _, _, src in images)
    assert len(parser.ids) == len(set(parser.ids))  # a run listed on two pages keeps two distinct anchors
    assert sum(value.startswith("#") and "--run-" in value for _, key, value in parser.refs if key == "href") >= 4
    for tag, key, value in parser.refs:
        if key == "href":
            assert value.startswith("#") and value[1:] in parser.ids, value  # every link lands inside the file
    assert text.count("<table") == sum(len(md_tables(p.read_text())) for p in md.glob("*.md"))


def test_csv_files_parse_with_one_row_per_table_row(real_store, real_md, tmp_path):
    out = render(tmp_path, [real_store], "csv")
    files = {p.name for p in out.glob("*.csv")}
    assert {"index-pages.csv", "index-models.csv", "fr-verification-synth-fr-dodging.csv",
            "fas-robustness-synth-ocim-to-o-spoof-to-live.csv", "fas-generalization-synth-ocim-to-o.csv"} <= files
    rows = list(csv.DictReader(open(out / "fr-verification-synth-fr-impersonation.csv")))
    t = table_under(md_tables((real_md / "fr-verification-synth-fr.md").read_text()), "impersonation")
    assert len(rows) == len(t["rows"]) == 1
    r = rows[0]
    assert r["model"] == "facenet-baseline" and r["goal"] == "impersonation" and r["headline budget"] == "linf 8/255"
    assert f"{100 * float(r['robust linf 8/255']):.1f}" == col(t, "robust @ linf 8/255")[0].split()[0]
    assert r["command"].startswith("facebench run --model facenet-baseline") and int(r["n"]) == 8


def test_latex_tables_are_booktabs_and_well_formed(real_store, tmp_path):
    out = render(tmp_path, [real_store], "latex")
    files = sorted(out.glob("*.tex"))
    assert files
    for f in files:
        text = f.read_text()
        assert text.count("\\begin{") == text.count("\\end{") and "\\toprule" in text and "\\bottomrule" in text
        spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", text).group(1)
        body = text.split("\\toprule")[1].split("\\bottomrule")[0].replace("\\midrule", "")
        lines = [ln for ln in body.strip().splitlines() if ln.strip()]
        for ln in lines:
            assert ln.endswith("\\\\"), (f.name, ln)
            assert len(re.split(r"(?<!\\)&", ln)) == len(spec), (f.name, ln)
            assert not re.search(r"(?<!\\)[%#_$]", ln.replace("$\\varepsilon$", "")), (f.name, ln)
    dodging = (out / "fr-verification-synth-fr-dodging.tex").read_text()
    assert "robust @ linf 8/255" in dodging and "facenet-baseline (tiny)" in dodging and "recipe" not in dodging


# --------------------------------------------------------------------------- errors

def _one_line_error(result, needle):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("facebench: error:") and needle in lines[0], result.output
    assert "Traceback" not in result.output


def test_bad_stores_fail_cleanly_with_nothing_written(synth_store, tmp_path):
    runner = CliRunner()
    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not hdf5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_group("something")
    dangling = tmp_path / "dangling.h5"
    run_id = write_run(dangling, "m", _robust(1))
    with h5py.File(dangling, "a") as f:
        del f["cells"][f"{run_id}-0"]
    cases = [(tmp_path / "missing.h5", "does not exist"), (garbage, "not an HDF5 file"),
             (foreign, "not a facebench store"), (dangling, "has no cell")]
    out = tmp_path / "lb"
    for bad, needle in cases:
        r = runner.invoke(main, ["leaderboard", "--store", str(synth_store), "--store", str(bad), "--out", str(out)])
        _one_line_error(r, needle)
        assert not out.exists()
    # an existing leaderboard stays as it was
    out.mkdir()
    (out / "README.md").write_text("previous")
    _one_line_error(runner.invoke(main, ["leaderboard", "--store", str(garbage), "--out", str(out)]), "not an HDF5 file")
    assert [p.name for p in out.iterdir()] == ["README.md"] and (out / "README.md").read_text() == "previous"
    with pytest.raises(StoreError):
        collect_runs([garbage])


def test_cells_that_disagree_on_samples_are_refused(tmp_path):
    path = tmp_path / "s.h5"
    ok = [True] * N
    write_run(path, "m", [("dodging", "pgd", 8 / 255, _arrays(ok, ok)),
                          ("dodging", "fgsm", 8 / 255, _arrays(ok, ok, ids=[f"x{i}" for i in range(N)]))])
    r = CliRunner().invoke(main, ["leaderboard", "--store", str(path), "--out", str(tmp_path / "lb")])
    _one_line_error(r, "does not cover the same samples")
    assert not (tmp_path / "lb").exists()


def test_cli_formats_and_rewrites_atomically(synth_store, tmp_path):
    runner = CliRunner()
    out = tmp_path / "lb"
    for fmt, name in (("md", "README.md"), ("html", "leaderboard.html"), ("csv", "index-pages.csv"), ("latex", "index-pages.tex")):
        r = runner.invoke(main, ["leaderboard", "--store", str(synth_store), "--out", str(out), "--format", fmt, "--no-examples", "-q"])
        assert r.exit_code == 0, r.output
        assert (out / name).is_file() and f"wrote {out}" in r.output
    first = (out / "fr-verification-synth-fr.md").read_text()
    r = runner.invoke(main, ["leaderboard", "--store", str(synth_store), "--out", str(out), "--no-examples", "-q"])
    assert r.exit_code == 0 and (out / "fr-verification-synth-fr.md").read_text() == first
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    r = runner.invoke(main, ["leaderboard", "--store", str(synth_store), "--out", str(tmp_path / "x"), "--format", "pdf"])
    assert r.exit_code == 2


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_defaults_read_and_write_under_results_and_leave_committed_pages_alone(synth_store, tmp_path, monkeypatch):
    """Issue 20.1: in a checkout, `facebench leaderboard` with its defaults reads results/facebench.h5 and writes
    results/leaderboards/ (pages, plots, html), never the committed leaderboards/; an explicit --out still may."""
    checkout = tmp_path / "checkout"
    (checkout / "results").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    (checkout / "results" / "facebench.h5").write_bytes(synth_store.read_bytes())
    committed = checkout / "leaderboards"
    (committed / "plots").mkdir(parents=True)
    (committed / "README.md").write_text("# the committed index\n")
    (committed / "fr-verification-synth-fr.md").write_text("# the committed FR page\n")
    (committed / "plots" / "fr-verification-synth-fr-dodging-success-vs-eps.png").write_bytes(b"committed plot")
    before = _tree(committed)
    runner = CliRunner()
    r = runner.invoke(main, ["leaderboard", "--no-examples", "-q"])
    assert r.exit_code == 0, r.output
    mine = checkout / "results" / "leaderboards"
    assert "wrote results/leaderboards/README.md" in r.output
    assert "| `model-b` (tiny) |" in (mine / "fr-verification-synth-fr.md").read_text()
    assert (mine / "plots" / "fr-verification-synth-fr-dodging-success-vs-eps.png").read_bytes()[:4] == b"\x89PNG"
    for fmt, name in (("html", "leaderboard.html"), ("csv", "index-pages.csv"), ("latex", "index-pages.tex")):
        r = runner.invoke(main, ["leaderboard", "--format", fmt, "--no-examples", "-q"])
        assert r.exit_code == 0, r.output
        assert (mine / name).is_file()
    assert _tree(committed) == before
    assert sorted(p.name for p in checkout.iterdir()) == ["leaderboards", "results"]  # nothing dropped elsewhere
    # the Makefile's `leaderboard` target names the committed directory explicitly: that is allowed
    r = runner.invoke(main, ["leaderboard", "--store", "results/facebench.h5", "--out", "leaderboards", "--no-examples", "-q"])
    assert r.exit_code == 0, r.output
    assert "| `model-b` (tiny) |" in (committed / "fr-verification-synth-fr.md").read_text()


def test_an_empty_store_renders_an_index_that_says_so(tmp_path):
    path = tmp_path / "s.h5"
    st = ResultsStore(path)
    st.finish_run(st.begin_run({"model": "m", "protocol": "synth-fr", "suite": "s"}), "failed")
    out = render(tmp_path, [path])
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert "No complete runs" in (out / "README.md").read_text()


def test_run_json_metadata_is_read_as_stored(synth_store):
    rec = collect_runs([synth_store])[0]
    assert rec.dev["dev_tar"] == 0.5 and json.loads(ResultsStore(synth_store).runs()[0]["dev_metrics"])["dev_tar"] == 0.5


COMMITTED = Path(__file__).resolve().parent.parent / "leaderboards"


def test_committed_leaderboards_are_tables_with_their_plots():
    pages = sorted(COMMITTED.glob("*.md"))
    assert {p.name for p in pages} >= {"README.md", "fr-verification-synth-fr.md", "fas-robustness-synth-ocim-to-o.md"}
    for page in pages:
        text = page.read_text()
        assert md_tables(text), page.name  # renders as tables under a markdown parser
        for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            assert (COMMITTED / ref).is_file(), (page.name, ref)
    imp = table_under(md_tables((COMMITTED / "fr-verification-synth-fr.md").read_text()), "impersonation")
    assert col(imp, "model")[0].startswith("triplet-adv")  # the adversarially trained model leads


def test_the_committed_runs_show_adversarial_fine_tuning_raising_the_minimal_dodging_perturbation_3x():
    """Issue 16: in the committed `standard` runs of the shipped weights, `triplet-adv`'s median minimal dodging
    perturbation (Linf; `fmn` and the `min-eps` search over the clean-correct pairs of the 50) is at least 3x
    `facenet-baseline`'s (RobFR: PGD adversarial training raises it about 6-7x). Fails when either model is
    retrained without recomputing the committed runs."""
    from bench.config import sha256_file
    from bench.leaderboard.results import rows_of_run

    median = {}
    for rec in collect_runs([COMMITTED / "facebench-tiny.h5"]):
        model = rec.run["model"]
        if rec.run["suite"] != "standard" or rec.run["protocol"] != "synth-fr" or model not in ("facenet-baseline",
                                                                                               "triplet-adv"):
            continue
        assert rec.run["checkpoint_sha256"] == sha256_file(shipped_weights(model, "tiny")), model
        dodging = next(row for row in rows_of_run(rec) if row.goal == "dodging")
        median[model] = dodging.min_eps["linf"][0]
    assert median["triplet-adv"] >= 3 * median["facenet-baseline"], median


@pytest.mark.slow
def test_committed_leaderboards_are_what_the_committed_store_renders(tmp_path, monkeypatch):
    """`make leaderboard` on a fresh clone renders exactly the committed pages from the committed store."""
    monkeypatch.chdir(COMMITTED.parent)  # the store named as the Makefile names it (the pages quote the path)
    out = render(tmp_path, [Path("leaderboards/facebench-tiny.h5")], examples=True)
    for page in COMMITTED.glob("*.md"):
        assert (out / page.name).read_text() == page.read_text(), page.name
    assert {p.name for p in (out / "plots").glob("*.png")} == {p.name for p in (COMMITTED / "plots").glob("*.png")}


def test_the_index_names_the_suite_of_each_headline_figure_when_a_model_has_several(tmp_path):
    path = tmp_path / "s.h5"
    ok = [True] * N
    write_run(path, "m", [("dodging", "pgd", 4 / 255, _arrays(ok, [i < 4 for i in range(N)]))], suite="standard")
    write_run(path, "m", [("dodging", "pgd", 4 / 255, _arrays(ok, [i < 6 for i in range(N)]))], suite="full")
    write_run(path, "solo", [("dodging", "pgd", 4 / 255, _arrays(ok, [i < 2 for i in range(N)]))], suite="standard")
    models = table_under(md_tables((render(tmp_path, [path]) / "README.md").read_text()), "Models")
    heads = dict(zip(col(models, "model"), col(models, "headline robust acc (%)")))
    assert sorted(heads["m (tiny)"].split("; ")) == ["dodging @ linf 4/255 on synth-fr (full): 25.0",
                                                     "dodging @ linf 4/255 on synth-fr (standard): 50.0"]
    assert heads["solo (tiny)"] == "dodging @ linf 4/255 on synth-fr: 75.0"  # one suite: not named
