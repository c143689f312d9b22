"""`facebench claims` without the command line: check everything, then list (dry run) or run, decide and write."""
from __future__ import annotations

import datetime
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from bench.claims.evaluations import Context
from bench.claims.grid import select_claims
from bench.claims.render import check_docs, claims_markdown, document, write_docs
from bench.claims.running import Outcome, make_plan, run_claims, tabulate_only
from bench.errors import BadInputError
from bench.config import check_writable, write_atomic

DEFAULT_WORK = Path("results") / "claims"
DEFAULT_OUT = Path("results") / "claims.md"


@dataclass
class Request:
    """What `facebench claims` was asked (the CLI's options, unchecked)."""

    only: Sequence[str] = ()
    seeds: Optional[int] = None
    axis: dict = field(default_factory=dict)  # the flag of a claim's axis -> its comma-separated values
    protocols: Sequence[str] = ()
    samples: int = 200
    work: Path = DEFAULT_WORK
    out: Path = DEFAULT_OUT
    docs: Optional[Path] = None
    device: str = "cpu"
    command: str = "facebench claims"
    jobs: int = 1
    tabulate_only: bool = False  # the tables of what the work directory holds; nothing trained or evaluated


def checked(req: Request):
    """The selected claims and the evaluation context; every bad input is refused here, before any work."""
    from bench.config import resolve_device

    importlib.import_module("bench.claims.seeds")  # registers the seeds' claims

    if req.samples < 1:
        raise BadInputError(f"--samples must be at least 1, got {req.samples}")
    if req.jobs < 1:
        raise BadInputError(f"--jobs must be at least 1, got {req.jobs}")
    claims = select_claims(req.only, seeds=req.seeds, axis=req.axis, protocols=req.protocols)
    resolve_device(req.device)
    if req.docs is not None:
        check_docs(req.docs)
    check_writable(req.out, "--out")
    check_writable(req.work, "--work", folder=True)
    return claims, Context(Path(req.work), req.samples, req.device)


def dry_run(req: Request) -> list[str]:
    """Every training and evaluation the request would do, with the counts; nothing is written."""
    claims, ctx = checked(req)
    return make_plan(claims, ctx).lines(ctx.work)


def run(req: Request, log: Callable[[str], None] = lambda s: None) -> tuple[list[Outcome], list[Path]]:
    """Train and evaluate what is not done yet, decide every claim, write the markdown (and the docs block)."""
    claims, ctx = checked(req)
    outcomes = tabulate_only(claims, ctx, log) if req.tabulate_only else run_claims(claims, ctx, log, jobs=req.jobs)
    results = [(o.claim, o.figures, o.claim.rule.decide(o.claim, o.figures), o.unreliable) for o in outcomes]
    day = datetime.date.today().isoformat()
    provenance = (f"Written by `{req.command}` on {day} (work directory `{ctx.work}`, device {ctx.device}"
                  + (f", {ctx.samples} pairs per FR goal" if any(c.kind == "fr" for c in claims) else "") + ").")
    write_atomic(Path(req.out), document(results, provenance))
    written = [Path(req.out)]
    if req.docs is not None:
        write_docs(req.docs, claims_markdown(results, level=3, provenance=provenance))
        written.append(Path(req.docs))
    for claim, _, verdict, _ in results:
        log(f"claims: {claim.name}: {verdict.status} ({verdict.reason})")
    return outcomes, written
