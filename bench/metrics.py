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
    """A decision threshold with the rule that chose it (stored with every result).

    k-fold protocols judge each fold's pairs at a threshold of its own (`fold_thresholds`, index = fold); their
    `threshold` is then the mean of those, a summary that decides nothing."""

    threshold: float
    rule: str
    dev_count: int
    achieved_rate: float
    fold_thresholds: tuple[float, ...] = ()


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


@dataclass(frozen=True)
class FoldVerification:
    """One fold of a k-fold verification: thresholds chosen on the other folds, rates on this one.

    Scores are similarities: a pair is accepted (judged the same person) when its score >= the threshold."""

    fold: int
    n_genuine: int
    n_impostor: int
    accuracy_threshold: float  # best accuracy on the other folds
    accuracy: float  # of this fold's pairs at `accuracy_threshold`
    far_point: OperatingPoint  # `threshold_at_far` on the other folds' impostor pairs
    tar: float  # this fold's genuine pairs accepted at `far_point.threshold`
    far: float  # this fold's impostor pairs accepted at `far_point.threshold`


@dataclass(frozen=True)
class KFoldVerification:
    """Per-fold results and their mean and standard deviation over folds (population std, ddof=0, as
    insightface's `verification.py` reports `np.std` of the fold accuracies)."""

    folds: tuple[FoldVerification, ...]
    far_target: float

    def _stat(self, field: str) -> tuple[float, float]:
        values = np.array([getattr(f, field) for f in self.folds], dtype=np.float64)
        return float(values.mean()), float(values.std())

    @property
    def accuracy(self) -> tuple[float, float]:
        """(mean, std) over folds of the held-out accuracy."""
        return self._stat("accuracy")

    @property
    def tar(self) -> tuple[float, float]:
        """(mean, std) over folds of the held-out TAR at the FAR target."""
        return self._stat("tar")

    @property
    def far(self) -> tuple[float, float]:
        """(mean, std) over folds of the held-out FAR actually reached."""
        return self._stat("far")

    def describe(self) -> str:
        (acc, acc_sd), (tar, tar_sd) = self.accuracy, self.tar
        return (f"{len(self.folds)}-fold verification: accuracy {acc:.4f} +- {acc_sd:.4f}, "
                f"TAR@FAR={self.far_target:g} {tar:.4f} +- {tar_sd:.4f}")


def best_accuracy_threshold(scores: np.ndarray, genuine: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy): the threshold with the highest accuracy (genuine >= tau, impostor < tau) on these pairs.

    Every distinct set of decisions is tried: accept all, accept the scores >= each distinct score, reject all. A set
    of decisions holds on a whole interval of thresholds; the one returned is the middle of the gap below the lowest
    accepted score (the lowest score itself when everything is accepted, the next float above the highest score when
    nothing is). Ties in accuracy go to the highest threshold (the strictest: fewest false accepts), as insightface's
    `calculate_roc` takes the first best of its ascending distance thresholds."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(genuine, dtype=bool)
    if s.size == 0:
        raise BadInputError("no pairs to choose a threshold on")
    values = np.unique(s)  # ascending
    # accept scores >= values[j]: true accepts = genuine >= values[j], true rejects = impostor < values[j]
    gen_sorted, imp_sorted = np.sort(s[g]), np.sort(s[~g])
    ta = gen_sorted.size - np.searchsorted(gen_sorted, values, side="left")
    tr = np.searchsorted(imp_sorted, values, side="left")
    correct = np.concatenate([ta + tr, [imp_sorted.size]])  # the last entry: reject all
    best = int(np.flatnonzero(correct == correct.max())[-1])
    if best == values.size:
        tau = float(np.nextafter(values[-1], np.inf))
    elif best == 0:
        tau = float(values[0])
    else:
        tau = float((values[best - 1] + values[best]) / 2)
        if tau <= values[best - 1]:  # adjacent floats: no float lies strictly between them
            tau = float(values[best])
    return tau, float(correct[best] / s.size)


def kfold_verification(scores: np.ndarray, genuine: np.ndarray, folds: np.ndarray, far: float) -> KFoldVerification:
    """k-fold verification (LFW View 2's protocol, insightface's `.bin` validation sets): for each fold, the
    best-accuracy threshold and the threshold at `far` (`threshold_at_far` on their impostor pairs) are chosen on
    the *other* folds' pairs, then applied to this fold's pairs: accuracy, TAR and the FAR reached."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(genuine)
    f = np.asarray(folds)
    if not (s.shape == g.shape == f.shape and s.ndim == 1):
        raise BadInputError(f"scores, labels and folds must be 1-D and of one length, got {s.shape}, {g.shape}, {f.shape}")
    if g.dtype != bool:
        raise BadInputError(f"is-same labels must be booleans, got {g.dtype}")
    if not np.all(np.isfinite(s)):
        raise BadInputError(f"{int((~np.isfinite(s)).sum())} verification scores are not finite")
    ids = np.unique(f)
    if ids.size < 2:
        raise BadInputError(f"k-fold verification needs at least 2 folds, got {ids.size}")
    results = []
    for fold in ids:
        held, rest = f == fold, f != fold
        if not g[held].any() or g[held].all():
            raise BadInputError(f"fold {fold} needs both genuine and impostor pairs")
        tau, _ = best_accuracy_threshold(s[rest], g[rest])
        point = threshold_at_far(s[rest & ~g], far)
        hs, hg = s[held], g[held]
        results.append(FoldVerification(
            fold=int(fold), n_genuine=int(hg.sum()), n_impostor=int((~hg).sum()), accuracy_threshold=tau,
            accuracy=float(np.mean((hs >= tau) == hg)), far_point=point,
            tar=float(np.mean(hs[hg] >= point.threshold)), far=float(np.mean(hs[~hg] >= point.threshold)),
        ))
    return KFoldVerification(tuple(results), float(far))
