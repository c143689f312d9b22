"""Progress: long attacks report their steps inside a cell, the cell's bar shows them with the time left, and a log
that is not a terminal gets plain lines (no escape codes), with every notice on a line of its own."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from attacks import make_attack
from bench import progress
from tests.helpers import linear_spoof

ROOT = Path(__file__).resolve().parent.parent


def _reports(attack: str, params: dict, eps: float, norm: str = "linf") -> list[tuple[int, int, str]]:
    """What `attack` reports while it attacks a batch of which it cannot break every sample."""
    model, x, task = linear_spoof(16)
    seen = []
    with progress.steps_to(lambda done, total, unit: seen.append((done, total, unit))):
        out = make_attack(attack, params).run(task, x, norm, eps, torch.Generator().manual_seed(0))
    assert not out.success.all()  # someone stays unbroken until the end of the budget
    return seen


@pytest.mark.parametrize("attack, params, eps, norm, total, unit", [
    ("square", {"max_queries": 60, "restarts": 2}, 1 / 255, "linf", 60, "queries"),
    ("pgd", {"steps": 12, "restarts": 2}, 1 / 255, "linf", 24, "steps"),
    ("apgd", {"steps": 12, "restarts": 2}, 1 / 255, "linf", 24, "steps"),
    ("apgd-t", {"steps": 12}, 1 / 255, "linf", 12, "steps"),
    ("cw-l2", {"steps": 10, "search_steps": 2, "abort_early": False}, 0.01, "l2", 20, "steps"),
    ("fmn", {"steps": 12}, 1 / 255, "linf", 12, "steps"),
    ("min-eps", {"attack": "pgd", "attack_steps": 5, "search_steps": 3}, 8 / 255, "linf", 20, "steps"),
])
def test_long_attacks_report_intermediate_progress(attack, params, eps, norm, total, unit):
    seen = _reports(attack, params, eps, norm)
    assert seen, f"{attack} reported no progress"
    assert {t for _, t, _ in seen} == {total} and {u for _, _, u in seen} == {unit}
    done = [d for d, _, _ in seen]
    assert done == sorted(done)  # never goes back
    assert any(0 < d < total for d in done)  # reported while it runs, not only at the end
    assert done[-1] >= total - 2  # and up to (about) the end of its budget


def test_single_step_and_silent_when_nobody_listens():
    seen = []
    with progress.steps_to(lambda *a: seen.append(a)):
        model, x, task = linear_spoof(4)
        make_attack("fgsm", {}).run(task, x, "linf", 1 / 255)
    assert seen == []  # FGSM is no long attack
    progress.report_steps(1, 2)  # nobody listens: nothing happens


def test_sample_meter_shows_attack_steps_with_time_left(monkeypatch, capsys):
    """Off a terminal (pytest captures stderr) the meter prints plain lines; the attack's steps and the cell's time
    left appear while a batch is attacked, before any sample of it is done."""
    monkeypatch.setattr(progress, "_enabled", True)
    monkeypatch.setattr(progress, "STEPS_REFRESH", 0.0)
    monkeypatch.setenv("FACEBENCH_PROGRESS_INTERVAL", "0")
    meter = progress.SampleMeter(show=True)
    meter.start("dodging square linf 0.03", 8)
    with progress.chunk(meter, 4):
        progress.report_steps(50, 100, "queries")
    meter.update(4)
    meter.close()
    err = capsys.readouterr().err
    assert "dodging square linf 0.03: 0/8 samples [" in err and "queries 50/100, ETA ~" in err
    assert "4/8 samples" in err
    assert "\r" not in err and "\x1b[" not in err
    with progress.chunk(None, 4):  # no meter (cells computed elsewhere): nothing to show
        progress.report_steps(1, 2)


MODEL = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Noisy(nn.Module):
        """Random in every forward pass: the integrity check engages EOT and says so, mid-run."""

        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.proj = nn.Linear(3 * 8 * 8, 16)
            self.proj.weight.data = torch.randn(16, 3 * 8 * 8, generator=g) / 14
            self.proj.bias.data.zero_()

        def forward(self, x):
            e = self.proj(F.adaptive_avg_pool2d(x, 8).flatten(1) - 0.5)
            return F.normalize(e + 0.3 * torch.randn_like(e), dim=1)


    def noisy():
        return Noisy()
''')


def test_run_logged_to_a_pipe_has_plain_lines_and_notices_on_their_own_line(tmp_path):
    (tmp_path / "models.py").write_text(MODEL)
    (tmp_path / "suite.yaml").write_text("goals: [dodging, impersonation]\nattacks:\n  - attack: square\n    eps: [1/255]\n"
                                         "    params: {max_queries: 10}\n  - attack: pgd\n    eps: [1/255]\n"
                                         "    params: {steps: 5}\n")
    env = {**os.environ, "TQDM_DISABLE": "0", "FACEBENCH_PROGRESS_INTERVAL": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--model", f"{tmp_path / 'models.py'}:noisy",
                           "--task", "fr", "--attack-suite", str(tmp_path / "suite.yaml"), "--samples", "4",
                           "--store", str(tmp_path / "r.h5"), "--device", "cpu"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "\x1b[" not in err and "\r" not in err, err
    lines = err.splitlines()
    notices = [line for line in lines if "integrity (" in line]
    # the EOT notice of each goal stands alone; the second comes after the first goal's cells were shown
    assert [line.split(":")[0] for line in notices] == ["integrity (dodging)", "integrity (impersonation)"], err
    assert all("EOT over" in line for line in notices)
    assert lines.index(notices[1]) > lines.index(next(line for line in lines if line.startswith("cells: 2/4 cells [")))
    assert any(line.startswith("cells: 4/4 cells [") for line in lines), err
    # inside the cell, before its samples are done: the attack's queries and the cell's time left
    assert any(line.startswith("impersonation square linf 1/255: 0/") and "queries " in line and "ETA ~" in line
               for line in lines), err
    for line in lines:  # every line is one thing: a bar's line or a log line, never both glued
        assert line.count("cells: ") <= 1 and not ("samples [" in line and "integrity" in line), line
