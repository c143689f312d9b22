"""The `standard` suite against the original AutoAttack and the libraries' APGD / PGD on a zoo model (issue 17).

In a file of its own so that `make test`'s workers (pytest-xdist, a file each) start it early, beside the others.
"""
import pytest


@pytest.mark.slow
def test_standard_is_never_weaker_than_autoattack_and_the_libraries():
    """Issue 17: on the same 50 impersonation pairs of `facenet-baseline` at Linf 4/255, the `standard` Linf cascade
    leaves no more pairs robust than the strongest of the original AutoAttack (APGD-CE-100, FAB-100, Square), ART's
    APGD-100, torchattacks' APGD-100 and foolbox's PGD-100, each run independently, and misses at most one in fifty
    of the pairs any of them breaks. Square runs 1000 queries on both sides here (5000 in the suite and in the
    `library-parity` perf case, whose figures docs/performance.md gives) to keep the test to minutes."""
    pytest.importorskip("pyautoattack")
    from perf.parity import compare, parity_summary

    out = compare(n=50, square_queries=1000)
    s = parity_summary(out)
    print(s, {k: round(v.seconds, 1) for k, v in out.items()})
    assert s["n"] == 50
    refs = [k for k in out if k != "standard"]
    assert set(refs) == {"autoattack", "art-apgd", "torchattacks-apgd", "foolbox-pgd"}
    assert min(s["robust"][k] for k in refs) < s["n"]  # the references break something: the comparison has teeth
    assert s["standard_robust_at_most_strongest"], s
    assert s["broken_by_a_reference_not_by_standard"] <= s["allowed_misses"], s


def test_locating_classifier_finds_the_nearest_item_exactly_as_cdist_does():
    """`LocatingClassifier.nearest` (a bound from a few coordinates, the full distance only where in doubt) gives
    `cdist(p=inf).argmin` on points near the items, anywhere in the cube, between items and on exact ties."""
    import torch

    from perf.parity import LocatingClassifier, separating_coordinates

    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 8, 8, generator=g)
    x[5] = x[4]  # two identical items: a tie, which cdist breaks towards the lower index
    flat = x.flatten(1)
    keys = separating_coordinates(flat)
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)]
    assert all((flat[i] - flat[j]).abs()[keys].max() == (flat[i] - flat[j]).abs().max() for i, j in pairs)
    locate = LocatingClassifier(None, x)
    near = x + (torch.rand(x.shape, generator=g) * 2 - 1) * 4 / 255
    points = [near, torch.rand(40, 3, 8, 8, generator=g), (x + x.roll(1, 0)) / 2, x.flip(0), x,
              torch.full((3, 3, 8, 8), 0.5)]
    doubts = 0
    for p in points:
        expected = torch.cdist(p.flatten(1), flat, p=float("inf")).argmin(1)
        assert torch.equal(locate.nearest(p), expected)
        bound = torch.cdist(p.flatten(1)[:, keys], flat[:, keys], p=float("inf"))
        doubts += int(((bound <= (p.flatten(1) - flat[expected]).abs().amax(1)[:, None]).sum(1) > 1).sum())
    assert 0 < doubts < sum(len(p) for p in points)  # some rows were settled by the bound, some measured in full
