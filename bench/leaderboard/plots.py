"""Leaderboard figures drawn with matplotlib's Agg backend, returned as PNG bytes.

Figures are built with the object-oriented API (`matplotlib.figure.Figure`), never pyplot, so rendering
holds no global state and works without a display.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

if TYPE_CHECKING:
    from bench.leaderboard.results import Budget, Row

DPI = 100


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _labels(rows: list["Row"]) -> list[str]:
    """Model names, with profile and suite added only where they are needed to tell rows apart."""
    names = [r.model for r in rows]
    out = []
    for r in rows:
        if names.count(r.model) == 1:
            out.append(r.model)
        else:
            out.append(f"{r.model} ({r.run.get('profile', '')}, {r.run['suite']})")
    return out


def _eps_axis(norm: str, values: np.ndarray) -> np.ndarray:
    return values * 255 if norm == "linf" else values


def _eps_name(norm: str) -> str:
    return "Linf eps (x 1/255)" if norm == "linf" else "L2 eps"


def success_vs_eps(rows: list["Row"], title: str) -> bytes:
    """Per norm, one panel: success rate (broken / n) vs eps per model, step line and per-budget markers."""
    norms = sorted({n for r in rows for n in r.breaking})
    fig = Figure(figsize=(5.2 * len(norms), 3.8))
    colours = matplotlib.colormaps["tab10"]
    labels = _labels(rows)
    for k, norm in enumerate(norms):
        ax = fig.add_subplot(1, len(norms), k + 1)
        top = max(r.curve_max.get(norm, 0.0) for r in rows)
        for i, r in enumerate(rows):
            if norm not in r.breaking:
                continue
            colour = colours(i % 10)
            grid = np.linspace(0.0, r.curve_max[norm], 400)
            ax.step(_eps_axis(norm, grid), r.curve(norm, grid), where="post", color=colour, label=labels[i], lw=1.6)
            pts = sorted(b for b in r.robust if b.norm == norm and not b.masked)
            if pts:
                xs = _eps_axis(norm, np.array([b.eps for b in pts]))
                ys = np.array([1 - r.robust[b].value for b in pts])
                iv = np.array([r.robust[b].interval for b in pts])  # robust interval -> success interval
                yerr = np.vstack([ys - (1 - iv[:, 1]), (1 - iv[:, 0]) - ys]).clip(min=0)
                ax.errorbar(xs, ys, yerr=yerr, fmt="o", color=colour, ms=4, capsize=3, lw=1)
        ax.set_xlim(0, _eps_axis(norm, np.array([top]))[0] * 1.02 or 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(_eps_name(norm))
        ax.set_ylabel("success rate (broken / n)")
        ax.grid(alpha=0.3)
        ax.set_title(f"{title} ({norm})", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def robust_vs_clean(rows: list["Row"], budget: "Budget", title: str) -> bytes:
    """Robust accuracy at `budget` against clean accuracy, one point per model, with 95 % Wilson intervals."""
    fig = Figure(figsize=(5.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    colours = matplotlib.colormaps["tab10"]
    labels = _labels(rows)
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--", label="robust = clean")
    for i, r in enumerate(rows):
        if budget not in r.robust:
            continue
        x, y = r.clean.value, r.robust[budget].value
        xlo, xhi = r.clean.interval
        ylo, yhi = r.robust[budget].interval
        xerr = np.clip([[x - xlo], [xhi - x]], 0, None)  # clip: a Wilson bound can sit a rounding error inside p
        yerr = np.clip([[y - ylo], [yhi - y]], 0, None)
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", color=colours(i % 10), capsize=3, label=labels[i])
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("clean accuracy")
    ax.set_ylabel(f"robust accuracy @ {budget.label}")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def transfer_heatmap(sources: list[str], targets: list[str], values: np.ndarray, title: str) -> bytes:
    """Rows source model, columns target model, cell = success rate (%); missing cells grey."""
    fig = Figure(figsize=(1.2 + 1.3 * len(targets), 1.0 + 0.6 * len(sources)))
    ax = fig.add_subplot(1, 1, 1)
    masked = np.ma.masked_invalid(values)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    im = ax.imshow(masked, cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i in range(len(sources)):
        for j in range(len(targets)):
            v = values[i, j]
            ax.text(j, i, "-" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if not np.isnan(v) and v < 60 else "black",
                    fontweight="bold" if sources[i] == targets[j] else "normal")
    ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(sources)), sources, fontsize=8)
    ax.set_xlabel("target (scored on)")
    ax.set_ylabel("source (crafted on)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="success rate (%)")
    return _png(fig)


@dataclass
class ScoreSet:
    """Liveness scores of one model's evaluated test frames: spoof and live, clean and attacked."""

    label: str
    threshold: float
    spoof_clean: np.ndarray
    spoof_adv: Optional[np.ndarray]
    live_clean: Optional[np.ndarray]
    live_adv: Optional[np.ndarray]


def roc_points(live: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(APCER, 1 - BPCER) over every threshold (accepted as live: score >= threshold)."""
    thr = np.unique(np.concatenate([live, spoof, [np.inf, -np.inf]]))[::-1]
    apcer = np.array([(spoof >= t).mean() for t in thr])
    tpr = np.array([(live >= t).mean() for t in thr])
    return apcer, tpr


def fas_roc(data: list[ScoreSet], budget_label: str, title: str) -> tuple[bytes, list[str]]:
    """One panel per model: ROC clean vs attacked where live scores exist, else the spoof-score histogram."""
    cols = min(3, len(data))
    rows = (len(data) + cols - 1) // cols
    fig = Figure(figsize=(4.4 * cols, 3.8 * rows))
    kinds = []
    for k, d in enumerate(data):
        ax = fig.add_subplot(rows, cols, k + 1)
        if d.live_clean is not None and len(d.live_clean):
            kinds.append("roc")
            curves = [("clean", d.spoof_clean, d.live_clean, "C0")]
            if d.spoof_adv is not None:
                curves.append((f"spoofs attacked ({budget_label})", d.spoof_adv, d.live_clean, "C3"))
                if d.live_adv is not None:
                    curves.append(("spoofs and live attacked", d.spoof_adv, d.live_adv, "C1"))
            for name, spoof, live, colour in curves:
                x, y = roc_points(live, spoof)
                ax.plot(x, y, color=colour, lw=1.5, label=name)
                ax.plot([(spoof >= d.threshold).mean()], [(live >= d.threshold).mean()], "o", color=colour, ms=5)
            ax.plot([0, 1], [0, 1], color="#bbb", lw=0.8, ls="--")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("APCER (spoofs accepted)")
            ax.set_ylabel("1 - BPCER (live accepted)")
            ax.legend(fontsize=7, loc="lower right")
        else:
            kinds.append("hist")
            vals = [d.spoof_clean] + ([d.spoof_adv] if d.spoof_adv is not None else [])
            lo = min(float(np.min(v)) for v in vals)
            hi = max(float(np.max(v)) for v in vals + [np.array([d.threshold])])
            bins = np.linspace(lo - 1e-6, hi + 1e-6, 25)
            ax.hist(d.spoof_clean, bins=bins, alpha=0.6, color="C0", label="spoof frames, clean")
            if d.spoof_adv is not None:
                ax.hist(d.spoof_adv, bins=bins, alpha=0.6, color="C3", label=f"spoof frames, attacked ({budget_label})")
            ax.axvline(d.threshold, color="k", ls="--", lw=1, label="dev threshold")
            ax.set_xlabel("liveness score (higher = live)")
            ax.set_ylabel("frames")
            ax.legend(fontsize=7)
            ax.text(0.02, 0.98, "no live scores stored:\nscore shift, not a ROC", transform=ax.transAxes, va="top",
                    fontsize=7, color="#555")
        ax.grid(alpha=0.3)
        ax.set_title(d.label, fontsize=10)
    fig.suptitle(title, fontsize=11)
    return _png(fig), kinds


EXAMPLE_PANEL = 1.7  # inches per image panel of the examples grid (170 px at DPI)
EXAMPLES_PER_LINE = 2  # samples per line of a model's block: 6 panels, about 1000 px wide
EXAMPLE_FONT = 9  # points, panel titles and a model's heading


def examples_figure(sets: list, title: str) -> Figure:
    """The examples grid as a figure: per model a block headed by the model and its attack, then per sample
    three panels (clean, adversarial, the magnified perturbation), `EXAMPLES_PER_LINE` samples per line."""
    k = max(len(s.clean) for s in sets)
    per_line = min(k, EXAMPLES_PER_LINE)
    lines = -(-k // per_line)
    cols = 3 * per_line
    block = lines * (EXAMPLE_PANEL + 0.35) + 0.45  # inches: the panels with their titles, and the heading
    fig = Figure(figsize=(cols * EXAMPLE_PANEL, block * len(sets) + 0.5), layout="constrained")
    blocks = fig.subfigures(len(sets), 1, squeeze=False)[:, 0]
    for sub, s in zip(blocks, sets):
        sub.suptitle(f"{s.label}: {s.attack}", fontsize=EXAMPLE_FONT + 1, fontweight="bold")
        delta = s.adv.astype(np.float64) - s.clean.astype(np.float64)
        peak = float(np.abs(delta).max()) or 1.0
        gain = 0.5 / peak
        axes = sub.subplots(lines, cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for j in range(len(s.clean)):
            panels = [(s.clean[j], f"clean {s.clean_scores[j]:.2f}"),
                      (s.adv[j], f"adv {s.adv_scores[j]:.2f} {'broken' if s.success[j] else 'held'}"),
                      (np.clip(0.5 + gain * delta[j], 0, 1), f"delta x{gain:.0f}")]
            for p, (img, name) in enumerate(panels):
                ax = axes[j // per_line, 3 * (j % per_line) + p]
                ax.set_axis_on()
                ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(name, fontsize=EXAMPLE_FONT)
    fig.suptitle(title, fontsize=EXAMPLE_FONT + 3)
    return fig


def examples_grid(sets: list, title: str) -> bytes:
    """The examples grid (`examples_figure`) as PNG bytes."""
    return _png(examples_figure(sets, title))
