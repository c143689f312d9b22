"""The figures of a claim: per training seed, the value of each measure at each (arm, protocol, axis value), and
their means with 95 % intervals over seeds."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Optional

from bench.claims.records import Claim
from bench.claims.stats import Estimate, mean_interval


@dataclass(frozen=True)
class Cell:
    """A mean with its interval over seeds; `censored`: how many values were above the measure's ceiling (counted as
    the ceiling, so the mean is a lower bound)."""

    estimate: Estimate
    censored: int = 0

    @property
    def n(self) -> int:
        return self.estimate.n


class Figures:
    """(arm, protocol, axis value, measure key) -> {seed: value}, filled from the evaluations of a claim's grid."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self._values: dict[tuple[str, str, Optional[float], str], dict[int, float]] = {}

    def add(self, arm: str, protocol: str, x: Optional[float], seed: int, metrics: dict) -> None:
        for m in self.claim.measures:
            value = metrics.get(m.key)
            if value is not None and not math.isnan(float(value)):  # missing: not measured (e.g. nothing attacked)
                self._values.setdefault((arm, protocol, x, m.key), {})[seed] = float(value)

    def seeds(self, arm: str, protocol: str, x: Optional[float], key: str) -> dict[int, float]:
        """The raw values per seed (inf where a search found nothing below its ceiling)."""
        return dict(self._values.get((arm, protocol, x, key), {}))

    def clamped(self, arm: str, protocol: str, x: Optional[float], key: str) -> tuple[dict[int, float], set[int]]:
        """The values per seed as statistics use them (above the ceiling: the ceiling), and the seeds that were above."""
        measure = self.claim.measure(key)
        pairs = {seed: measure.clamp(v) for seed, v in self.seeds(arm, protocol, x, key).items()}
        return {seed: v for seed, (v, _) in pairs.items()}, {seed for seed, (_, above) in pairs.items() if above}

    def _cell(self, values: Iterable[float], key: str, censored: int) -> Cell:
        e = mean_interval(list(values))
        bounds = self.claim.measure(key).bounds
        if bounds is not None and e.has_interval:  # the mean lies in the bounds: cutting the interval keeps coverage
            e = replace(e, low=max(e.low, bounds[0]), high=min(e.high, bounds[1]))
        return Cell(e, censored)

    def cell(self, arm: str, protocol: str, x: Optional[float], key: str) -> Cell:
        values, censored = self.clamped(arm, protocol, x, key)
        return self._cell(values.values(), key, len(censored))

    def pooled_values(self, arm: str, x: Optional[float], key: str,
                      protocols: Optional[Iterable[str]] = None) -> tuple[dict[int, float], set[int]]:
        """Per seed, the mean over `protocols` (default: the claim's) at axis value `x` of the clamped values; only
        seeds measured on every one of them count. Also the seeds with a value above the ceiling on some protocol."""
        return self.pooled_over(arm, key, [(p, x) for p in (protocols or self.claim.protocols)])

    def pooled_over(self, arm: str, key: str,
                    where: Iterable[tuple[str, Optional[float]]]) -> tuple[dict[int, float], set[int]]:
        """Per seed, the mean of the clamped values over the (protocol, axis value) pairs `where`; only seeds
        measured at every one of them count. Also the seeds with a value above the ceiling at some pair."""
        per = [self.clamped(arm, p, x, key) for p, x in where]
        common = set.intersection(*(set(v) for v, _ in per)) if per else set()
        censored = set.union(set(), *(c for _, c in per)) & common
        return {s: sum(v[s] for v, _ in per) / len(per) for s in sorted(common)}, censored

    def pooled(self, arm: str, x: Optional[float], key: str) -> Cell:
        values, censored = self.pooled_values(arm, x, key)
        return self._cell(values.values(), key, len(censored))
