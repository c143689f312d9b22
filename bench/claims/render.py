"""Claims as markdown: per claim its statement, grid, notes, verdict rule, the figures (mean [95 % interval] over
seeds, n shown), the facts read from the code and the verdict; and the docs block between the claims markers."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from bench.claims.figures import Cell as FigureCell
from bench.claims.figures import Figures
from bench.claims.grid import points
from bench.claims.records import MIN_SEEDS, Arm, Claim, Measure
from bench.claims.rules import Verdict, shown_interval
from bench.errors import BadInputError
from bench.config import write_atomic
from bench.report import BulletList, Cell, Paragraph, Table, table_markdown

BEGIN = "<!-- claims:begin -->"
END = "<!-- claims:end -->"
POOLED = "mean over protocols"


def _cell_text(cell: FigureCell, measure: Measure, row_n: int) -> str:
    text = shown_interval(cell.estimate, measure, cell.censored)
    return text + (f" (n={cell.n})" if cell.n != row_n and cell.n else "")


def _header(measure: Measure, group: str) -> str:
    label = measure.label[len(group) + 1:] if group and measure.label.startswith(group + " ") else measure.label
    return f"{label} ({measure.unit})" if measure.unit else label


def _groups(claim: Claim) -> list[tuple[str, list[Measure]]]:
    """Measures per table: those whose key starts with a goal word (`dodging ...`) grouped by it; the rest (e.g. the
    dev TAR) shown in every group."""
    shared = [m for m in claim.measures if " " not in m.key or m.key.split(" ")[0] not in _goal_words(claim)]
    groups: dict[str, list[Measure]] = {}
    for m in claim.measures:
        if m not in shared:
            groups.setdefault(m.key.split(" ")[0], []).append(m)
    return [(g, shared + ms) for g, ms in groups.items()] or [("", shared)]


def _goal_words(claim: Claim) -> set[str]:
    from bench.goals import GOALS

    return {g for g in GOALS if GOALS[g].task == claim.kind}


def axis_tables(claim: Claim, figures: Figures) -> list[Table]:
    """One protocol, many measures: per group of measures, a row per (arm, axis value), a column per measure."""
    tables = []
    axis = claim.axis.name if claim.axis else None
    for protocol in claim.protocols:
        for group, measures in _groups(claim):
            rows = []
            for arm in claim.arms:
                for x in claim.axis_values():
                    cells = [figures.cell(arm.label, protocol, x, m.key) for m in measures]
                    n = max((c.n for c in cells), default=0)
                    rows.append([Cell(arm.label, code=True)] + ([Cell(str(x))] if axis else []) + [Cell(str(n))]
                                + [Cell(_cell_text(c, m, n)) for c, m in zip(cells, measures)])
            headers = ["arm"] + ([axis] if axis else []) + ["n"] + [_header(m, group) for m in measures]
            caption = f"{group or 'figures'} on `{protocol}`".strip()
            tables.append(Table(f"{claim.name}-{group}-{protocol}", caption + ": mean [95 % interval] over seeds",
                                headers, rows, align=["l"] + (["r"] if axis else []) + ["r"] * (1 + len(measures))))
    return tables


def protocol_tables(claim: Claim, figures: Figures) -> list[Table]:
    """Several protocols: per measure (and axis value), a row per arm, a column per protocol and the per-seed mean
    over the protocols."""
    tables = []
    for measure in claim.measures:
        for x in claim.axis_values():
            rows = []
            for arm in claim.arms:
                cells = [figures.cell(arm.label, p, x, measure.key) for p in claim.protocols]
                pooled = figures.pooled(arm.label, x, measure.key)
                n = max((c.n for c in cells), default=0)
                rows.append([Cell(arm.label, code=True), Cell(str(n))]
                            + [Cell(_cell_text(c, measure, n)) for c in cells + [pooled]])
            at = f" at {claim.axis.name} {x}" if x is not None and claim.axis else ""
            tables.append(Table(f"{claim.name}-{measure.key}-{x}", f"{measure.label} ({measure.unit}){at}: mean [95 % "
                                "interval] over seeds", ["arm", "n"] + list(claim.protocols) + [POOLED], rows,
                                align=["l", "r"] + ["r"] * (len(claim.protocols) + 1)))
    return tables


def arm_line(arm: Arm, claim: Claim) -> str:
    """How an arm trains, as `facebench train` options."""
    flags = [f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
             for k, v in arm.options]
    if claim.axis is not None and arm.axis_option is not None:
        flag = f"--{arm.axis_option.replace('_', '-')}"
        flags.append(f"{flag} E")
        epochs = "--epochs = the sum of the stages"
        if arm.shared_stages:
            epochs += (f"; the stages before it trained once per seed ({flag} 0) and continued at each E with "
                       "`--init` that start")
    elif claim.axis is not None:
        epochs = "--epochs E"
    else:
        epochs = f"--epochs {arm.epochs}" if arm.epochs is not None else "--epochs: the zoo schedule"
    return f"`{arm.label}`: `{' '.join(['facebench train --model', arm.variant] + flags)}` ({epochs})"


def claim_blocks(claim: Claim, figures: Figures, verdict: Verdict, unreliable: list[str]) -> list:
    grid_points = points(claim)
    starts = sum(p.is_start for p in grid_points)
    distinct = len({p.name for p in grid_points})
    once = "evaluated once each" if distinct == len(grid_points) else "evaluated on each protocol"  # synth-fr-dev
    trainings = (f"{distinct} trainings, {once}" if not starts else
                 f"{distinct} trainings: {distinct - starts} {once} and {starts} shared starts")
    axis = (f"{claim.axis.name} E in {', '.join(map(str, claim.axis.values))}; " if claim.axis else "")
    grid = (f"**Grid.** {axis}protocols {', '.join(f'`{p}`' for p in claim.protocols)}; training seeds "
            f"{', '.join(map(str, range(claim.seeds)))}; the {claim.profile} profile; {trainings}. Arms:")
    blocks: list = [Paragraph(f"> {claim.statement}"), Paragraph(f"*Source: {claim.source}.*"), Paragraph(grid),
                    BulletList([arm_line(a, claim) for a in claim.arms])]
    if claim.notes:
        blocks += [Paragraph("**Notes.**"), BulletList(list(claim.notes))]
    blocks.append(Paragraph(f"**Verdict rule, declared before anything was measured.** {claim.rule.describe(claim)} "
                            f"Intervals: Student t over seeds (Welch for differences); a cell with fewer than "
                            f"{MIN_SEEDS} seeds is shown, and the verdict then says so."))
    blocks += protocol_tables(claim, figures) if len(claim.protocols) > 1 else axis_tables(claim, figures)
    for fact in claim.facts:
        blocks += fact.blocks(claim)
    if unreliable:
        blocks.append(Paragraph(f"**Integrity.** {len(unreliable)} attack cells were flagged unreliable by the "
                                "integrity checks (their figures are in the tables all the same):"))
        blocks.append(BulletList(unreliable[:20] + ([f"... and {len(unreliable) - 20} more"] if len(unreliable) > 20 else [])))
    blocks.append(Paragraph(f"**Verdict: {verdict.status}** ({verdict.reason})."))
    if verdict.lines:
        blocks.append(BulletList(list(verdict.lines)))
    blocks += list(verdict.tables)
    return blocks


def blocks_markdown(blocks: list) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, BulletList):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            out += [f"*{b.caption}*", "", table_markdown(b), ""]
    return "\n".join(out)


def claims_markdown(results: list[tuple[Claim, Figures, Verdict, list[str]]], level: int = 3,
                    provenance: str = "") -> str:
    """Every claim's section, headed at `level`."""
    out = [provenance, ""] if provenance else []
    for claim, figures, verdict, unreliable in results:
        out += [f"{'#' * level} `{claim.name}`: {claim.title}", "",
                blocks_markdown(claim_blocks(claim, figures, verdict, unreliable))]
    return "\n".join(out).rstrip() + "\n"


def document(results: list[tuple[Claim, Figures, Verdict, list[str]]], provenance: str = "") -> str:
    """The stand-alone results file (results/claims.md)."""
    return "# The seeds' claims on the embedded world\n\n" + claims_markdown(results, level=2, provenance=provenance)


# --------------------------------------------------------------------------- the docs block

def _span(text: str, path: Optional[Path] = None) -> tuple[int, int]:
    """The offsets of the text between the markers (after BEGIN's line, up to END); refuses anything but exactly
    one BEGIN followed by one END."""
    where = f"{path}: " if path else ""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise BadInputError(f"{where}needs exactly one {BEGIN} and one {END} marker line (found {text.count(BEGIN)} "
                            f"and {text.count(END)})")
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    if stop < start:
        raise BadInputError(f"{where}the {END} marker comes before {BEGIN}")
    return start, stop


def check_docs(path: Path) -> None:
    """Refuse (one line) a docs file that is missing or lacks the markers, before any work."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"--docs {path}: no such file")
    _span(path.read_bytes().decode("utf-8"), path)


def replace_block(text: str, block: str, path: Optional[Path] = None) -> str:
    """`text` with what lies between the markers replaced by `block` (on lines of its own); the markers and
    everything outside them are kept byte for byte."""
    start, stop = _span(text, path)
    return text[:start] + "\n" + block.strip("\n") + "\n" + text[stop:]


def write_docs(path: Path, block: str) -> None:
    """Replace the block between the markers of `path`, atomically (a temporary file renamed into place)."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8")
    write_atomic(path, replace_block(text, block, path).encode("utf-8"))
