"""The goal vocabulary (bench/goals.py): one record per goal, read by suites, protocols, tasks and the leaderboard."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from bench.goals import GOALS, TASKS, WANTS, Goal, default_goals, get_goal, goal_order, goals_of, register_goal
from bench.errors import UnknownNameError
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore
from bench.tasks import IdentificationTask, SpoofTask, VerificationTask


def test_every_goal_has_one_record_that_everything_reads():
    assert list(GOALS) == ["dodging", "impersonation", "misidentify", "target-identity", "spoof-to-live", "live-to-spoof"]
    assert default_goals("fr") == ("dodging", "impersonation") and default_goals("fas") == ("spoof-to-live",)
    assert goals_of("fr", "identification") == ("misidentify", "target-identity")
    for name, goal in GOALS.items():
        assert goal.task in TASKS and goal.wants in WANTS[goal.items]
        judges = [t for t in (VerificationTask, IdentificationTask, SpoofTask) if t.serves(name)]
        assert len(judges) == 1  # exactly one task class judges each goal, by its item kind
    assert goal_order("spoof-to-live") < goal_order("not-a-goal")
    with pytest.raises(UnknownNameError, match="unknown goal 'dodge'"):
        get_goal("dodge")
    with pytest.raises(ValueError, match="registered twice"):
        register_goal(GOALS["dodging"])
    with pytest.raises(ValueError, match="wants one of"):
        register_goal(Goal("bad", "fr", "pairs", "genuine", "target-identity", "fr-verification"))


def test_a_new_goal_is_one_record(monkeypatch, tmp_path):
    """A goal registered at run time (a copy of dodging under another name) goes through the suite, the protocol's
    items, the task's decisions, the store: its per-sample results equal dodging's for a deterministic attack."""
    monkeypatch.setitem(GOALS, "genuine-rejected", Goal("genuine-rejected", "fr", "pairs", "genuine", "reject",
                                                         "fr-verification", False, "dodging under another name"))
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent("""
        goals: [dodging, genuine-rejected]
        attacks:
          - {attack: fgsm, norm: linf, eps: [2/255]}
    """))
    store = tmp_path / "r.h5"
    out = run_benchmark(RunConfig(model="facenet-baseline", suite=str(suite), samples=12, store=str(store), device="cpu"),
                        progress=False)
    cells = {c.config["goal"]: c for c in ResultsStore(store).read_cells([s["cell_id"] for s in out.summaries])}
    assert set(cells) == {"dodging", "genuine-rejected"}
    a, b = cells["dodging"].arrays, cells["genuine-rejected"].arrays
    for key in ("sample_id", "clean_correct", "success"):
        assert np.array_equal(a[key], b[key]), key
    assert 0 < int(a["success"].sum()) < len(a["success"])  # both outcomes occur: the comparison can fail
