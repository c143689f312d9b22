"""Means over training seeds with 95 % Student-t intervals, and Welch intervals of a difference of two means.

Written out (no scipy): Student's t distribution function through the regularised incomplete beta function
(a continued fraction, evaluated by the modified Lentz method), its quantile by bisection. Degrees of freedom
may be fractional (Welch-Satterthwaite).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

LEVEL = 0.95


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), for 0 <= x <= 1 and a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile of Student's t with `df` (> 0) degrees of freedom, to about 1e-12."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class Estimate:
    """A mean (or a difference of means) with its interval, over `n` values (the smaller group for a difference).
    `low` and `high` are NaN when the interval is undefined (fewer than two values)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def defined(self) -> bool:
        return self.n > 0 and not math.isnan(self.mean)

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))


NOTHING = Estimate(float("nan"), float("nan"), float("nan"), 0)


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, float("nan")
    if all(v == values[0] for v in values):  # no spread (exactly, whatever the rounding of the mean)
        return values[0], 0.0
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, var


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """The mean of `values` and its two-sided Student-t interval: mean +- t(level, n - 1) * s / sqrt(n)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return NOTHING
    mean, var = _mean_var(values)
    if n < 2:
        return Estimate(mean, float("nan"), float("nan"), n)
    half = t_quantile(0.5 + level / 2.0, n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n)


def difference_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Estimate:
    """mean(a) - mean(b) with Welch's interval (unequal variances, Welch-Satterthwaite degrees of freedom); `n` is
    the smaller group's size. Two groups without spread give a zero-width interval."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        return NOTHING
    (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
    n = min(len(a), len(b))
    if n < 2:
        return Estimate(ma - mb, float("nan"), float("nan"), n)
    sa, sb = va / len(a), vb / len(b)
    se2 = sa + sb
    if se2 == 0.0:
        return Estimate(ma - mb, ma - mb, ma - mb, n)
    df = se2 * se2 / (sa * sa / (len(a) - 1) + sb * sb / (len(b) - 1))
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(se2)
    return Estimate(ma - mb, ma - mb - half, ma - mb + half, n)
