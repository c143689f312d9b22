"""`synth-fr-dev`: attacked pairs formed from synth-fr's dev identities, to choose schedules without test pairs."""
import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.sets import FaceSet, pairs_within
from bench.data.synth.fr import SYNTH_FR
from bench.errors import BadInputError
from bench.protocols import get_protocol
from bench.runner import comparable_card
from bench.store import ResultsStore


def _faces(per_id):
    """Tiny face set: identity i has per_id[i] images, each image filled with its own index."""
    who = np.repeat(np.arange(len(per_id)), per_id)
    images = np.arange(len(who), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    return FaceSet(images, who, [f"id{w}/s{i}" for i, w in enumerate(who)])


def _identity(sample_id):
    return int(sample_id.split("/")[0][2:])


@pytest.mark.parametrize("kind", ["genuine", "impostor"])
def test_pairs_within_form_each_pair_once_of_the_right_kind(kind):
    faces = _faces([3, 1, 4, 2, 5])
    pairs = pairs_within(faces, kind, 12)
    assert len(pairs) == 12 and pairs.genuine.tolist() == [kind == "genuine"] * 12
    sides = [p.split(":", 1)[1].split("|") for p in pairs.pair_ids]
    assert all(p.startswith(kind[0] + ":") for p in pairs.pair_ids)
    assert len({frozenset(s) for s in sides}) == 12 and all(a != b for a, b in sides)  # each pair once, never a self-pair
    same = [_identity(a) == _identity(b) for a, b in sides]
    assert same == [kind == "genuine"] * 12
    index = {s: i for i, s in enumerate(faces.sample_ids)}  # the images are those the ids name
    assert [int(p[0, 0, 0]) for p in pairs.probes] == [index[a] for a, _ in sides]
    assert [int(r[0, 0, 0]) for r in pairs.references] == [index[b] for _, b in sides]
    again = pairs_within(faces, kind, 12)
    assert again.pair_ids == pairs.pair_ids  # a fixed list, like a pairs.txt


def test_pairs_within_stops_at_what_the_set_can_form_and_refuses_none():
    faces = _faces([3, 1, 2])  # genuine: 3 + 0 + 1 = 4 pairs; impostor: (36 - 14) / 2 = 11
    assert len(pairs_within(faces, "genuine", 100)) == 4
    assert len(pairs_within(faces, "impostor", 100)) == 11
    with pytest.raises(BadInputError, match="no genuine pairs"):
        pairs_within(_faces([1, 1, 1]), "genuine", 5)
    with pytest.raises(BadInputError, match="no impostor pairs"):
        pairs_within(_faces([4]), "impostor", 5)


def test_a_pair_subset_keeps_each_pair_whole_in_the_order_asked():
    pairs = pairs_within(_faces([3, 2, 2]), "impostor", 100)
    sub = pairs.subset([4, 0, 2])
    assert sub.pair_ids == [pairs.pair_ids[i] for i in (4, 0, 2)]
    for k, i in enumerate((4, 0, 2)):
        assert np.array_equal(sub.probes[k], pairs.probes[i]) and np.array_equal(sub.references[k], pairs.references[i])
    assert not sub.genuine.any() and len(pairs.subset([])) == 0


def test_synth_fr_dev_attacks_dev_identities_only_at_synth_fr_s_threshold():
    dev, fr = get_protocol("synth-fr-dev"), get_protocol("synth-fr")
    assert dev.base_protocol == fr.base_protocol == "synth-fr"
    faces = fr.dev_set(64)
    assert dev.dev_split(64) is fr.dev_split(64)  # same dev faces, so the same threshold and dev figures
    assert dev.train_set(64) is fr.train_set(64)  # and the same training
    position = {s: i for i, s in enumerate(faces.sample_ids)}
    for kind in ("genuine", "impostor"):
        pairs = dev.test_pairs(kind, 50, 0, 64)
        assert len(pairs) == 50
        sides = [p.split(":", 1)[1].split("|") for p in pairs.pair_ids]
        assert all(_identity(s) in SYNTH_FR.dev_ids for side in sides for s in side)
        assert not any(_identity(s) in SYNTH_FR.test_ids for side in sides for s in side)
        assert np.array_equal(pairs.probes, faces.images[[position[a] for a, _ in sides]])
        assert np.array_equal(pairs.references, faces.images[[position[b] for _, b in sides]])
        assert set(pairs.pair_ids).isdisjoint(fr.test_pairs(kind, None, 0, 64).pair_ids)
        other = dev.test_pairs(kind, 50, 1, 64)
        assert other.pair_ids != pairs.pair_ids and dev.test_pairs(kind, 50, 0, 64).pair_ids == pairs.pair_ids
    assert dev.data_fingerprint(64) != fr.data_fingerprint(64)  # its splits read the CelebA stand-in only
    with pytest.raises(BadInputError, match="verification pairs only"):
        dev.identification(10, 0, 64)


def test_run_on_synth_fr_dev_stores_dev_pairs(tmp_path):
    store = tmp_path / "dev.h5"
    suite = tmp_path / "one.yaml"
    suite.write_text("name: one\nattacks:\n  - attack: pgd\n    params: {steps: 3}\n    eps: [4/255]\n")
    r = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--protocol", "synth-fr-dev", "--attack-suite",
                                  str(suite), "--samples", "8", "--store", str(store), "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    st = ResultsStore(store)
    run = st.run()
    assert run["card_reproduces"] and "not compared" not in run["card_check"]  # the card's dev is synth-fr's, the same
    cells = st.read_cells(run["cell_ids"])
    assert {c.config["goal"] for c in cells} == {"dodging", "impersonation"}
    for c in cells:
        assert c.config["protocol"] == "synth-fr-dev"
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in c.arrays["sample_id"]]
        assert len(ids) == 8 and all(_identity(p.split(":", 1)[1].split("|")[0]) in SYNTH_FR.dev_ids for p in ids)


def test_a_card_of_one_calibration_is_compared_under_either_name():
    card = {"protocol": "synth-fr", "dev": {"threshold": 0.5}}
    assert comparable_card(card, "synth-fr-dev", False) == (card, "")
    assert comparable_card({**card, "protocol": "synth-fr-dev"}, "synth-fr", False)[1] == ""
    assert "not compared" in comparable_card(card, "celeba-intra", False)[1]  # another dev split
    assert "not compared" in comparable_card({**card, "protocol": "gone-protocol"}, "synth-fr", False)[1]
