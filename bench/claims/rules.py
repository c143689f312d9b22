"""Verdict rules: how a claim's figures become "reproduced", "not reproduced" or "not enough seeds".

A rule is part of the claim's record, declared before anything is measured; `describe` says it in words (the
text printed above the figures) and `decide` applies it. Two rules cover the seeds' claims:

- `CatchUp`: along an axis (fine-tuning epochs), how soon an arm's curve reaches the reference arm's robustness
  at the reference's largest axis value, compared with how soon the reference reaches it itself;
- `Differences`: pairwise comparisons of arms on a measure averaged over the claim's protocols per seed, with
  Welch intervals: better than (the interval above 0) or not worse by more than a declared margin.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from bench.claims.figures import Cell, Figures
from bench.claims.records import MIN_SEEDS, Claim, Measure, VerdictRule
from bench.claims.stats import Estimate, difference_interval
from bench.report import Cell as TableCell
from bench.report import Table

REPRODUCED = "reproduced on the embedded world"
NOT_REPRODUCED = "not reproduced on the embedded world"
NOT_ENOUGH_SEEDS = "not enough seeds"


@dataclass(frozen=True)
class Verdict:
    status: str  # REPRODUCED, NOT_REPRODUCED or NOT_ENOUGH_SEEDS
    reason: str  # one sentence
    lines: tuple[str, ...] = ()  # each decision the rule took (markdown)
    tables: tuple[Table, ...] = field(default=())


def shown_interval(e: Estimate, measure: Measure, censored: int = 0, signed: bool = False) -> str:
    """`mean [low, high]` in the measure's unit; no interval below two seeds; with `censored` values above the
    measure's ceiling, `>=` before the mean and how many were above after it."""
    def fmt(v: float) -> str:
        text = measure.shown(v)
        return ("+" + text) if signed and v > 0 else text

    if not e.defined:
        return "-"
    head = (">= " if censored else "") + fmt(e.mean)
    text = f"{head} [{fmt(e.low)}, {fmt(e.high)}]" if e.has_interval else head
    if censored and measure.ceiling is not None:
        text += f", {censored} of {e.n} above {measure.shown(measure.ceiling)}"
    return text


def _upper(e: Estimate) -> float:
    return e.high if e.has_interval else e.mean


def _lower(e: Estimate) -> float:
    return e.low if e.has_interval else e.mean


def reaches(cell: Cell, target: Cell, higher_is_better: bool) -> bool:
    """Whether `cell`'s 95 % interval overlaps or passes `target`'s on the good side (a mean stands in for an
    interval that is undefined below two seeds)."""
    if not cell.estimate.defined or not target.estimate.defined:
        return False
    if higher_is_better:
        return _upper(cell.estimate) >= _lower(target.estimate)
    return _lower(cell.estimate) <= _upper(target.estimate)


@dataclass(frozen=True)
class CatchUp:
    """`primary` reaches `reference`'s robustness at its largest axis value after far fewer axis steps than
    `reference` itself needs (see `describe`). `others` are judged by the same rule and reported, not counted."""

    reference: str
    primary: str
    decisive: tuple[str, ...]
    others: tuple[str, ...] = ()
    factor: float = 2.0

    def describe(self, claim: Claim) -> str:
        axis = claim.axis.name if claim.axis else "axis value"
        measures = "; ".join(claim.measure(k).label for k in self.decisive)
        others = f" The other arms ({', '.join(f'`{o}`' for o in self.others)}) are judged by the same rule and " \
                 "reported, not counted." if self.others else ""
        return (f"For each decisive measure ({measures}) and protocol, the target is `{self.reference}` at its largest "
                f"{axis}. An arm *reaches* the target at the smallest {axis} where its 95 % interval overlaps the "
                f"target's or lies beyond it on the better side. `{self.reference}` reaches its own target at some "
                f"{axis} E; an arm holds the claim when it reaches the target at no more than E / {self.factor:g} "
                f"(\"far fewer\": at least a factor {self.factor:g}). **Reproduced** when `{self.primary}` holds on "
                f"every decisive measure and protocol; **not enough seeds** when a cell of `{self.reference}` or "
                f"`{self.primary}` on a decisive measure has fewer than {MIN_SEEDS} seeds." + others)

    def reads(self) -> tuple[set[str], set[str]]:
        return {self.reference, self.primary, *self.others}, set(self.decisive)

    def _first_reach(self, figures: Figures, arm: str, protocol: str, key: str, target: Cell,
                     xs: list[float]) -> Optional[float]:
        higher = figures.claim.measure(key).higher_is_better
        return next((x for x in xs if reaches(figures.cell(arm, protocol, x, key), target, higher)), None)

    def decide(self, claim: Claim, figures: Figures) -> Verdict:
        xs = sorted(claim.axis_values())
        lines, holds, short = [], [], []
        for protocol in claim.protocols:
            for key in self.decisive:
                measure = claim.measure(key)
                for arm in (self.reference, self.primary):
                    short += [f"`{arm}` at {x}" for x in xs if figures.cell(arm, protocol, x, key).n < MIN_SEEDS]
                measured = [x for x in xs if figures.cell(self.reference, protocol, x, key).estimate.defined]
                if not measured:
                    holds.append(False)
                    lines.append(f"{measure.label}, `{protocol}`: `{self.reference}` was not measured")
                    continue
                target = figures.cell(self.reference, protocol, measured[-1], key)
                own = self._first_reach(figures, self.reference, protocol, key, target, xs)
                head = (f"{measure.label}, `{protocol}`: target `{self.reference}` at {measured[-1]} = "
                        f"{shown_interval(target.estimate, measure, target.censored)} {measure.unit}; "
                        f"`{self.reference}` reaches it at {own}")
                parts = []
                for arm in (self.primary,) + self.others:
                    at = self._first_reach(figures, arm, protocol, key, target, xs)
                    ok = at is not None and own is not None and at <= own / self.factor
                    if arm == self.primary:
                        holds.append(ok)
                    if not any(figures.cell(arm, protocol, x, key).n for x in xs):
                        parts.append(f"`{arm}` not measured")
                        continue
                    parts.append(f"`{arm}` at {at if at is not None else 'none of ' + ', '.join(map(str, xs))} "
                                 f"({'holds' if ok else 'does not hold'})")
                lines.append(head + "; " + "; ".join(parts))
        if short:
            shown = ", ".join(dict.fromkeys(short))
            return Verdict(NOT_ENOUGH_SEEDS, f"fewer than {MIN_SEEDS} seeds in {shown}", tuple(lines))
        if holds and all(holds):
            return Verdict(REPRODUCED, f"`{self.primary}` reaches the target at most 1/{self.factor:g} as many "
                           "steps as the reference on every decisive measure", tuple(lines))
        return Verdict(NOT_REPRODUCED, f"`{self.primary}` does not reach the target {self.factor:g}x sooner than "
                       f"`{self.reference}` on every decisive measure", tuple(lines))


@dataclass(frozen=True)
class Comparison:
    """`arm` is better than `other` on `measure` (margin 0), or not worse by more than `margin` (in the measure's
    own scale: 0.02 = 2 points of a rate). `says`: the words of the statement it tests."""

    arm: str
    other: str
    measure: str
    says: str
    margin: float = 0.0
    decisive: bool = True

    def improvement(self, a: list[float], b: list[float], higher_is_better: bool) -> Estimate:
        """How much better `arm` is than `other` (positive = better), with its Welch interval."""
        return difference_interval(a, b) if higher_is_better else difference_interval(b, a)

    def holds(self, e: Estimate) -> bool:
        return e.has_interval and (e.low > 0 if self.margin == 0 else e.low > -self.margin)

    def wording(self, claim: Claim) -> str:
        m = claim.measure(self.measure)
        if self.margin == 0:
            return f"`{self.arm}` better than `{self.other}` on {m.label}"
        return (f"`{self.arm}` not worse than `{self.other}` on {m.label} by more than {m.shown(self.margin)} "
                f"{m.difference_unit}")


@dataclass(frozen=True)
class PoolingWords:
    """How `Differences` words what a per-seed average runs over: a claim's protocols, or its protocols and the
    values of its axis."""

    over: str  # what each measure is averaged over
    every: str  # where each arm needs its seeds
    point: str  # the side table's unit: "protocol" or "point"
    per: str  # its caption's: "protocol" or "<axis> value"


def _pooling_words(claim: Claim) -> PoolingWords:
    if claim.axis is None:
        return PoolingWords("the claim's protocols", "every protocol", "protocol", "protocol")
    values = ", ".join(map(str, claim.axis.values))
    return PoolingWords(f"the claim's protocols and its {claim.axis.name} ({values})", "every protocol and axis value",
                        "point", f"{claim.axis.name} value")


@dataclass(frozen=True)
class Differences:
    """Pairwise comparisons of arms on a measure averaged over the claim's protocols per seed (see `describe`)."""

    comparisons: tuple[Comparison, ...]

    def describe(self, claim: Claim) -> str:
        decisive = "; ".join(f"{c.wording(claim)} ({c.says})" for c in self.comparisons if c.decisive)
        informative = "; ".join(c.wording(claim) for c in self.comparisons if not c.decisive)
        words = _pooling_words(claim)
        return (f"Per seed, each measure is averaged over {words.over}; the improvement of one arm over "
                "another is the difference of those per-seed averages (sign: positive = better), with its 95 % Welch "
                "interval over seeds. *Better than* holds when the interval lies above 0; *not worse by more than m* "
                f"when it lies above -m. Decisive comparisons: {decisive}. **Reproduced** when every decisive "
                f"comparison holds; **not enough seeds** when an arm of one has fewer than {MIN_SEEDS} seeds measured "
                f"on {words.every}."
                + (f" Reported, not counted: {informative}." if informative else "")
                + f" Per-{words.point} intervals are shown beside them, not counted.")

    def reads(self) -> tuple[set[str], set[str]]:
        return {a for c in self.comparisons for a in (c.arm, c.other)}, {c.measure for c in self.comparisons}

    @staticmethod
    def _where(claim: Claim) -> list[tuple[str, Optional[float]]]:
        """The (protocol, axis value) pairs a per-seed average runs over."""
        return [(p, x) for p in claim.protocols for x in claim.axis_values()]

    def _per_point(self, claim: Claim, figures: Figures) -> Table:
        where = self._where(claim)

        def header(p: str, x: Optional[float]) -> str:
            return p if x is None else (f"at {x}" if len(claim.protocols) == 1 else f"{p} at {x}")

        headers = ["comparison"] + [header(p, x) for p, x in where]
        rows = []
        for c in self.comparisons:
            m = claim.measure(c.measure)
            row = [TableCell(c.wording(claim).replace("`", ""))]
            for p, x in where:
                a, _ = figures.clamped(c.arm, p, x, c.measure)
                b, _ = figures.clamped(c.other, p, x, c.measure)
                row.append(TableCell(shown_interval(c.improvement(list(a.values()), list(b.values()), m.higher_is_better),
                                                    m, signed=True)))
            rows.append(row)
        units = ", ".join(dict.fromkeys(claim.measure(c.measure).difference_unit for c in self.comparisons))
        words = _pooling_words(claim)
        return Table(f"per-{words.point}", f"Improvement per {words.per} ({units}; positive = the first arm better)",
                     headers, rows, align=["l"] + ["r"] * len(where))

    def decide(self, claim: Claim, figures: Figures) -> Verdict:
        lines, holds, short, where = [], [], [], self._where(claim)
        for c in self.comparisons:
            m = claim.measure(c.measure)
            (a, _), (b, _) = figures.pooled_over(c.arm, c.measure, where), figures.pooled_over(c.other, c.measure, where)
            e = c.improvement(list(a.values()), list(b.values()), m.higher_is_better)
            ok = c.holds(e)
            if c.decisive:
                holds.append(ok)
                short += [f"`{arm}` ({len(v)})" for arm, v in ((c.arm, a), (c.other, b)) if len(v) < MIN_SEEDS]
            side = " (the interval lies below 0: the other arm is better)" if e.has_interval and e.high < 0 else ""
            lines.append(f"{c.wording(claim)} ({c.says}{'' if c.decisive else '; reported, not counted'}): "
                         f"improvement {shown_interval(e, m, signed=True)} {m.difference_unit}, n = {e.n}: "
                         f"{'holds' if ok else 'does not hold'}{side}")
        table = self._per_point(claim, figures)
        if short:
            every = _pooling_words(claim).every
            return Verdict(NOT_ENOUGH_SEEDS, f"fewer than {MIN_SEEDS} seeds measured on {every} for "
                           + ", ".join(dict.fromkeys(short)), tuple(lines), (table,))
        if holds and all(holds):
            return Verdict(REPRODUCED, "every decisive comparison holds", tuple(lines), (table,))
        failed = sum(not h for h in holds)
        return Verdict(NOT_REPRODUCED, f"{failed} of {len(holds)} decisive comparisons do not hold", tuple(lines), (table,))


@dataclass(frozen=True)
class Part:
    """One part of a statement of several, with the rule that tests it."""

    title: str
    rule: VerdictRule


@dataclass(frozen=True)
class AllOf:
    """A statement of several parts (the FR seed's: far fewer fine-tuning epochs; the semi-supervised variant
    improves), each judged by its own rule: reproduced when every part is, not reproduced when one is not, otherwise
    not enough seeds."""

    parts: tuple[Part, ...]

    def describe(self, claim: Claim) -> str:
        return (f"The statement has {len(self.parts)} parts, each with its own rule; the claim is **reproduced** when "
                "every part is, **not reproduced** when one part is not, otherwise **not enough seeds**. "
                + " ".join(f"*{i}. {p.title}.* {p.rule.describe(claim)}" for i, p in enumerate(self.parts, 1)))

    def reads(self) -> tuple[set[str], set[str]]:
        read = [p.rule.reads() for p in self.parts]
        return set().union(*(a for a, _ in read)), set().union(*(k for _, k in read))

    def decide(self, claim: Claim, figures: Figures) -> Verdict:
        verdicts = [(p, p.rule.decide(claim, figures)) for p in self.parts]
        statuses = {v.status for _, v in verdicts}
        status = (NOT_REPRODUCED if NOT_REPRODUCED in statuses else
                  NOT_ENOUGH_SEEDS if NOT_ENOUGH_SEEDS in statuses else REPRODUCED)
        lines = tuple(f"**{p.title}: {v.status}** ({v.reason})" + "".join(f"\n  - {line}" for line in v.lines)
                      for p, v in verdicts)
        reason = "; ".join(f"{p.title}: {v.status}" for p, v in verdicts)
        return Verdict(status, reason, lines, tuple(t for _, v in verdicts for t in v.tables))
