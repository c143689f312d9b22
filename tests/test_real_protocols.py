"""Named protocols over the real datasets, on tiny fixtures in each dataset's official layout."""
import shutil

import numpy as np
import pytest

from bench.data.real import DatasetError
from bench.data.real.locate import dataset_root
from bench.protocols import get_protocol
from tests import real_fixtures as fx


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    fx.write_celeba(tmp_path / "celeba")
    fx.write_lfw(tmp_path / "lfw")
    fx.write_oulu(tmp_path / "oulu-npu")
    casia = fx.write_casia(tmp_path / "casia-fasd")
    shutil.copytree(casia / "train_release" / "1", casia / "train_release" / "2")  # a second subject: one for dev
    fx.write_replay(tmp_path / "replay-attack")
    monkeypatch.setenv("FACEBENCH_DATA", str(tmp_path))
    return tmp_path


def test_unconfigured_dataset_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("FACEBENCH_DATA", raising=False)
    monkeypatch.delenv("FACEBENCH_DATA_OULU_NPU", raising=False)
    with pytest.raises(DatasetError, match="FACEBENCH_DATA_OULU_NPU"):
        get_protocol("oulu-p1").frames("train", 16)


def test_specific_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEBENCH_DATA", "/elsewhere")
    monkeypatch.setenv("FACEBENCH_DATA_LFW", str(tmp_path))
    assert dataset_root("lfw") == tmp_path


def test_celeba_to_lfw_splits(data_dir):
    p = get_protocol("celeba->lfw")
    train, dev = p.train_set(16), p.dev_set(16)
    assert len(train) == 3 and len(dev) == 2 and train.images.shape[1:] == (16, 16, 3)
    assert not set(train.sample_ids) & set(dev.sample_ids)
    gen, imp = p.test_pairs("genuine", None, 0, 16), p.test_pairs("impostor", None, 0, 16)
    assert len(gen) == 4 and len(imp) == 4 and gen.genuine.all() and not imp.genuine.any()
    a, b = p.test_pairs("genuine", 2, 5, 16), p.test_pairs("genuine", 2, 5, 16)
    assert a.pair_ids == b.pair_ids and np.array_equal(a.probes, b.probes)  # deterministic per seed


def test_oulu_p1_splits_labels_and_depth(data_dir):
    p = get_protocol("oulu-p1")
    splits = {s: p.frames(s, 16) for s in ("train", "dev", "test")}
    assert [len(np.unique(splits[s].video_ids)) for s in ("train", "dev", "test")] == [5, 2, 4]
    subjects = {s: set(splits[s].subjects) for s in splits}
    assert not subjects["train"] & subjects["dev"] and not subjects["dev"] & subjects["test"]
    test = splits["test"]
    assert set(test.species[test.live]) == {"live"} and set(test.species[~test.live]) <= {"print", "replay"}
    train = splits["train"]
    assert np.all(train.depth[~train.live] == 0)  # spoofs: all-zero depth labels
    live_with_map = train.live & ~np.isnan(train.depth).any(axis=(1, 2))
    assert live_with_map.any() and np.allclose(train.depth[live_with_map], 128 / 255, atol=0.01)


def test_cross_dataset_uses_source_dev_and_target_test(data_dir):
    p = get_protocol("casia->replay")
    train, dev, test = p.frames("train", 16), p.frames("dev", 16), p.frames("test", 16)
    assert set(train.domains) == {"casia-fasd"} and set(dev.domains) == {"casia-fasd"}
    assert set(test.domains) == {"replay-attack"}
    assert not set(train.subjects) & set(dev.subjects)  # dev is held out of CASIA's train subjects
    assert len(np.unique(test.video_ids)) == 3  # Replay-Attack's test split only


def test_every_real_protocol_is_listed():
    from bench.protocols import PROTOCOLS

    names = set(PROTOCOLS.names())
    expected = {"celeba->lfw", "celeba-intra", "oulu-p1", "oulu-p2", "casia->replay", "replay->casia", "mi->c", "mi->o"}
    expected |= {f"ocim->{t}" for t in "ocim"} | {f"oulu-p{n}-f{k}" for n in (3, 4) for k in range(1, 7)}
    assert expected <= names
