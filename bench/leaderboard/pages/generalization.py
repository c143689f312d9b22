"""The FAS cross-domain generalization page: clean error rates of each FAS model on the `A->B` protocols.

An overview matrix (test HTER per model and protocol), then a table per protocol built from
`GENERALIZATION_COLUMNS`. Nothing here is fitted on test data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from bench.leaderboard.catalogue import ModelInfo, fmt_params, model_info
from bench.leaderboard.pages.columns import Column, ColumnSpec, build_table
from bench.leaderboard.pages.common import (is_cross_domain, models_section, protocol_slug, protocol_text,
                                            reproduce_section)
from bench.leaderboard.pages.kind import Board, IndexEntry, Options, PageKind
from bench.leaderboard.results import (FASClean, Rate, RunRecord, command_of, fas_clean, rows_of_run, run_label,
                                       started_key)
from bench.report import Cell, Heading, Page, Paragraph, Table

INTRO = [
    "Clean error rates of each FAS model on the cross-domain protocols (`A->B`: threshold at the EER of the "
    "source domains' dev split, test on the unseen target). **dev EER / ACER / HTER** come from the run's "
    "dev-split evaluation (stored with the run). **test** rates are the run's clean error rates on the "
    "target's whole test split at the stored dev threshold (`test_metrics`): HTER = (pooled APCER + BPCER) "
    "/ 2, ACER = (worst-species APCER + BPCER) / 2, with 95 % Wilson intervals on APCER and BPCER. Nothing "
    "is fitted on test. Runs stored before facebench measured them fall back to the evaluated frames' "
    "stored clean scores (APCER from spoof-to-live cells, BPCER from live-to-spoof cells; '-' where there "
    "are none). Rows are sorted by test HTER (lowest first), rows "
    "without it last.",
    "**trained on** is the protocol in the model card of the evaluated weights: a model evaluated on a "
    "protocol other than the one it was trained on may have seen the target domain in training, and its "
    "row is then not a cross-domain result (marked `seen?`).",
]


def cross_domain_runs(records: list[RunRecord]) -> list[RunRecord]:
    """The FAS runs on cross-domain protocols."""
    return [rec for rec in records if rec.run.get("task") == "fas" and is_cross_domain(str(rec.run["protocol"]))]


@dataclass(frozen=True)
class GeneralizationPage(PageKind):
    """One page (slug: the kind's name) when any FAS run is on a cross-domain protocol."""

    def build(self, board: Board, options: Options) -> list[Page]:
        cross = cross_domain_runs(board.records)
        return [self.page(cross)] if cross else []

    def index_entry(self, page: Page, board: Board) -> IndexEntry:
        n_models = len({(run_label(rec.run), rec.run.get("profile")) for rec in cross_domain_runs(board.records)})
        return IndexEntry("fas", "cross-domain protocols", str(n_models), "clean test HTER / ACER", "-",
                          {"models": n_models})

    def page(self, records: list[RunRecord]) -> Page:
        """The page of the cross-domain runs: read-me, overview, a table per protocol, models, reproduce."""
        page = Page(self.name, self.title)
        page.blocks += [Paragraph("[Back to the index](README.md)")] + [Paragraph(p) for p in INTRO]
        best = _best_runs(records)
        protocols = sorted({k[2] for k in best})
        page.blocks += [Heading("Overview", 2), _overview_table(best, protocols)]
        for p in protocols:
            recs = [best[k][0] for k in best if k[2] == p]
            page.blocks += [Heading(p, 2, anchor=f"gen-{protocol_slug(p)}"), Paragraph(protocol_text(p)),
                            _protocol_table(self.name, p, recs)]
        rows = [r for rec in records for r in rows_of_run(rec)]
        page.blocks += models_section(rows) + reproduce_section(rows)
        return page


def _best_runs(records: list[RunRecord]) -> dict[tuple, tuple[RunRecord, tuple]]:
    """Per (model, profile, protocol), the run with the most complete test rates (then the newest), and its score."""
    best: dict[tuple, tuple[RunRecord, tuple]] = {}
    for rec in records:
        key = (run_label(rec.run), rec.run.get("profile"), rec.run["protocol"])
        fc = fas_clean(rec.cells, rec.run)
        score = (fc is not None and fc.bpcer is not None, fc is not None and fc.apcer_pooled is not None,
                 started_key(rec.run))
        if key not in best or score > best[key][1]:
            best[key] = (rec, score)
    return best


def _overview_table(best: dict[tuple, tuple[RunRecord, tuple]], protocols: list[str]) -> Table:
    """Test HTER per model (lines) and cross-domain protocol (columns)."""
    models = sorted({(k[0], k[1]) for k in best})
    headers = ["model"] + [f"test HTER {p}" for p in protocols]
    mrows, mraw = [], []
    for m, prof in models:
        cells, raw = [Cell(m, code=True, suffix=f" ({prof})")], {"model": m, "profile": prof}
        for p in protocols:
            rec = best.get((m, prof, p), (None,))[0]
            fc = fas_clean(rec.cells, rec.run) if rec is not None else None
            h = fc.hter if fc is not None else None
            cells.append(Cell(f"{100 * h:.1f}" if h is not None else "-"))
            raw[p] = h
        mrows.append(cells)
        mraw.append(raw)
    return Table("fas-generalization-overview", "Test HTER (%) per model and cross-domain protocol", headers,
                 mrows, mraw, [], ["l"] + ["r"] * len(protocols))


# --------------------------------------------------------------------------- the table of one protocol

@dataclass
class ProtocolTable:
    """What the columns of one protocol's table read."""

    kind: str
    protocol: str


@dataclass
class Line:
    """One run on the protocol: its clean test rates (`fc`, None without any) and its model."""

    rec: RunRecord
    fc: Optional[FASClean]
    info: ModelInfo

    @property
    def ap(self) -> Optional[Rate]:
        """Pooled test APCER."""
        return self.fc.apcer_pooled if self.fc is not None else None

    @property
    def bp(self) -> Optional[Rate]:
        """Test BPCER."""
        return self.fc.bpcer if self.fc is not None else None

    @property
    def hter(self) -> Optional[float]:
        return self.fc.hter if self.fc is not None else None

    @property
    def acer(self) -> Optional[float]:
        return self.fc.acer if self.fc is not None else None


def _pct(v) -> str:
    return f"{100 * float(v):.1f}" if v is not None else "-"


def _trained_on(t: ProtocolTable, i: int, e: Line) -> Cell:
    trained = e.info.trained_on or "-"
    if e.info.trained_on and e.info.trained_on != t.protocol:
        trained += " (seen?)"
    return Cell(trained)


def _dev(header: str, key: str, raw_key: str) -> Column:
    """A dev-split figure stored with the run (`dev_metrics`), in %."""
    return Column(header, lambda t, i, e: Cell(_pct(e.rec.dev.get(key))), lambda t, i, e: {raw_key: e.rec.dev.get(key)})


GENERALIZATION_COLUMNS: list[ColumnSpec] = [
    Column("#", lambda t, i, e: Cell(str(i))),
    Column("model", lambda t, i, e: Cell(run_label(e.rec.run), code=True,
                                         suffix=f" ({e.rec.run.get('profile', '')})"), align="l"),
    Column("params", lambda t, i, e: Cell(fmt_params(e.info.params))),
    Column("recipe", lambda t, i, e: Cell(e.info.recipe), align="l", latex=False),
    Column("trained on", _trained_on, lambda t, i, e: {"trained on": e.info.trained_on}, align="l"),
    _dev("dev EER", "dev_eer", "dev eer"),
    _dev("dev ACER", "dev_acer", "dev acer"),
    _dev("dev HTER", "dev_hter", "dev hter"),
    Column("test APCER", lambda t, i, e: Cell(e.ap.pct() if e.ap else "-")),
    Column("test BPCER", lambda t, i, e: Cell(e.bp.pct() if e.bp else "-")),
    Column("test HTER", lambda t, i, e: Cell(_pct(e.hter)), lambda t, i, e: {"test hter": e.hter}),
    Column("test ACER", lambda t, i, e: Cell(_pct(e.acer)), lambda t, i, e: {"test acer": e.acer}),
    Column("spoof / live frames", lambda t, i, e: Cell(f"{e.ap.n if e.ap else 0} / {e.bp.n if e.bp else 0}")),
    Column("run", lambda t, i, e: Cell(str(e.rec.run["run_id"]), href=f"#run-{e.rec.run['run_id']}", code=True),
           align="l", latex=False),
]
"""The columns of a protocol's table, in display order."""


def _head(t: ProtocolTable, i: int, e: Line) -> dict:
    return {"rank": i, "model": run_label(e.rec.run), "profile": e.rec.run.get("profile", ""), "protocol": t.protocol,
            "params": e.info.params, "recipe": e.info.recipe}


def _tail(t: ProtocolTable, i: int, e: Line) -> dict:
    """Threshold and provenance, then the test rates' counts and intervals and APCER per species."""
    fc = e.fc
    out = {"threshold": fc.threshold if fc else None, "run id": e.rec.run["run_id"], "command": command_of(e.rec)[0],
           "store": str(e.rec.store)}
    if e.ap:
        out.update(e.ap.raw("test apcer"))
    if e.bp:
        out.update(e.bp.raw("test bpcer"))
    if fc is not None and fc.apcer_species:
        out.update({f"test apcer {sp}": v for sp, v in fc.apcer_species.items()})
    return out


def _protocol_table(kind: str, protocol: str, recs: list[RunRecord]) -> Table:
    """A line per run on `protocol`, sorted by test HTER (lowest first; runs without it last), then by model."""
    lines = [Line(rec, fas_clean(rec.cells, rec.run), model_info(rec.run)) for rec in recs]
    lines.sort(key=lambda e: (e.hter is None, e.hter if e.hter is not None else 0.0, run_label(e.rec.run)))
    return build_table(f"fas-generalization-{protocol_slug(protocol)}", f"{protocol}: clean error rates (%)",
                       GENERALIZATION_COLUMNS, ProtocolTable(kind, protocol), lines, head=_head, tail=_tail)
