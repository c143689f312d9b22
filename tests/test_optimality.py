"""Attack optimality against the best-known envelope (AttackBench's form): hand-computed values on hand-written
stores, its bounds, cascade prefixes, what gets a row, and the leaderboard's attack pages."""
import csv
import re

import numpy as np
import pytest

from bench.store import ResultsStore
from bench.tables import OPTIMALITY_COLUMNS, attack_optimality
from tests.test_best_known import IDS, _cell, _run
from tests.test_leaderboard import col, md_tables, render

U = 1 / 255
CLEAN = [True, True, True, True, False]  # sample 4 is wrong on clean input
INF = np.inf


def _fixed(run_id, k, attack, eps, success, linf, **kw):
    """A fixed-budget Linf cell on samples 0..4 (measured Linf per sample, in 1/255; L2 ten times that)."""
    linf = np.asarray(linf, dtype=np.float64) * U
    return _cell(run_id, k, IDS[:5], "dodging", attack, "linf", eps, CLEAN, success, linf=linf, l2=linf * 10, **kw)


def hand_cells(run_id):
    """Distances (1/255) of the clean-correct samples 0..3; the envelope is their minimum: [2, 4, 6, 8], E = 8.

    min-eps (search up to 16/255): [2, 4, inf, 8]; pgd at 4/255 and 8/255: [3, 7, 6, inf];
    apgd at 8/255: [2, 4, 6, 8] (the envelope itself); fgsm at 2/255: breaks nothing."""
    m = np.array([2, 4, INF, 8, 0]) * U
    return [
        _cell(run_id, 0, IDS[:5], "dodging", "min-eps", "linf", 16 * U, CLEAN, np.isfinite(m),
              linf=np.where(np.isfinite(m), m, 16 * U), l2=np.ones(5), min_eps=m),
        _fixed(run_id, 1, "pgd", 4 * U, [1, 0, 0, 0, 0], [3, 4, 4, 4, 0]),
        _fixed(run_id, 2, "pgd", 8 * U, [1, 1, 1, 0, 0], [3, 7, 6, 8, 0]),
        _fixed(run_id, 3, "apgd", 8 * U, [1, 1, 1, 1, 0], [2, 4, 6, 8, 0]),
        _fixed(run_id, 4, "fgsm", 2 * U, [0, 0, 0, 0, 0], [2, 2, 2, 2, 0]),
    ]


@pytest.fixture
def hand_store(tmp_path):
    path = tmp_path / "s.h5"
    _run(ResultsStore(path), "hand", hand_cells)
    return path


def _rows(path, norm="linf"):
    t = attack_optimality([ResultsStore(path)])
    return t[(t.norm == norm) & (t.prefix == 0)].set_index("attack")


def test_hand_computed_optimality(hand_store):
    t = _rows(hand_store)
    assert list(attack_optimality([ResultsStore(hand_store)]).columns) == OPTIMALITY_COLUMNS
    assert set(t.index) == {"min-eps", "pgd", "apgd", "fgsm"}  # Linf attacks only: no L2 cell, no L2 row
    assert np.allclose(t.eps_range, 8 * U)  # the envelope's largest distance (float32 as stored)
    # sum over clean-correct samples of (E - min(d, E)): envelope 6 + 4 + 2 + 0 = 12 (in 1/255)
    assert t.optimality["apgd"] == 1.0  # its curve is the envelope's
    assert t.optimality["min-eps"] == pytest.approx(10 / 12)  # 6 + 4 + 0 + 0
    assert t.optimality["pgd"] == pytest.approx(8 / 12)  # 5 + 1 + 2 + 0
    assert t.optimality["fgsm"] == 0.0  # breaks nothing: the lowest value
    # the same in AttackBench's area form: 1 - (A - A*) / (A_clean - A*), areas over all 5 samples
    pgd = t.loc["pgd"]
    assert pgd.area == pytest.approx((3 + 7 + 6 + 8 + 0) / 5 * U) and pgd.envelope_area == pytest.approx(4 * U)
    assert pgd.clean_area == pytest.approx(4 / 5 * 8 * U)
    assert pgd.optimality == pytest.approx(1 - (pgd.area - pgd.envelope_area) / (pgd.clean_area - pgd.envelope_area))
    # counts, budgets and cost
    assert (pgd.samples, pgd.clean_correct, pgd.broken, pgd.envelope_broken, pgd.cells) == (5, 4, 3, 4, 2)
    assert pgd.budgets == "4/255, 8/255" and pgd.largest_budget == pytest.approx(8 * U) and not pgd.minimal
    assert t.loc["min-eps"].minimal and t.loc["min-eps"].broken == 3
    assert pgd.queries == 2.0 and pgd.seconds == 2.0  # one query per sample and one second per cell, two cells
    # gap at the budgets it ran: pgd leaves 3/5 robust at 4/255 (envelope 2/5) and 1/5 at 8/255 (envelope 0)
    assert pgd.budget_gap == pytest.approx(0.2)
    assert t.budget_gap["apgd"] == 0.0 and t.budget_gap["fgsm"] == pytest.approx(0.2)  # fgsm: 4/5 vs 3/5 at 2/255


def test_optimality_is_between_zero_and_one_on_random_attacks(tmp_path):
    """Random attacks on 30 samples: every value in [0, 1]; the attack that is the minimum of the others' distances
    is 1; an attack is 0 exactly when it breaks nothing below E."""
    rng = np.random.default_rng(0)
    n = 30
    ids = [f"g:p{i}|r{i}" for i in range(n)]
    clean = rng.random(n) > 0.2
    dist = [np.where(rng.random(n) < 0.6, rng.uniform(0.5, 12, n), INF) for _ in range(4)]
    clean[0] = True
    for d in dist:
        d[0] = INF  # sample 0: only `mim` breaks it, at 13: E = 13
    dist.append(np.full(n, 13.0))  # broken only at or above every other distance
    dist.append(np.minimum.reduce(dist[:4]))  # the envelope but for sample 0, which is at E and does not count

    def cells(run_id):
        return [_cell(run_id, k, ids, "dodging", name, "linf", 16 * U, clean, np.isfinite(d),
                      linf=np.where(np.isfinite(d), d, 16) * U, l2=np.ones(n), min_eps=d * U)
                for k, (name, d) in enumerate(zip(["min-eps", "pgd", "apgd", "fgsm", "mim", "square"], dist))]

    path = tmp_path / "r.h5"
    _run(ResultsStore(path), "random", cells)
    t = _rows(path)
    assert t.eps_range.iloc[0] == pytest.approx(13 * U)  # the largest finite best-known distance
    assert ((t.optimality >= 0) & (t.optimality <= 1)).all()
    assert t.optimality["square"] == 1.0 and t.optimality["mim"] == 0.0
    assert (t.drop(["square", "mim"]).optimality < 1).all() and (t.drop(["square", "mim"]).optimality > 0).all()


def test_undefined_when_the_envelope_breaks_nothing_below_e(tmp_path):
    """Every break at one budget (fixed budgets only): the envelope is a step at E, the normalisation is 0 / 0."""
    path = tmp_path / "s.h5"
    _run(ResultsStore(path), "step", lambda r: [_fixed(r, 0, "pgd", 4 * U, [1, 1, 1, 1, 0], [4, 4, 4, 4, 0])])
    t = _rows(path)
    assert np.isnan(t.optimality["pgd"]) and t.eps_range["pgd"] == pytest.approx(4 * U) and t.budget_gap["pgd"] == 0


def test_float_rounding_of_a_measured_norm_does_not_decide_the_value(tmp_path):
    """PGD's Linf 4/255 + 5e-6 (the rounding a runner allows over a budget) and APGD's 4/255 exactly are one
    budget: every break is at E, so neither has a value (without the tolerance: APGD 1, PGD 0, from 1e-5 of area)."""
    path = tmp_path / "s.h5"
    _run(ResultsStore(path), "step", lambda r: [
        _fixed(r, 0, "pgd", 4 * U, [1, 1, 1, 1, 0], np.array([4, 4, 4, 4, 0]) + 5e-6 * 255),
        _fixed(r, 1, "apgd", 4 * U, [1, 1, 0, 0, 0], [4, 4, 4, 4, 0])])
    t = _rows(path)
    assert t.eps_range["pgd"] == pytest.approx(4 * U + 5e-6) and np.isnan(t.optimality).all()
    # APGD missed samples 2 and 3: both at E for the envelope, so only the gap at its budget shows it
    assert t.budget_gap["apgd"] == pytest.approx(0.4) and t.budget_gap["pgd"] == 0.0


def test_a_cascade_is_one_attack_and_each_prefix_of_its_stages_a_row(tmp_path):
    """Stages apgd -> apgd-t -> square broke samples 0, 1, 3 (stage 1, 2, 3) at Linf 5, 6, 7 (1/255); a PGD cell broke
    sample 2 at 8: envelope [5, 6, 8, 7], E = 8, sum of (E - d*) = 3 + 2 + 0 + 1 = 6. Sample 2, which the envelope
    breaks only at E, does not count in the area (AttackBench's range [0, E]): the cascade that missed it is 1,
    and the gap at its budget shows the miss."""
    def cells(run_id):
        cascade = _fixed(run_id, 0, "cascade", 8 * U, [1, 1, 0, 1, 0], [5, 6, 8, 7, 0])
        cascade.config["params"] = {"stages": [{"attack": a, "params": {}} for a in ("apgd", "apgd-t", "square")]}
        cascade.arrays["stage"] = np.array([1, 2, 0, 3, 0], np.int16)
        cascade.attrs["stage_seconds"] = [1.0, 2.0, 4.0]
        cascade.summary["seconds"] = 7.0
        return [cascade, _fixed(run_id, 1, "pgd", 8 * U, [0, 0, 1, 0, 0], [8, 8, 8, 8, 0])]

    path = tmp_path / "s.h5"
    _run(ResultsStore(path), "cascade", cells)
    t = attack_optimality([ResultsStore(path)])
    c = t[t.attack == "cascade"].set_index("prefix")
    assert list(c.index) == [0, 1, 2] and c.label[0] == "cascade(apgd -> apgd-t -> square)"
    assert c.label[1] == "cascade(apgd -> apgd-t -> square), first 1 stage"
    assert c.label[2] == "cascade(apgd -> apgd-t -> square), first 2 stages"
    assert c.optimality[0] == 1.0 and c.budget_gap[0] == pytest.approx(0.2)  # 1/5 robust at 8/255, envelope 0
    assert c.optimality[1] == pytest.approx(3 / 6) and c.optimality[2] == pytest.approx(5 / 6)
    assert c.broken.tolist() == [3, 1, 2]
    assert c.seconds.tolist() == [7.0, 1.0, 3.0]  # the whole cell's stored seconds; its first stages' ones
    assert c.queries[0] == 1.0 and c.queries[1:].isna().all()  # per-sample queries are the whole cascade's


def test_transfer_and_mask_confined_cells_feed_the_envelope_but_get_no_row(tmp_path):
    def cells(run_id):
        transfer = _fixed(run_id, 1, "transfer", 8 * U, [0, 0, 0, 1, 0], [1, 1, 1, 1, 0])
        transfer.config["params"] = {"source": "other", "attack": "pgd", "params": {}}
        patch = _fixed(run_id, 2, "eyeglass", 8 * U, [0, 0, 1, 0, 0], [3, 3, 3, 3, 0])
        return [_fixed(run_id, 0, "pgd", 8 * U, [1, 1, 1, 1, 0], [6, 6, 6, 6, 0]), transfer, patch]

    path = tmp_path / "s.h5"
    _run(ResultsStore(path), "mixed", cells)
    t = _rows(path)
    assert list(t.index) == ["pgd"]
    # envelope: [6, 6, 3 (eyeglass), 1 (transfer)], E = 6: pgd's own sum is 0 -> 0
    assert t.eps_range["pgd"] == pytest.approx(6 * U) and t.optimality["pgd"] == 0.0


def test_other_weights_are_other_models(tmp_path):
    """The same attacks on retrained weights are another key: their samples never meet."""
    path = tmp_path / "s.h5"
    st = ResultsStore(path)
    _run(st, "hand", hand_cells)
    _run(st, "retrained", lambda r: [_fixed(r, 0, "pgd", 8 * U, [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], sha="sha-other")],
         sha="sha-other")
    t = attack_optimality([st])
    mine = t[(t.checkpoint_sha256 == "sha-m") & (t.attack == "pgd")]
    assert mine.optimality.iloc[0] == pytest.approx(8 / 12)  # unchanged by the retrained weights' 1/255 breaks
    other = t[t.checkpoint_sha256 == "sha-other"]
    assert len(other) == 1 and np.isnan(other.optimality.iloc[0])  # alone there, and every break at its E


# --------------------------------------------------------------------------- the leaderboard's attack pages

def test_the_attack_page_lists_attacks_best_first_and_the_index_links_it(hand_store, tmp_path):
    out = render(tmp_path, [hand_store])
    index = (out / "README.md").read_text()
    assert "| [Attack optimality: synth-fr](attacks-synth-fr.md) | fr | synth-fr | 1 | attack optimality: dodging | - |" \
        in index
    page = (out / "attacks-synth-fr.md").read_text()
    assert page.startswith("# Attack optimality: synth-fr\n") and "[Back to the index](README.md)" in page
    assert not re.search(r"\d{4}-\d\d-\d\dT", page)  # nothing that changes from one render to the next
    attacks, envelope = [t for t in md_tables(page) if t["heading"] == "dodging"]
    assert attacks["headers"] == ["#", "attack", "norm", "budgets", "optimality (mean)", "optimality m (tiny)",
                                  "gap @ budgets (pp)", "models", "samples", "queries / sample", "s / sample"]
    assert col(attacks, "attack") == ["apgd", "min-eps", "pgd", "fgsm"]
    assert col(attacks, "optimality (mean)") == ["1.000", "0.833", "0.667", "0.000"]
    assert col(attacks, "optimality m (tiny)") == col(attacks, "optimality (mean)")
    assert col(attacks, "budgets") == ["8/255", "16/255 (min-norm)", "4/255, 8/255", "2/255"]
    assert col(attacks, "gap @ budgets (pp)") == ["0.0", "20.0", "20.0", "20.0"]
    assert col(attacks, "samples") == ["4"] * 4 and col(attacks, "queries / sample") == ["1", "1", "2", "1"]
    assert col(attacks, "s / sample") == ["0.25", "0.25", "0.5", "0.25"]
    # Linf only (no L2 attack has a row); exact: samples 0, 1 and 3 are the search's values (2, 4 and 8/255)
    assert envelope["rows"] == [["m (tiny)", "linf", "8/255", "4", "4", "3", "3"]]
    assert page == (render(tmp_path, [hand_store], name="again") / "attacks-synth-fr.md").read_text()
    render(tmp_path, [hand_store], fmt="csv", name="csv")
    rows = list(csv.DictReader((tmp_path / "csv" / "attacks-synth-fr-dodging.csv").open()))
    assert [r["attack"] for r in rows] == ["apgd", "min-eps", "pgd", "fgsm"]
    assert float(rows[2]["optimality"]) == pytest.approx(8 / 12) and rows[2]["optimality m (tiny)"] == rows[2]["optimality"]


def test_a_model_an_attack_did_not_run_on_is_na_and_the_mean_is_over_the_others(tmp_path):
    path = tmp_path / "s.h5"
    st = ResultsStore(path)
    _run(st, "hand", hand_cells)
    b = {"model": "b", "sha": "sha-b"}
    _run(st, "b", lambda r: [_fixed(r, 0, "pgd", 8 * U, [1, 1, 0, 0, 0], [2, 8, 8, 8, 0], **b),
                             _fixed(r, 1, "apgd", 8 * U, [1, 1, 1, 0, 0], [2, 4, 8, 8, 0], **b)], **b)
    attacks = [t for t in md_tables((render(tmp_path, [path]) / "attacks-synth-fr.md").read_text())
               if t["heading"] == "dodging"][0]
    rows = {a: dict(zip(attacks["headers"], r)) for a, r in zip(col(attacks, "attack"), attacks["rows"])}
    # model b: envelope [2, 4, 8, inf], E = 8: 6 + 4 = 10; pgd 6 + 0 = 6 -> 0.6; apgd 1
    assert rows["pgd"]["optimality b (tiny)"] == "0.600" and rows["apgd"]["optimality b (tiny)"] == "1.000"
    assert rows["pgd"]["optimality (mean)"] == f"{(0.6 + 8 / 12) / 2:.3f}" and rows["pgd"]["models"] == "2"
    assert rows["min-eps"]["optimality b (tiny)"] == "n/a" and rows["min-eps"]["optimality (mean)"] == "0.833"


def test_no_attack_page_when_nothing_was_broken_at_a_positive_norm(tmp_path):
    path = tmp_path / "s.h5"
    _run(ResultsStore(path), "none", lambda r: [_fixed(r, 0, "pgd", 8 * U, [0, 0, 0, 0, 0], [8, 8, 8, 8, 0])])
    out = render(tmp_path, [path])
    assert not (out / "attacks-synth-fr.md").exists() and "attacks-synth-fr" not in (out / "README.md").read_text()


def test_the_same_attack_with_other_parameters_is_told_apart_by_what_differs():
    """Two versions of one cascade in a store (e.g. an earlier `standard`'s) get lines labelled by the parameters that
    differ, named after the stage they belong to, not by the whole parameter JSON."""
    from bench.leaderboard.pages.attacks import _flat_params

    def cascade(steps: int, targets: int) -> dict:
        return {"stages": [{"attack": "apgd", "params": {"steps": steps, "rho": 0.75}},
                           {"attack": "apgd-t", "params": {"steps": steps, "n_targets": targets}},
                           {"attack": "square", "params": {"max_queries": 5000}}]}

    old, new = _flat_params(cascade(25, 3)), _flat_params(cascade(100, 9))
    assert new == {"apgd.steps": "100", "apgd.rho": "0.75", "apgd-t.steps": "100", "apgd-t.n_targets": "9",
                   "square.max_queries": "5000"}
    assert sorted(k for k in new if new[k] != old[k]) == ["apgd-t.n_targets", "apgd-t.steps", "apgd.steps"]
    assert _flat_params({"steps": 10, "eps_step": None}) == {"steps": "10", "eps_step": "None"}
