import numpy as np
import pytest

from bench.config import format_eps, parse_eps
from bench.errors import BadInputError
from bench.metrics import auc, eer_threshold, threshold_at_far, wilson_interval


def test_parse_and_format_eps():
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps("0.5") == 0.5
    assert format_eps("linf", 8 / 255) == "8/255"
    assert format_eps("l2", 0.5) == "0.5"
    with pytest.raises(BadInputError):
        parse_eps("eight")
    with pytest.raises(BadInputError):
        parse_eps("1/0")


def test_threshold_at_far_respects_the_rate():
    rng = np.random.default_rng(0)
    impostors = rng.normal(size=20_000)
    op = threshold_at_far(impostors, 1e-3)
    assert np.mean(impostors >= op.threshold) <= 1e-3
    # the next lower score would exceed the rate: the threshold is as low as allowed
    lower = np.sort(impostors)[::-1][int(1e-3 * len(impostors))]
    assert np.mean(impostors >= lower) > 1e-3


def test_threshold_needs_enough_pairs():
    with pytest.raises(BadInputError, match="at least 1000"):
        threshold_at_far(np.zeros(100), 1e-3)


def test_eer_threshold_separable_and_overlapping():
    live = np.array([0.9, 0.8, 0.7, 0.6])
    attack = np.array([0.1, 0.2, 0.3, 0.4])
    op = eer_threshold(live, attack)
    assert op.achieved_rate == 0 and op.threshold == pytest.approx(0.5)  # the middle of the gap, not its live edge
    op2 = eer_threshold(np.array([0.3, 0.6]), np.array([0.4, 0.1]))
    assert op2.achieved_rate == pytest.approx(0.5)


def test_wilson_interval_contains_rate_and_shrinks():
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi
    lo2, hi2 = wilson_interval(500, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson_interval(0, 10)[0] == 0.0


def test_auc():
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5


def test_fas_rates_by_hand():
    from bench.metrics import fas_rates, video_scores

    scores = np.array([0.9, 0.8, 0.2, 0.6, 0.1, 0.7, 0.3])
    live = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    species = np.array(["live", "live", "live", "print", "print", "replay", "replay"])
    r = fas_rates(scores, live, species, 0.5)
    assert r.bpcer == pytest.approx(1 / 3)  # 0.2 rejected
    assert r.apcer_per_species == {"print": 0.5, "replay": 0.5}
    assert r.apcer == 0.5 and r.apcer_pooled == 0.5
    assert r.acer == pytest.approx((0.5 + 1 / 3) / 2)
    v, first = video_scores(np.array([1.0, 3.0, 5.0]), np.array(["b", "a", "b"]))
    assert list(v) == [3.0, 3.0] and list(first) == [1, 0]


# --------------------------------------------------------------------------- k-fold verification (LFW View 2, .bin)

from bench.metrics import best_accuracy_threshold, kfold_verification  # noqa: E402

# Three folds of 2 genuine + 2 impostor pairs (scores are similarities: accept when score >= threshold).
KFOLD_SCORES = {  # fold: (genuine scores, impostor scores)
    0: ([0.9, 0.7], [0.2, 0.5]),
    1: ([0.8, 0.4], [0.3, 0.1]),
    2: ([0.62, 0.95], [0.45, 0.55]),
}


def _kfold_arrays():
    scores, genuine, folds = [], [], []
    for fold, (gen, imp) in KFOLD_SCORES.items():
        scores += gen + imp
        genuine += [True] * len(gen) + [False] * len(imp)
        folds += [fold] * (len(gen) + len(imp))
    return np.array(scores), np.array(genuine), np.array(folds)


def test_best_accuracy_threshold_by_hand():
    # sorted: 0.1 i, 0.35 g, 0.4 i, 0.8 g. Correct decisions when accepting >= 0.1: 2; >= 0.35: 2 + 1 = 3;
    # >= 0.4: 1 + 1 = 2; >= 0.8: 1 + 2 = 3; reject all: 2. Tie at 3 -> the highest (accept >= 0.8), placed in the
    # middle of the gap (0.4, 0.8]: 0.6; accuracy 3 / 4.
    tau, acc = best_accuracy_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
    assert tau == pytest.approx(0.6) and acc == 0.75
    # separable: accept >= 0.7 is right for all; middle of (0.3, 0.7]
    assert best_accuracy_threshold(np.array([0.3, 0.7, 0.9]), np.array([False, True, True])) == (pytest.approx(0.5), 1.0)
    # all genuine: accepting everything (threshold = the lowest score) is best
    assert best_accuracy_threshold(np.array([0.2, 0.5]), np.array([True, True])) == (0.2, 1.0)
    # all impostors: rejecting everything (just above the highest score)
    tau, acc = best_accuracy_threshold(np.array([0.2, 0.5]), np.array([False, False]))
    assert tau == np.nextafter(0.5, 1) and acc == 1.0


def test_kfold_verification_by_hand():
    """Worked by hand (accept when score >= threshold; FAR 0.25 on 4 impostors of the other folds allows 1).

    fold 0 held out: other folds sorted 0.1i 0.3i 0.4g 0.45i 0.55i 0.62g 0.8g 0.95g; correct decisions per lowest
    accepted score 4,5,6,5,6,7,6,5 (reject all: 4): best accept >= 0.62, threshold (0.55 + 0.62) / 2 = 0.585 ->
    fold 0: 0.9, 0.7 accepted, 0.2, 0.5 rejected: accuracy 1. FAR: impostors 0.55 0.45 0.3 0.1 -> just above 0.45
    -> fold 0: TAR 2/2 = 1, FAR 1/2 (0.5 accepted).
    fold 1 held out: others 0.2i 0.45i 0.5i 0.55i 0.62g 0.7g 0.9g 0.95g separate at 0.585 -> fold 1: 0.8 accepted,
    0.4 rejected, 0.3, 0.1 rejected: accuracy 3/4. FAR: just above 0.5 -> TAR 1/2, FAR 0.
    fold 2 held out: others 0.1i 0.2i 0.3i 0.4g 0.5i 0.7g 0.8g 0.9g: correct 4,5,6,7,6,7,6,5 (reject 4): ties at 7 for
    >= 0.4 and >= 0.7, the highest wins: (0.5 + 0.7) / 2 = 0.6 -> fold 2: 0.62, 0.95 accepted, 0.45, 0.55 rejected:
    accuracy 1. FAR: impostors 0.5 0.3 0.2 0.1 -> just above 0.3 -> TAR 1, FAR 2/2 = 1.
    Accuracy 1, 0.75, 1: mean 11/12, population std sqrt(1/72); TAR 1, 0.5, 1: mean 5/6, std sqrt(1/18).
    """
    result = kfold_verification(*_kfold_arrays(), far=0.25)
    assert [f.fold for f in result.folds] == [0, 1, 2]
    assert [f.accuracy_threshold for f in result.folds] == pytest.approx([0.585, 0.585, 0.6])
    assert [f.far_point.threshold for f in result.folds] == [np.nextafter(0.45, 1), np.nextafter(0.5, 1), np.nextafter(0.3, 1)]
    assert [f.accuracy for f in result.folds] == [1.0, 0.75, 1.0]
    assert [f.tar for f in result.folds] == [1.0, 0.5, 1.0]
    assert [f.far for f in result.folds] == [0.5, 0.0, 1.0]
    assert [(f.n_genuine, f.n_impostor) for f in result.folds] == [(2, 2)] * 3
    assert result.accuracy == pytest.approx((11 / 12, (1 / 72) ** 0.5))
    assert result.tar == pytest.approx((5 / 6, (1 / 18) ** 0.5))
    assert result.far == pytest.approx((0.5, (1 / 6) ** 0.5))
    assert "3-fold verification: accuracy 0.9167 +- 0.1179, TAR@FAR=0.25 0.8333 +- 0.2357" == result.describe()


def test_kfold_verification_reads_fold_ids_not_positions():
    scores, genuine, folds = _kfold_arrays()
    order = np.random.default_rng(0).permutation(scores.size)
    shuffled = kfold_verification(scores[order], genuine[order], folds[order] + 5, far=0.25)
    assert [f.fold for f in shuffled.folds] == [5, 6, 7]
    assert [f.accuracy for f in shuffled.folds] == [1.0, 0.75, 1.0]
    assert [f.tar for f in shuffled.folds] == [1.0, 0.5, 1.0]


@pytest.mark.parametrize("change, message", [
    (lambda s, g, f: (s[:-1], g, f), "of one length"),
    (lambda s, g, f: (np.where(np.arange(s.size) == 3, np.nan, s), g, f), "1 verification scores are not finite"),
    (lambda s, g, f: (s, g.astype(int), f), "must be booleans"),
    (lambda s, g, f: (s, g, np.zeros_like(f)), "at least 2 folds, got 1"),
    (lambda s, g, f: (s, g & (f != 1), f), "fold 1 needs both genuine and impostor pairs"),
])
def test_kfold_verification_refuses_bad_input(change, message):
    with pytest.raises(BadInputError, match=message):
        kfold_verification(*change(*_kfold_arrays()), far=0.25)


def test_kfold_verification_far_needs_enough_impostors():
    with pytest.raises(BadInputError, match="FAR 0.1 needs at least 10 dev impostor pairs, got 4"):
        kfold_verification(*_kfold_arrays(), far=0.1)
