"""The worst-case cascade, minimal-eps cells, transfer cells and the standard / full suites."""
import json
import textwrap

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from attacks import make_attack
from attacks.base import Attack, AttackOutput
from bench.batching import batched_scores
from bench.cells import CascadeEntry, TransferEntry, attack_cell, cascade_cell, transfer_cell
from bench.cli import main
from bench.errors import BadInputError, FacebenchError
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore
from bench.suites import load_suite
from bench.tasks.items import GoalItems
from bench.tasks import VerificationTask
from tests.helpers import SMALL_USER_EMBEDDER, LinearEmbedder, linear_spoof


class TanhEmbedder(torch.nn.Module):
    """A small nonlinear embedder (saturating hidden layer): one-step and iterative attacks differ on it."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.randn(64, 192, generator=g) / 192**0.5 * 12
        self.w2 = torch.randn(16, 64, generator=g) / 8

    def forward(self, x):
        return torch.nn.functional.normalize(torch.tanh(x.flatten(1) @ self.w1.T) @ self.w2.T, dim=1)


def _verification_items(n=48, seed=0, linear=False):
    """Impersonation on an embedder; on the nonlinear one, stages of different strength break different samples."""
    torch.manual_seed(seed)
    model = LinearEmbedder(3 * 8 * 8, dim=16) if linear else TanhEmbedder(seed)
    x = torch.rand(n, 3, 8, 8)
    refs = model(torch.rand(n, 3, 8, 8)).detach()
    clean = (model(x) * refs).sum(1)
    tau = float(clean.quantile(0.9))
    task = VerificationTask(model, refs, tau, "impersonation")
    return GoalItems("impersonation", x, task, [f"p{i}" for i in range(n)]), batched_scores(task, x, 64)


class Spy(Attack):
    """Wraps an attack and records which rows (by their clean input) each call saw."""

    name = "spy"

    def __init__(self, inner: Attack, x_all: torch.Tensor) -> None:
        self.inner, self.x_all, self.seen = inner, x_all, []

    def run(self, task, x, norm, eps, generator=None) -> AttackOutput:
        rows = [int((self.x_all == r).flatten(1).all(1).nonzero()[0]) for r in x]
        self.seen.append(rows)
        return self.inner.run(task, x, norm, eps, generator=generator)


# deterministic stages (no random start): a sample's result does not depend on which others share its batch
STAGES = [("bim", {"steps": 1, "step_size": 0.3}), ("fgsm", {}), ("apgd", {"steps": 12, "random_start": False})]


def test_cascade_is_the_union_of_its_stages_and_each_stage_sees_only_unbroken_samples():
    items, clean = _verification_items()
    eps = 4 / 255
    alone = [attack_cell(items, clean, make_attack(a, p), "linf", eps, 16, seed=0) for a, p in STAGES]
    spies = [Spy(make_attack(a, p), items.x) for a, p in STAGES]
    res = cascade_cell(items, clean, spies, "linf", eps, 16, seed=0)
    clean_broken = ~alone[0]["clean_correct"]
    broken = [c["success"] & ~clean_broken for c in alone]
    # the stages differ (else this test could not tell a cascade from one attack)
    assert 0 < broken[0].sum() < (broken[0] | broken[1]).sum() < (broken[0] | broken[1] | broken[2]).sum() < (~clean_broken).sum()
    union = broken[0] | broken[1] | broken[2] | clean_broken
    assert np.array_equal(res.arrays["success"], union)
    # the stage that broke each sample is the first stage that breaks it alone; 0 = none
    first = np.select(broken, [1, 2, 3], default=0)
    assert np.array_equal(res.arrays["stage"], first)
    # each stage saw exactly the attacked samples every earlier stage failed on, in batches of <= 16
    still = ~clean_broken
    for k, spy in enumerate(spies):
        seen = [r for call in spy.seen for r in call]
        assert sorted(seen) == sorted(np.flatnonzero(still).tolist()), k
        assert all(len(call) <= 16 for call in spy.seen)
        assert res.stage_attacked[k] == still.sum() and res.stage_broken[k] == broken[k][still].sum()
        still = still & ~broken[k]
    # queries are summed over the stages a sample went through
    expect = np.zeros(len(union), dtype=np.int64)
    for k, cell in enumerate(alone):
        went = ~clean_broken & ((first == 0) | (first >= k + 1))
        expect[went] += cell["queries"][went]
    assert np.array_equal(res.arrays["queries"], expect)
    # the breaking stage's point is stored: its score is the stage's own score on that sample
    for k, cell in enumerate(alone):
        sel = first == k + 1
        assert np.allclose(res.arrays["adv_score"][sel], cell["adv_score"][sel], atol=1e-5)


def test_cascade_at_least_as_strong_as_each_stage_and_in_budget():
    items, clean = _verification_items(seed=1)
    for eps in (2 / 255, 8 / 255):
        alone = [attack_cell(items, clean, make_attack(a, p), "linf", eps, 64, seed=0) for a, p in STAGES]
        res = cascade_cell(items, clean, [make_attack(a, p) for a, p in STAGES], "linf", eps, 64, seed=0)
        for cell in alone:
            assert (res.arrays["success"] | ~cell["success"]).all()  # per sample: broken by a stage -> by the cascade
        assert (res.arrays["linf"] <= eps + 1e-6).all()


def _spoof_items(n=32, seed=0):
    model, x, task = linear_spoof(n, seed)
    return GoalItems("spoof-to-live", x, task, [f"f{i}" for i in range(n)]), batched_scores(task, x, 64), model


def test_min_eps_is_stored_and_agrees_with_success_at_the_budget():
    items, clean, model = _spoof_items()
    eps = 4 / 255
    arrays = attack_cell(items, clean, make_attack("min-eps", {"attack": "pgd", "attack_steps": 20, "search_steps": 10}),
                         "linf", eps, 64, seed=0)
    m, ok = arrays["min_eps"], arrays["success"]
    assert 0 < ok.sum() < len(ok)  # some but not all broken at this budget
    assert np.array_equal(m <= eps + 1e-7, ok)  # min_eps <= eps iff broken
    assert np.isinf(m[~ok]).all()
    # on a linear model the exact minimal Linf budget is -score / ||w||_1 (inside the box here)
    exact = (-clean / model.w.abs().sum()).numpy()
    assert np.all(m[ok] >= exact[ok] - 1e-6) and np.all(m[ok] <= exact[ok] + eps / 2**10 + 1e-6)
    assert "min_eps" not in attack_cell(items, clean, make_attack("pgd"), "linf", eps, 64, seed=0)


def test_transfer_from_an_identical_source_reproduces_white_box_success():
    items, clean = _verification_items(seed=2)
    eps = 2 / 255
    pgd = make_attack("pgd", {"steps": 10})
    white = attack_cell(items, clean, pgd, "linf", eps, 64, seed=5)
    arrays, src_q = transfer_cell(items, clean, items, pgd, "linf", eps, 64, seed=5)
    assert 0 < white["success"][white["attacked"]].sum() < white["attacked"].sum()
    assert np.array_equal(arrays["success"], white["success"])
    assert (arrays["queries"][arrays["attacked"]] == 1).all() and src_q == 11  # every step on the source, no early stop
    other, _ = _verification_items(seed=3)
    with pytest.raises(RuntimeError, match="items differ"):
        transfer_cell(items, clean, GoalItems("impersonation", items.x, other.task, ["q"] * len(items.x)), pgd, "linf",
                      eps, 64, seed=5)


# ---------------------------------------------------------------------------- suites and YAML


def _suite_file(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_default_transfer_sources_add_the_shipped_weights_of_a_named_own_checkpoint():
    """The full suite's default transfer sources are the other zoo variants of the task; a variant's weights of the
    user's own run under a `--name` are attacked from the shipped weights of that variant too (other weights of the
    same network: the transfer a retraining is most exposed to)."""
    from bench.planning import transfer_sources
    from models_zoo.factory import resolve_model

    full = load_suite("full")
    _, shipped = transfer_sources(resolve_model("triplet-adv"), full)
    _, own = transfer_sources(resolve_model("triplet-adv", name="triplet-adv-mine"), full)
    assert "triplet-adv" not in shipped and "facenet-baseline" in shipped
    assert set(own) == set(shipped) | {"triplet-adv"}


def test_built_in_suites_declare_the_cascade_and_transfer():
    std, full = load_suite("standard"), load_suite("full")
    cascades = [e for e in std.entries if isinstance(e, CascadeEntry)]
    # the face budgets (issue 17): evasion goals at Linf 0.5-4/255, targeted goals at 2-8/255, L2 0.5 for every goal
    assert {(e.norm, e.goals, tuple(round(v * 255, 3) if e.norm == "linf" else v for v in e.eps)) for e in cascades} == {
        ("linf", ("dodging", "misidentify", "spoof-to-live", "live-to-spoof"), (0.5, 1.0, 2.0, 4.0)),
        ("linf", ("impersonation", "target-identity"), (2.0, 4.0, 8.0)), ("l2", None, (0.5,))}
    for e in cascades:
        names = [s.attack for s in e.stages]
        assert names[:2] == ["apgd", "apgd-t"] and names[-1] == "square"
        assert e.stages[-1].params["max_queries"] == 5000
        # AutoAttack's strength (issue 17): APGD 100 iterations, APGD-T up to 9 targets
        assert e.stages[0].params["steps"] == e.stages[1].params["steps"] == 100 and e.stages[1].params["n_targets"] == 9
    fmn = {(e.norm, round(e.eps[0], 6)) for e in std.entries if getattr(e, "attack", None) == "fmn"}
    assert fmn == {("linf", round(16 / 255, 6)), ("l2", 2.0)}  # every standard run measures per-sample minimal norms
    assert all(any(e == f for f in full.entries) for e in std.entries)
    attacks = {getattr(e, "attack", None) for e in full.entries}
    assert {"fgsm", "mim", "cw-l2", "foolbox-deepfool", "art-hopskipjump", "eyeglass", "patch", "min-eps", "fmn"} <= attacks
    assert any(isinstance(e, TransferEntry) for e in full.entries)


def test_suites_command_lists_standard_and_full():
    out = CliRunner().invoke(main, ["suites"]).output
    assert "standard" in out and "full" in out and "cascade(apgd" in out and "transfer[" in out


def test_yaml_cascade_parses(tmp_path):
    suite = load_suite(_suite_file(tmp_path, """
        attacks:
          - cascade:
              - {attack: apgd, params: {steps: 5}}
              - apgd-t
            norm: l2
            eps: [0.5, 1.0]
          - transfer: {attack: pgd, params: {steps: 3}, sources: [facenet-baseline]}
            eps: 8/255
    """))
    cascade, transfer = suite.entries
    assert [s.attack for s in cascade.stages] == ["apgd", "apgd-t"] and cascade.eps == (0.5, 1.0)
    assert cascade.cell_params()["stages"][0]["params"]["steps"] == 5
    assert transfer.sources == ("facenet-baseline",) and transfer.params == {"steps": 3}


@pytest.mark.parametrize("body,message", [
    ("  - cascade: []\n    eps: 8/255\n", "non-empty list"),
    ("  - cascade: [{attack: nope}]\n    eps: 8/255\n", "nope"),
    ("  - cascade: [{params: {steps: 2}}]\n    eps: 8/255\n", "stage #1 needs 'attack'"),
    ("  - cascade: [{attack: pgd, norm: l2}]\n    eps: 8/255\n", "unknown keys"),
    ("  - cascade: [{attack: cw-l2}]\n    eps: 8/255\n", "does not support norm"),
    ("  - cascade: [{attack: pgd, params: {steps: -1}}]\n    eps: 8/255\n", "steps must be >= 1"),
    ("  - cascade: [transfer]\n    eps: 8/255\n", "must be an attack"),
    ("  - cascade: [pgd]\n", "needs 'eps'"),
    ("  - {attack: pgd, cascade: [fgsm], eps: 8/255}\n", "exactly one of"),
    ("  - cascade: [pgd]\n    eps: 8/255\n    params: {steps: 2}\n", "unknown keys"),
    ("  - transfer: {attack: art-pgd}\n    eps: 8/255\n", "native attack"),
    ("  - transfer: {sources: []}\n    eps: 8/255\n", "non-empty list"),
    ("  - cascade: [pgd]\n    eps: 2\n", "outside (0, 1]"),
])
def test_bad_cascade_entries_are_refused_in_one_line(tmp_path, body, message):
    path = _suite_file(tmp_path, "attacks:\n" + body)
    with pytest.raises(FacebenchError) as e:  # BadInputError, or UnknownNameError for an unknown attack
        load_suite(path)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text,message", [
    ("attacks:\n  - attack: pgd\n    eps: [4/255\n  - attack: fgsm\n",
     "is not valid YAML: line 4, column 11: expected ',' or ']', but got ':' (while parsing a flow sequence at line 3, "
     "column 10)"),
    ("attacks:\n\t- attack: fgsm\n", "is not valid YAML: line 2, column 1: found character '\\t' that cannot start"),
])
def test_broken_yaml_names_its_line_and_column(tmp_path, text, message):
    path = _suite_file(tmp_path, text)
    with pytest.raises(BadInputError) as e:
        load_suite(path)
    assert str(e.value).startswith(f"suite file {path} {message}") and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("entry,message", [
    ("  - {attack: pgd, eps: [4/255, 300/255]}", "entry #2 at line 5 (pgd): Linf budget 1.17647 (300/255) is outside (0, 1]"),
    ("  - {attack: pgd, eps: [4/255, abc]}", "entry #2 at line 5: budget 'abc' is not a number or a fraction like 8/255"),
    ("  - {attack: pgd, norm: l2, eps: -1}", "entry #2 at line 5: budget -1 must be a positive finite number"),
    ("  - {attack: pgd, norm: lfoo, eps: 0.5}", "entry #2 at line 5 (pgd): unknown norm 'lfoo'"),
    ("  - cascade: [pgd]\n    eps: 2", "entry #2 at line 5 (cascade(pgd)): Linf budget 2 (510/255) is outside (0, 1]"),
    ("  - {attack: nope, eps: 8/255}", "entry #2 at line 5 (nope): unknown attack 'nope'"),
])
def test_a_bad_entry_names_the_file_the_entry_and_its_line(tmp_path, entry, message):
    path = _suite_file(tmp_path, "name: s\ngoals: [dodging]\nattacks:\n  - {attack: fgsm, eps: 8/255}\n" + entry + "\n")
    with pytest.raises(FacebenchError) as e:
        load_suite(path)
    assert str(e.value).startswith(f"{path}: {message}") and "\n" not in str(e.value), str(e.value)


def test_a_bad_entry_of_a_suite_built_in_code_names_the_suite_and_the_entry():
    from bench.cells import AttackEntry
    from bench.suites import Suite

    with pytest.raises(BadInputError, match=r"^suite 'mine': entry #2 \(pgd\): Linf budget 2 \(510/255\) is outside"):
        Suite("mine", "", (AttackEntry("fgsm", "linf", (0.5,)), AttackEntry("pgd", "linf", (2.0,)))).validate()


# ---------------------------------------------------------------------------- through the runner and the store

MODEL = SMALL_USER_EMBEDDER


def test_run_stores_cascade_min_eps_and_refuses_bad_sources(tmp_path):
    (tmp_path / "cascade_model.py").write_text(MODEL)
    suite = _suite_file(tmp_path, """
        attacks:
          - cascade: [fgsm, {attack: apgd, params: {steps: 5}}]
            eps: [1/255, 4/255]
          - attack: min-eps
            eps: 8/255
            params: {attack: pgd, attack_steps: 5, search_steps: 4}
    """)
    store = tmp_path / "r.h5"
    cfg = RunConfig(model=f"{tmp_path / 'cascade_model.py'}:build", task="fr", suite=suite, samples=10, store=str(store),
                    device="cpu")
    outcome = run_benchmark(cfg, progress=False)
    st = ResultsStore(store)
    cells = {(c.config["attack"], round(c.config["eps"] * 255)): c for c in st.read_cells([s["cell_id"] for s in outcome.summaries])}
    for goal_cells in (outcome.summaries,):
        assert {s["attack"] for s in goal_cells} == {"cascade", "min-eps"}
    for eps in (1, 4):
        c = cells[("cascade", eps)]
        stage = c.arrays["stage"]
        per = json.loads(c.attrs["stage_broken"])
        assert c.attrs["stage_attacked"] and json.loads(c.attrs["stages"])[0] == "fgsm"
        assert per == [int((stage == k + 1).sum()) for k in range(2)]
        assert np.array_equal(c.arrays["success"] & c.arrays["attacked"], stage > 0)
        assert "min_eps" not in c.arrays
    m = cells[("min-eps", 8)]
    assert np.array_equal((m.arrays["min_eps"] <= 8 / 255 + 1e-7) & m.arrays["attacked"], m.arrays["success"] & m.arrays["attacked"])
    assert "median_min_eps" in m.summary
    with h5py.File(store, "r") as f:
        assert int(f.attrs["schema_minor"]) == 2
    # a user model's transfer sources must be zoo models of its task
    bad = _suite_file(tmp_path, "attacks:\n  - transfer: {sources: [cdcn]}\n    eps: 8/255\n", "bad.yaml")
    with pytest.raises(BadInputError, match="cdcn.*a fas model, not fr"):
        run_benchmark(RunConfig(model=cfg.model, task="fr", suite=bad, samples=4, store=str(tmp_path / "b.h5"), device="cpu"),
                      progress=False)
    assert not (tmp_path / "b.h5").exists()


def test_old_cells_without_optional_arrays_read_back(tmp_path):
    from tests.test_store import _cell as store_cell

    st = ResultsStore(tmp_path / "s.h5")
    cell = store_cell("c1")
    st.write_cell(cell)
    with h5py.File(tmp_path / "s.h5", "a") as f:  # as a v1.1 store wrote it
        f.attrs["schema_minor"] = 1
    st.write_cell(store_cell("c0"))
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert int(f.attrs["schema_minor"]) == 1  # no v1.2 field written: the store stays 1.1
    (back,) = st.read_cells(["c1"])
    assert "min_eps" not in back.arrays and "stage" not in back.arrays
    new = store_cell("c2")
    new.arrays["min_eps"] = np.array([0, 0.1, np.inf, 0.2, 0.3], dtype=np.float32)
    st.write_cell(new)
    (back,) = st.read_cells(["c2"])
    assert np.array_equal(back.arrays["min_eps"], new.arrays["min_eps"])
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert int(f.attrs["schema_minor"]) == 2
    bad = store_cell("c3")
    bad.arrays["junk"] = np.zeros(5)
    with pytest.raises(ValueError, match="does not know"):
        st.write_cell(bad)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert sorted(f["cells"]) == ["c0", "c1", "c2"]  # nothing half-written


# ---------------------------------------------------------------------------- slow: zoo models


@pytest.mark.slow
def test_full_suite_on_cdcn_end_to_end(tmp_path):
    store = tmp_path / "full.h5"
    res = CliRunner().invoke(main, ["run", "--model", "cdcn", "--attack-suite", "full", "--samples", "16", "--store",
                                    str(store), "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    st = ResultsStore(store)
    run = st.run()
    assert run["status"] == "complete"
    cells = st.read_cells(run["cell_ids"])
    assert len(cells) == run["cells_planned"] == len(run["cell_ids"])
    bad = [(c.config["attack"], c.config["eps"], c.unreliable_reason) for c in cells if c.unreliable]
    assert not bad, bad
    integrity = json.loads(run["integrity"])
    assert all(v == "passed" for g in integrity.values() for k, v in g.items() if k != "eot"), integrity
    sources = {c.attrs["source_model"] for c in cells if c.config["attack"] == "transfer"}
    assert sources == {"depth-gan-spoof", "multiloss-sota"}
    assert all("min_eps" in c.arrays for c in cells if c.config["attack"] in ("min-eps", "cw-l2", "fmn"))
    assert all("stage" in c.arrays for c in cells if c.config["attack"] == "cascade")
    by = {(c.config["attack"], c.config["norm"], round(c.config["eps"], 6)): int(c.arrays["success"].sum()) for c in cells}
    for eps in (0.5 / 255, 4 / 255):  # spoof-to-live's face budgets: the smallest and the largest
        assert by[("cascade", "linf", round(eps, 6))] >= by[("fgsm", "linf", round(eps, 6))]
