"""What several pages share: slugs, which goal page shows a row, the protocol line, the models and reproduce
sections."""
from __future__ import annotations

import re

from bench.goals import GOALS
from bench.leaderboard.catalogue import fmt_params
from bench.leaderboard.results import Row, command_of
from bench.report import BulletList, Heading, Paragraph


def page_slug(kind: str, protocol: str) -> str:
    """The slug (file stem) of the page of `kind` for `protocol`."""
    return f"{kind}-{protocol_slug(protocol)}"


def protocol_slug(protocol: str) -> str:
    """A protocol's name as a slug: `synth-ocim->o` -> `synth-ocim-to-o`."""
    return re.sub(r"[^a-z0-9]+", "-", protocol.lower().replace("->", "-to-")).strip("-")


def is_cross_domain(protocol: str) -> bool:
    """Whether a protocol is a cross-domain one (`A->B`)."""
    return "->" in protocol


def goal_page_kind(goal: str, task: str) -> str:
    """The page kind that shows a goal (its record says; an unknown goal goes by the task)."""
    if goal in GOALS:
        return GOALS[goal].page
    return "fas-robustness" if task == "fas" else "fr-verification"


def row_page(row: Row) -> str:
    """The slug of the goal page that shows a row."""
    return page_slug(goal_page_kind(row.goal, str(row.run.get("task", ""))), str(row.run["protocol"]))


def protocol_text(protocol: str) -> str:
    """The paragraph that says what a protocol is and how its threshold is set."""
    from bench.errors import FacebenchError
    from bench.protocols import get_protocol

    try:
        p = get_protocol(protocol)  # a registered name, or a family's (bin:PATH)
    except FacebenchError:
        return f"Protocol `{protocol}` (not registered in this facebench)."
    return f"Protocol `{protocol}`: {p.description}. Threshold: {p.threshold_rule}."


def models_section(rows: list[Row]) -> list:
    """The models of a page's rows, once each: parameters, weights, description, training, citation."""
    seen, items = set(), []
    for r in sorted(rows, key=lambda r: r.model):
        key = (r.model, r.run.get("profile"), r.run.get("checkpoint_sha256"))
        if key in seen:
            continue
        seen.add(key)
        i = r.info
        extra = []
        if i.external:
            extra.append("external model: not trained by facebench")
        if i.trained_on:
            extra.append(f"trained on `{i.trained_on}`")
        if i.training_command:
            extra.append(f"training: `{i.training_command}`")
        if i.citation:
            extra.append(f"cite: {i.citation}")
        items.append(f"`{r.model}` ({r.run.get('profile', '')}, {fmt_params(i.params)} parameters, weights sha256 "
                     f"`{str(r.run.get('checkpoint_sha256', ''))[:12]}`): {i.description}"
                     + (". " + "; ".join(extra) if extra else ""))
    return [Heading("Models", 2), BulletList(items)]


def reproduce_section(rows: list[Row]) -> list:
    """The command that reproduces each run of a page's rows, anchored for the tables' run links."""
    seen, items, anchors = set(), [], []
    for r in sorted(rows, key=lambda r: r.run["run_id"]):
        rid = r.run["run_id"]
        if rid in seen:
            continue
        seen.add(rid)
        cmd, rebuilt = command_of(r.rec)
        items.append(f"`{rid}`: `{r.model}` ({r.variant}), protocol `{r.run['protocol']}`, suite "
                     f"`{r.run['suite']}`, device {r.run.get('device', '?')}, store `{r.rec.store}`: `{cmd}`"
                     + (" (rebuilt from the run's stored configuration: the run stored no command line)" if rebuilt else ""))
        anchors.append(f"run-{rid}")
    return [Heading("Reproduce", 2), Paragraph("Each run id in the tables links here: the command that reproduces it."),
            BulletList(items, anchors)]
