"""Metrics and operating points. Thresholds are always fitted on dev data, never on test."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.errors import BadInputError


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial rate; (0, 1) when there are no trials."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def median_interval(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """The median of `values` (inf allowed: never broken) with its 95 % percentile-bootstrap interval: `resamples`
    resamplings with replacement drawn from `numpy.random.default_rng(seed)`, so the same values always give the same
    interval; the bounds are order statistics of the resampled medians (no interpolation, so inf stays inf).
    (nan, nan, nan) for no values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    meds = np.sort(np.median(v[rng.integers(0, v.size, size=(resamples, v.size))], axis=1))
    lo = meds[int(math.floor(0.025 * resamples))]
    hi = meds[int(math.ceil(0.975 * resamples)) - 1]
    return float(np.median(v)), float(lo), float(hi)


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold with the rule that chose it (stored with every result)."""

    threshold: float
    rule: str
    dev_count: int
    achieved_rate: float


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> OperatingPoint:
    """Smallest threshold whose false-accept rate (impostor s >= tau) on dev is at most `far`."""
    scores = np.sort(np.asarray(impostor_scores, dtype=np.float64))[::-1]
    n = scores.size
    if n == 0:
        raise BadInputError("no dev impostor pairs to fit a threshold on")
    if n * far < 1:
        raise BadInputError(
            f"FAR {far:g} needs at least {math.ceil(1 / far)} dev impostor pairs, got {n}"
        )
    k = int(math.floor(far * n))  # at most k impostors may be accepted
    tau = float(np.nextafter(scores[k], np.inf)) if k < n else float(scores[-1])
    achieved = float(np.mean(scores >= tau))
    return OperatingPoint(tau, f"dev FAR={far:g}", n, achieved)


def eer_threshold(live_scores: np.ndarray, attack_scores: np.ndarray) -> OperatingPoint:
    """Threshold where the dev false-accept (attack >= tau) and false-reject (live < tau) rates meet."""
    live = np.asarray(live_scores, dtype=np.float64)
    attack = np.asarray(attack_scores, dtype=np.float64)
    if live.size == 0 or attack.size == 0:
        raise BadInputError("EER needs both live and attack dev scores")
    candidates = np.unique(np.concatenate([live, attack, [np.inf]]))
    far = np.array([(attack >= t).mean() for t in candidates])
    frr = np.array([(live < t).mean() for t in candidates])
    i = int(np.argmin(np.abs(far - frr)))
    eer = float((far[i] + frr[i]) / 2)
    tau = float(candidates[i])
    if eer == 0.0:  # the classes separate: every threshold in the gap is an EER threshold; take its middle
        tau = float((attack.max() + live.min()) / 2)  # (the first one is the lowest live score, which rejects
        # any live sample that scores a little lower than the dev lives)
    return OperatingPoint(tau, "dev EER", int(live.size + attack.size), eer)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(s_pos > s_neg) with ties counted half (Mann-Whitney)."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty_like(order, dtype=np.float64)
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: pos.size].sum()
    return float((r_pos - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


@dataclass(frozen=True)
class FASRates:
    """ISO/IEC 30107-3 error rates at one threshold (score >= threshold means accepted as live)."""

    apcer: float  # worst species
    apcer_pooled: float
    apcer_per_species: dict
    bpcer: float
    acer: float
    hter: float
    n_live: int
    n_attack: int


def fas_rates(scores: np.ndarray, live: np.ndarray, species: np.ndarray, threshold: float) -> FASRates:
    """APCER (per species, worst, pooled), BPCER, ACER and HTER of liveness scores at `threshold`."""
    scores, live, species = np.asarray(scores), np.asarray(live, dtype=bool), np.asarray(species)
    accepted = scores >= threshold
    attack = ~live
    per = {str(sp): float(accepted[attack & (species == sp)].mean()) for sp in sorted(set(species[attack]))}
    apcer = max(per.values()) if per else float("nan")
    pooled = float(accepted[attack].mean()) if attack.any() else float("nan")
    bpcer = float((~accepted[live]).mean()) if live.any() else float("nan")
    return FASRates(apcer, pooled, per, bpcer, (apcer + bpcer) / 2, (pooled + bpcer) / 2, int(live.sum()), int(attack.sum()))


def video_scores(scores: np.ndarray, video_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Video-level scores (mean of each video's frame scores) and the index of each video's first frame."""
    video_ids = np.asarray(video_ids)
    uniq, first, inverse = np.unique(video_ids, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=np.asarray(scores, dtype=np.float64))
    counts = np.bincount(inverse)
    return sums / counts, first
