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
