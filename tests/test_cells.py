"""Cell kinds: each kind owns its cells (tests/test_suites_cascade.py covers the built-in kinds' results); a new kind
is one module plus one registration; the transfer kind's crafting view of the source task."""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
import pytest
import torch

from attacks import make_attack
from bench.batching import batched_scores
from bench.cells import CELL_KINDS, CellInputs, CellKind, CellOutput, NoStopTask, PlannedCell, kind_of, transfer_cell
from bench.cells.base import cell_arrays, entry_from_dict, total
from bench.cells.parsing import eps_of
from bench.errors import BadInputError
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore
from bench.suites import load_suite
from bench.tasks import IdentificationTask, gallery_templates
from bench.tasks.items import GoalItems
from tests.helpers import SMALL_USER_EMBEDDER, LinearEmbedder


# ---------------------------------------------------------------------------------------------- transfer crafting


def _identification(n=12, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = LinearEmbedder(3 * 4 * 4, dim=8, seed=seed)
    gallery = torch.rand(3 * k, 3, 4, 4, generator=g)
    templates = gallery_templates(model(gallery), torch.arange(k).repeat_interleave(3), k)
    x = torch.rand(n, 3, 4, 4, generator=g)
    labels = (model(x).detach() @ templates.T).argmax(1)  # every probe correct on clean input
    return model, templates, x, labels


class SpyTask(IdentificationTask):
    """An identification task that records the ranks its margin is retargeted to."""

    ranks: list

    def _spy(self, task):
        task.__class__, task.ranks = SpyTask, self.ranks
        return task

    def retarget(self, clean_scores, rank):
        self.ranks.append(rank)
        return self._spy(super().retarget(clean_scores, rank))

    def subset(self, index):
        return self._spy(super().subset(index))


def test_crafting_view_keeps_the_source_tasks_targets_and_never_stops():
    model, templates, x, labels = _identification()
    task = IdentificationTask(model, templates, labels, "misidentify")
    view = NoStopTask(task)
    clean = task.scores(x)
    assert task.num_targets() == 4 and view.num_targets() == 4  # k - 1 other identities
    for rank in range(4):
        aimed = view.retarget(clean, rank)
        assert isinstance(aimed, NoStopTask)
        assert torch.allclose(aimed.margin(x), task.retarget(clean, rank).margin(x))
        assert not aimed.success(x).any()
    # the deliberate differences: the goal is never reported reached, no item counts as broken on clean input
    assert not view.success_from_scores(torch.zeros_like(clean)).any() and not view.broken_on_clean(clean).any()
    pick = torch.tensor([2, 0])
    assert torch.equal(view.subset(pick).scores(x[pick]), task.subset(pick).scores(x[pick]))


def test_transfer_cell_crafted_with_apgd_t_aims_at_every_target_on_the_source():
    """A transfer cell crafted with APGD-T on misidentify retargets the source's margin to each of its top-n
    other identities (it aimed at one only when the crafting view did not forward the targets)."""
    model, templates, x, labels = _identification(seed=1)
    source_model, source_templates, _, _ = _identification(seed=2)
    ids = [f"p{i}" for i in range(len(labels))]
    task = IdentificationTask(model, templates, labels, "misidentify")
    spy = SpyTask(source_model, source_templates, labels, "misidentify")
    spy.ranks = []
    items, source = GoalItems("misidentify", x, task, ids), GoalItems("misidentify", x, spy, ids)
    attack = make_attack("apgd-t", {"steps": 3, "n_targets": 3})
    arrays, _ = transfer_cell(items, batched_scores(task, x, 64), source, attack, "linf", 4 / 255, 64, seed=0)
    assert sorted(set(spy.ranks)) == [0, 1, 2]
    assert arrays["attacked"].all() and len(arrays["success"]) == len(ids)


# ---------------------------------------------------------------------------------------------- a toy cell kind


@dataclass(frozen=True)
class NoiseEntry(CellKind):
    """A toy cell kind: uniform random sign noise at the full budget, `tries` draws per sample, no registered
    attack involved. YAML: `{noise: {tries: N}, norm: linf, eps: [...]}`."""

    tries: int
    norm: str
    eps: tuple[float, ...]

    kind: ClassVar[str] = "noise"
    yaml_keys = frozenset({"norm", "eps"})
    merge = {"draws": total}
    black_box = True

    @classmethod
    def from_dict(cls, item, where):
        spec = item["noise"] or {}
        return cls(int(spec.get("tries", 1)), str(item.get("norm", "linf")), eps_of(item, where))

    def label(self) -> str:
        return f"noise(tries={self.tries})"

    def validate(self, goals) -> None:
        if self.norm != "linf" or self.tries < 1:
            raise BadInputError("noise: Linf only, tries >= 1")

    def plan(self, goal, default_sources) -> list[PlannedCell]:
        return [PlannedCell(goal, self.kind, self.kind, {"tries": self.tries}, self.norm, eps, self) for eps in self.eps]

    def config_fields(self, cell, source_sha) -> dict:
        return {"attack": self.kind, "backend": "native", "params": cell.params}

    def compute(self, inputs: CellInputs) -> CellOutput:
        items, cell = inputs.items, inputs.cell
        gen = torch.Generator().manual_seed(inputs.seed)
        x = items.x
        best = x.clone()
        for _ in range(cell.params["tries"]):
            sign = torch.randint(0, 2, x.shape, generator=gen).to(x) * 2 - 1
            cand = (x + cell.eps * sign).clamp(0, 1)
            better = items.task.margin(cand) > items.task.margin(best)
            best[better] = cand[better]
        queries = torch.full((x.shape[0],), cell.params["tries"], dtype=torch.long)
        arrays = cell_arrays(items, inputs.clean, best, queries, "noise", cell.norm, cell.eps, inputs.batch)
        return CellOutput(arrays, {"draws": cell.params["tries"] * x.shape[0]})

    def finish(self, cell, attrs, arrays, source_sha):
        return {**attrs, "noise_tries": cell.params["tries"]}, f"noise {cell.goal}: {attrs['draws']} draws"

    @classmethod
    def stored_label(cls, config, detailed=False) -> str:
        return f"noise x{config['params']['tries']}"

    @classmethod
    def example_attack(cls, config) -> Optional[tuple]:
        return None


@pytest.fixture
def noise_kind(monkeypatch):
    """The toy kind registered for one test (monkeypatch removes it from the registry afterwards)."""
    monkeypatch.setitem(CELL_KINDS, "noise", NoiseEntry)
    return NoiseEntry


MODEL = SMALL_USER_EMBEDDER


def test_a_new_cell_kind_is_one_module_plus_one_registration(noise_kind, tmp_path):
    (tmp_path / "toy_model.py").write_text(MODEL)
    suite = tmp_path / "noise.yaml"
    suite.write_text(textwrap.dedent("""
        name: noise-and-fgsm
        attacks:
          - {noise: {tries: 3}, norm: linf, eps: [4/255, 16/255]}
          - {attack: fgsm, norm: linf, eps: [16/255]}
    """))
    assert [type(e).__name__ for e in load_suite(str(suite)).entries] == ["NoiseEntry", "AttackEntry"]
    with pytest.raises(BadInputError, match="exactly one of 'attack', 'cascade', 'transfer' or 'noise'"):
        entry_from_dict({"eps": 1}, "x")
    store = tmp_path / "r.h5"
    lines = []
    cfg = RunConfig(model=f"{tmp_path / 'toy_model.py'}:build", task="fr", suite=str(suite), samples=8, store=str(store),
                    device="cpu", shard_size=5)
    outcome = run_benchmark(cfg, progress=False, log=lines.append)
    noise = [s for s in outcome.summaries if s["attack"] == "noise"]
    assert len(noise) == 4 and {s["goal"] for s in noise} == {"dodging", "impersonation"}
    cells = ResultsStore(store).read_cells([s["cell_id"] for s in noise])
    for c in cells:
        assert kind_of(c.config) is NoiseEntry and c.config["params"] == {"tries": 3}
        assert int(c.attrs["draws"]) == 3 * len(c.arrays["sample_id"]) == 24  # two shards (5 + 3), summed
        assert int(c.attrs["noise_tries"]) == 3
        assert np.all(c.arrays["linf"] <= c.config["eps"] + 1e-6)
    assert sum(line.startswith("noise ") for line in lines) == 4
    # a stored cell reads back through its kind: the CLI's attack column and the cross-cell checks
    from bench.checks import _is_black_box
    from bench.cli import _attack_label

    assert _attack_label(cells[0].config) == "noise x3" and _is_black_box(cells[0].config)
    # the same command again reuses every cell
    again = run_benchmark(cfg, progress=False)
    assert again.computed == 0 and again.reused == len(outcome.summaries)
    assert json.loads(json.dumps(outcome.summaries[0], default=str))["cell_id"]


# ---------------------------------------------------------------------------------------------- kind + page end to end


def test_a_toy_cell_kind_and_a_toy_page_end_to_end(noise_kind, tmp_path):
    """A toy cell kind and a toy leaderboard page, each registered for this test only: the kind's cells are computed
    and stored by a run, and the page (which lists them through the kind's labels) is rendered and linked."""
    from dataclasses import dataclass as dc

    from bench.leaderboard import write_leaderboard
    from bench.leaderboard.cells import attack_label
    from bench.leaderboard.pages import PAGES, Board, Options, PageKind, register_page
    from bench.leaderboard.pages.kind import IndexEntry
    from bench.report import Cell, Page, Table

    @dc(frozen=True)
    class NoisePage(PageKind):
        """Per model and goal, how many samples the noise cells broke."""

        def build(self, board: Board, options: Options) -> list[Page]:
            rows = [[Cell(r.model, code=True), Cell(r.goal), Cell(attack_label(c)),
                     Cell(str(int(c.arrays["success"].sum())))]
                    for r in board.rows for c in r.cells if kind_of(c.config) is NoiseEntry]
            return [Page(self.name, self.title, [Table("noise-cells", "", ["model", "goal", "attack", "broken"], rows,
                                                       [{"n": len(rows)}] * len(rows))])]

        def index_entry(self, page: Page, board: Board) -> IndexEntry:
            return IndexEntry("fr", "every protocol", "-", "-", "-", {})

    (tmp_path / "toy_model.py").write_text(MODEL)
    suite = tmp_path / "noise.yaml"
    suite.write_text("attacks:\n  - {noise: {tries: 2}, norm: linf, eps: [8/255]}\n")
    store = tmp_path / "r.h5"
    run_benchmark(RunConfig(model=f"{tmp_path / 'toy_model.py'}:build", task="fr", suite=str(suite), samples=6,
                            store=str(store), device="cpu"), progress=False)
    saved = dict(PAGES)
    register_page(NoisePage("noise-cells", "Noise cells"))
    try:
        written = write_leaderboard([store], tmp_path / "lb", examples=False)
    finally:
        PAGES.clear()
        PAGES.update(saved)
    names = {p.name for p in written}
    assert "noise-cells.md" in names
    page = (tmp_path / "lb" / "noise-cells.md").read_text()
    assert page.count("noise x2") == 2  # one cell per goal (dodging, impersonation), labelled by the kind
    assert "(noise-cells.md)" in (tmp_path / "lb" / "README.md").read_text()
    verification = next(p for p in written if p.name.startswith("fr-verification"))
    assert "noise x2" in verification.read_text()  # the goal pages' attack lists read the kind's label too


# ---------------------------------------------------------------------------------------------- entries naming goals


def test_an_entry_may_name_its_goals_and_a_goal_without_entries_is_refused(tmp_path):
    """Budgets chosen per goal (the face budgets): an entry with `goals:` plans cells for those goals only."""
    from bench.config import parse_eps
    from bench.planning import plan
    from bench.suites import EVASION_LINF, SUITES, TARGETED_LINF

    suite = tmp_path / "per-goal.yaml"
    suite.write_text(textwrap.dedent("""
        attacks:
          - {attack: fgsm, norm: linf, eps: [1/255, 2/255], goals: [dodging]}
          - {attack: fgsm, norm: linf, eps: [8/255], goals: impersonation}
          - {attack: fgsm, norm: l2, eps: [0.5]}
    """))
    s = load_suite(str(suite))
    grid = plan(s, ("dodging", "impersonation"))
    assert sorted((c.goal, c.norm, round(c.eps * 255, 3) if c.norm == "linf" else c.eps) for c in grid) == [
        ("dodging", "l2", 0.5), ("dodging", "linf", 1.0), ("dodging", "linf", 2.0),
        ("impersonation", "l2", 0.5), ("impersonation", "linf", 8.0)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("attacks:\n  - {attack: fgsm, norm: linf, eps: [1/255], goals: [dodgeing]}\n")
    with pytest.raises(BadInputError, match=r"entry #1 at line 2 \(fgsm\): unknown goal 'dodgeing'"):
        load_suite(str(bad))
    bad.write_text("attacks:\n  - {attack: fgsm, norm: linf, eps: [1/255], goals: []}\n")
    with pytest.raises(BadInputError, match="'goals' must be a goal or a non-empty list"):
        load_suite(str(bad))
    only = tmp_path / "only.yaml"
    only.write_text("attacks:\n  - {attack: fgsm, norm: linf, eps: [8/255], goals: [impersonation]}\n")
    (tmp_path / "toy_model.py").write_text(MODEL)
    store = tmp_path / "r.h5"
    with pytest.raises(BadInputError, match="has no entry for goal dodging"):
        run_benchmark(RunConfig(model=f"{tmp_path / 'toy_model.py'}:build", task="fr", suite=str(only), samples=4,
                                store=str(store), device="cpu"), progress=False)
    assert not store.exists()  # refused before any work
    # the built-in grids: evasion goals at 0.5-4/255, targeted ones at 2-8/255, in quick and standard alike
    for name in ("quick", "standard"):
        cells = plan(SUITES.get(name), ("dodging", "impersonation", "spoof-to-live"))
        for goal, grid in (("dodging", EVASION_LINF), ("spoof-to-live", EVASION_LINF), ("impersonation", TARGETED_LINF)):
            linf = {round(c.eps * 255, 3) for c in cells if c.goal == goal and c.norm == "linf" and c.attack != "fmn"}
            assert linf == {round(parse_eps(b) * 255, 3) for b in grid}, (name, goal)


def test_the_data_fingerprint_is_part_of_a_cells_id_but_not_of_its_seed(tmp_path, monkeypatch):
    """A cell computed on other data is another cell (a run never reuses it); the same cell on other data draws the
    same random numbers, so here, where only the fingerprint differs, the per-sample results are identical."""
    from bench.protocols.registry import get_protocol
    from bench.store import cell_id_of

    suite = tmp_path / "s.yaml"
    suite.write_text("goals: [impersonation]\nattacks:\n  - attack: pgd\n    params: {steps: 3, random_start: true}\n"
                     "    eps: [8/255]\n")
    store = tmp_path / "r.h5"
    protocol = type(get_protocol("synth-fr"))

    def run():
        return run_benchmark(RunConfig(model="facenet-baseline", suite=str(suite), samples=6, device="cpu",
                                       store=str(store)), progress=False)

    first = run()
    (cell,) = ResultsStore(store).read_cells()
    assert cell.config["data"] == get_protocol("synth-fr").data_fingerprint(64) and cell.cell_id == cell_id_of(cell.config)
    assert run().reused == 1  # the same data: the stored cell
    monkeypatch.setattr(protocol, "data_fingerprint", lambda self, size: "other-world")
    second = run()
    assert (first.reused, second.reused) == (0, 0)
    cells = {c.config["data"]: c for c in ResultsStore(store).read_cells()}
    assert set(cells) == {cell.config["data"], "other-world"}
    for name in ("sample_id", "success", "adv_score", "clean_score"):
        assert np.array_equal(cells["other-world"].arrays[name], cell.arrays[name]), name
