"""The leaderboard's example grid: which attack it shows, and a figure whose titles can be read."""
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from bench.leaderboard import plots
from bench.leaderboard.examples import ExampleSet, strongest_cell
from bench.store import CellResult


def _cell(attack: str, robust: float, asr: float, params: dict = None, **config) -> CellResult:
    config = {"goal": "dodging", "attack": attack, "params": params or {}, "norm": "linf", "eps": 8 / 255, **config}
    return CellResult(attack, config, {}, {"robust_accuracy": robust, "asr": asr})


def test_examples_show_the_strongest_attack_of_the_run_at_the_budget():
    fgsm = _cell("fgsm", robust=1.0, asr=0.0)  # the quick suite's first cell: every sample held
    pgd = _cell("pgd", robust=0.25, asr=0.75, params={"steps": 10})
    assert strongest_cell([fgsm, pgd]).config["attack"] == "pgd"
    # a minimal-eps search is no fixed-budget attack (its eps is a ceiling), even when it broke more
    search = _cell("min-eps", robust=0.0, asr=1.0, params={"attack": "pgd", "attack_steps": 20})
    assert strongest_cell([fgsm, search, pgd]).config["attack"] == "pgd"
    assert strongest_cell([search]).config["attack"] == "min-eps"  # but better than nothing
    # transfer cells are crafted on another model: never shown, whatever their numbers
    transfer = _cell("transfer", robust=0.0, asr=1.0, params={"source": "arcface-r18", "attack": "pgd", "params": {}})
    assert strongest_cell([fgsm, transfer]).config["attack"] == "fgsm"
    assert strongest_cell([transfer]) is None and strongest_cell([]) is None
    # equal numbers: the attack with more gradient steps, then run order
    pgd50 = _cell("pgd", robust=0.25, asr=0.75, params={"steps": 50})
    assert strongest_cell([pgd, pgd50]) is pgd50
    mim = _cell("mim", robust=0.25, asr=0.75, params={"steps": 10})
    assert strongest_cell([pgd, mim]) is pgd
    nan = _cell("pgd", robust=float("nan"), asr=float("nan"))  # nothing attacked: ranks last
    assert strongest_cell([nan, fgsm]) is fgsm


def _set(name: str, k: int = 4, size: int = 64) -> ExampleSet:
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(k, size, size, 3))
    adv = np.clip(clean + rng.uniform(-8 / 255, 8 / 255, size=clean.shape), 0, 1)
    return ExampleSet(name, "pgd linf 8/255", clean, adv, rng.normal(size=k), rng.normal(size=k), rng.uniform(size=k) > 0.5)


def test_examples_grid_is_readable():
    """Not a 1209x155 strip with 6-point titles: panels of a readable size, titles of 9 points or more, and the
    model and attack of each block written above it."""
    png = plots.examples_grid([_set("facenet-baseline")], "dodging on synth-fr")
    width, height = Image.open(io.BytesIO(png)).size
    assert width <= 1200 and height >= 0.4 * width, (width, height)
    fig = plots.examples_figure([_set("facenet-baseline"), _set("arcface-r18")], "dodging on synth-fr")
    axes = [ax for sub in fig.subfigs for ax in sub.axes if ax.axison]
    assert len(axes) == 2 * 4 * 3
    assert all(ax.title.get_fontsize() >= 9 for ax in axes)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # lays the figure out
    assert all(ax.get_window_extent(renderer).width >= 120 for ax in axes)  # pixels per image panel, at plots.DPI
    headings = [sub._suptitle.get_text() for sub in fig.subfigs]
    assert headings == ["facenet-baseline: pgd linf 8/255", "arcface-r18: pgd linf 8/255"]
