"""The k-fold verification protocols `lfw` (LFW View 2) and `bin:PATH` (insightface's validation sets), and flip
test-time augmentation, on tiny fixtures written in the exact formats: a View 2 `pairs.txt` (header `10 300`, fold
order) over an LFW layout of rendered faces, and `.bin` files pickled the way insightface writes them."""
from __future__ import annotations

import json
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.data.sets import choose_across_folds, fold_of
from bench.errors import FacebenchError
from bench.metrics import best_accuracy_threshold, threshold_at_far
from bench.protocols import PROTOCOLS, get_protocol
from bench.store import ResultsStore
from models_zoo.factory import create_model
from models_zoo.tta import FlipTTA
from tests import real_fixtures as fx

CPU = torch.device("cpu")
SUITE = """
    attacks:
      - {attack: fgsm, norm: linf, eps: [2/255]}
"""


@pytest.fixture(scope="module")
def lfw_root(tmp_path_factory):
    return fx.write_lfw_view2_rendered(tmp_path_factory.mktemp("data") / "lfw")


@pytest.fixture
def lfw_env(lfw_root, monkeypatch):
    monkeypatch.setenv("FACEBENCH_DATA_LFW", str(lfw_root))
    return lfw_root


@pytest.fixture(scope="module")
def model():
    return create_model("facenet-baseline", CPU).module


@pytest.fixture(scope="module")
def tiny_bin(tmp_path_factory):
    return fx.write_rendered_bin(tmp_path_factory.mktemp("bin") / "agedb_30.bin")


def _scores(model, split) -> np.ndarray:
    with torch.no_grad():
        e = model(torch.from_numpy(split.images).permute(0, 3, 1, 2).float() / 255)
    return (e[split.first] * e[split.second]).sum(1).numpy().astype(np.float64)


def test_both_are_listed(lfw_env):
    out = CliRunner().invoke(main, ["protocols"])
    assert out.exit_code == 0, out.output
    names = {line.split()[0] for line in out.output.splitlines()[2:] if line.strip()}
    assert {"lfw", "bin:PATH", "celeba->lfw"} <= names
    assert get_protocol("bin:~/sets/agedb_30.bin").name.endswith("/sets/agedb_30.bin")  # ~ expanded, absolute


def test_lfw_reads_view2_in_fold_order(lfw_env):
    pairs = get_protocol("lfw").pair_folds()
    assert len(pairs) == 6000 and np.bincount(pairs.folds).tolist() == [600] * 10
    for fold in range(10):  # each fold: 300 matched lines, then 300 mismatched
        assert pairs.genuine[fold * 600: fold * 600 + 300].all() and not pairs.genuine[fold * 600 + 300: (fold + 1) * 600].any()
    assert pairs.pair_ids[0].startswith("g:Synth_") and pairs.pair_ids[300].startswith("i:Synth_")
    assert int(max(pairs.first.max(), pairs.second.max())) + 1 == fx.RENDERED_PEOPLE * fx.RENDERED_PER_PERSON


def test_lfw_refuses_a_pairs_file_that_is_not_view2(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_DATA_LFW", str(fx.write_lfw(tmp_path / "lfw")))  # header '2 2'
    with pytest.raises(FacebenchError, match="View 2's header is '10 300'") as info:
        get_protocol("lfw").pair_folds()
    assert "\n" not in str(info.value)


def test_each_fold_is_calibrated_on_the_other_nine(lfw_env, model):
    p = get_protocol("lfw")
    split = p.dev_split(64)
    dev = p.calibrate(model, split, CPU)
    s, g, f = _scores(model, split), split.genuine, split.folds
    op = dev.operating_point
    assert len(op.fold_thresholds) == 10 and op.threshold == pytest.approx(np.mean(op.fold_thresholds))
    accuracies = []
    for k in range(10):
        rest = f != k
        tau_far = threshold_at_far(s[rest & ~g], p.far).threshold
        tau_acc, _ = best_accuracy_threshold(s[rest], g[rest])
        assert op.fold_thresholds[k] == pytest.approx(tau_far, abs=1e-6)
        accuracies.append(np.mean((s[f == k] >= tau_acc) == g[f == k]))
    card = dev.as_card()
    assert card["accuracy_mean"] == pytest.approx(np.mean(accuracies), abs=1e-6)
    assert card["accuracy_std"] == pytest.approx(np.std(accuracies), abs=1e-6)
    assert card["folds"] == 10 and card["genuine_pairs"] == card["impostor_pairs"] == 3000
    # a fold's own pairs never move its threshold: rescoring fold 0 leaves it, and only it, unchanged
    from bench.metrics import kfold_verification

    moved = s.copy()
    moved[(f == 0) & ~g] += 2.0  # above every cosine score: fold 0's impostors become the other folds' top ones
    again = kfold_verification(moved, g, f, p.far)
    assert again.folds[0].far_point.threshold == pytest.approx(op.fold_thresholds[0], abs=1e-9)
    assert any(abs(x.far_point.threshold - op.fold_thresholds[x.fold]) > 1e-6 for x in again.folds[1:])


def test_goal_items_spread_over_folds_each_at_its_fold_threshold(lfw_env, model):
    p = get_protocol("lfw")
    taus = tuple(0.1 * k - 0.3 for k in range(10))
    items = p.goal_items("impersonation", model, taus, 25, 0, 64, CPU)
    folds = [fold_of(i) for i in items.sample_ids]
    assert sorted(np.bincount(folds).tolist()) == [2] * 5 + [3] * 5  # spread evenly over the 10 folds
    assert all(i.split(":")[1] == "i" for i in items.sample_ids)  # impersonation: impostor pairs
    assert torch.allclose(items.task.threshold, torch.tensor([taus[k] for k in folds]))
    scores = items.task.scores(items.x)
    assert torch.equal(items.task.success_from_scores(scores), scores >= items.task.threshold)
    sub = items.shard(3, 9)
    assert torch.equal(sub.task.threshold, items.task.threshold[3:9])
    again = p.goal_items("impersonation", model, taus, 25, 0, 64, CPU)
    assert again.sample_ids == items.sample_ids and p.goal_items("impersonation", model, taus, 25, 1, 64, CPU).sample_ids != items.sample_ids
    with pytest.raises(FacebenchError, match="expected 10 fold thresholds"):
        p.goal_items("dodging", model, 0.3, 5, 0, 64, CPU)


def test_choose_across_folds_is_balanced_and_seeded():
    folds = np.repeat(np.arange(10), [5, 1, 5, 5, 5, 5, 5, 5, 5, 5])
    pick = choose_across_folds(folds, 19, seed=3, salt=0)
    assert len(set(pick.tolist())) == 19
    counts = np.bincount(folds[pick], minlength=10)
    assert counts[1] == 1 and set(counts[[0, *range(2, 10)]].tolist()) == {2}
    assert not np.array_equal(pick, choose_across_folds(folds, 19, seed=4, salt=0))


def _run(tmp_path, *extra):
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent(SUITE))
    args = ["run", "--model", "facenet-baseline", "--attack-suite", str(suite), "--samples", "20", "--device", "cpu",
            "--store", str(tmp_path / "r.h5"), "--json", "--quiet", *extra]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_run_on_lfw_attacks_each_fold_at_its_threshold(lfw_env, tmp_path):
    out = _run(tmp_path, "--protocol", "lfw")
    store = ResultsStore(tmp_path / "r.h5")
    run = store.run(out["run_id"])
    dev = json.loads(run["dev_metrics"]) if isinstance(run["dev_metrics"], str) else run["dev_metrics"]
    assert 0.5 < dev["accuracy_mean"] <= 1 and dev["folds"] == 10 and "tar_mean" in dev and "accuracy_std" in dev
    assert "no model card" not in run["card_check"] and "synth-fr" in run["card_check"]  # not compared, and says why
    cells = store.read_cells([c["cell_id"] for c in out["cells"]])
    assert {c.config["goal"] for c in cells} == {"dodging", "impersonation"}
    for cell in cells:
        taus = cell.attrs["fold_thresholds"]
        taus = json.loads(taus) if isinstance(taus, str) else list(taus)
        assert taus == pytest.approx(dev["fold_thresholds"])
        # the fold-to-threshold mapping with thresholds that differ: test_goal_items_spread_over_folds_each_at_its_fold_threshold
        # (on this fixture the retrained facenet-baseline's top impostor scores repeat across folds, so its ten
        # thresholds may coincide)
        folds = np.array([fold_of(i) for i in cell.arrays["sample_id"]])
        assert np.bincount(folds).tolist() == [2] * 10
        tau = np.array(taus)[folds]
        accepted = cell.arrays["clean_score"] >= tau - 1e-6
        wants_accept = cell.config["goal"] == "impersonation"
        assert np.array_equal(cell.arrays["clean_correct"], ~accepted if wants_accept else accepted)
        assert "fold's threshold" in cell.attrs["decision_rule"]
    assert "fold" in json.dumps(out["cells"][0]["threshold_rule"])


def test_flip_tta_is_its_own_cells_and_inside_the_attacked_forward(lfw_env, tmp_path, model):
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    flipped = FlipTTA(model).eval()
    with torch.no_grad():
        e = flipped(x)
        expected = torch.nn.functional.normalize(model(x) + model(torch.flip(x, dims=[3])), dim=1)
    assert torch.allclose(e, expected, atol=1e-5) and torch.allclose(flipped(torch.flip(x, dims=[3])), e, atol=1e-5)
    plain = _run(tmp_path, "--protocol", "lfw")
    flip = _run(tmp_path, "--protocol", "lfw", "--flip-tta")
    assert flip["computed"] == len(flip["cells"]) and flip["reused"] == 0  # never the unflipped cells
    assert not {c["cell_id"] for c in plain["cells"]} & {c["cell_id"] for c in flip["cells"]}
    assert all(c.get("flip_tta") is True for c in flip["cells"]) and all("flip_tta" not in c for c in plain["cells"])
    again = _run(tmp_path, "--protocol", "lfw", "--flip-tta")
    assert again["reused"] == len(again["cells"])  # a flipped run reuses flipped cells
    _check_leaderboard(tmp_path)
    # the attacked function is the flipped pipeline: the run state's model and its attack view
    from bench.compute import RunSetup, RunState
    from bench.runconfig import RunConfig

    cfg = RunConfig(model="facenet-baseline", protocol="lfw", samples=4, flip_tta=True, profile="tiny", input_size=64,
                    task="fr")
    state = RunState(RunSetup(cfg, 0.3, (), tuple([0.3] * 10)), CPU)
    assert isinstance(state.loaded.module, FlipTTA)
    prep = state.prepared("dodging")
    assert torch.allclose(prep.attack_task.scores(prep.items.x), prep.items.task.scores(prep.items.x), atol=1e-4)
    mirrored = prep.items.task.scores(torch.flip(prep.items.x, dims=[3]))
    assert torch.allclose(mirrored, prep.clean, atol=1e-4)  # symmetric in the image: the mirror scores the same


def _check_leaderboard(tmp_path):
    """The lfw page pools the folds and shows their spread, and keeps the flipped run beside the plain one."""
    import csv

    out = CliRunner().invoke(main, ["leaderboard", "--store", str(tmp_path / "r.h5"), "--out", str(tmp_path / "lb"),
                                    "--format", "csv", "--no-examples", "--quiet"])
    assert out.exit_code == 0, out.output
    table = next(p for p in (tmp_path / "lb").iterdir() if "fr-verification-lfw" in p.name and "dodging" in p.name)
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 2 and sorted(r.get("flip tta", "") for r in rows) == ["", "True"]
    store = ResultsStore(tmp_path / "r.h5")
    for r in rows:
        run = store.run(r["run id"])
        dev = json.loads(run["dev_metrics"]) if isinstance(run["dev_metrics"], str) else run["dev_metrics"]
        assert float(r["k-fold acc mean"]) == pytest.approx(dev["accuracy_mean"])
        assert float(r["k-fold acc std"]) == pytest.approx(dev["accuracy_std"])
        assert float(r["k-fold TAR mean"]) == pytest.approx(dev["tar_mean"])
        cell = next(c for c in store.read_cells(run["cell_ids"]) if c.config["goal"] == "dodging")
        folds = np.array([fold_of(i) for i in cell.arrays["sample_id"]])
        kept = ~cell.arrays["success"].astype(bool)
        per_fold = [kept[folds == k].mean() for k in range(10)]
        name = "robust @ linf 2/255 per fold"
        assert float(r[f"{name} mean"]) == pytest.approx(np.mean(per_fold))
        assert float(r[f"{name} std"]) == pytest.approx(np.std(per_fold)) and r[f"{name} folds"] == "10"
        assert float(r["robust linf 2/255"]) == pytest.approx(kept.mean())  # pooled over the folds
    from bench.gate import store_metrics

    profiles = {m.profile for m in store_metrics([store]) if m.goal == "dodging" and m.metric == "clean accuracy"}
    assert profiles == {"tiny", "tiny+flip-tta"}  # the CI gate keeps the flipped model apart too


def test_flip_tta_is_for_fr_models(tmp_path):
    out = CliRunner().invoke(main, ["run", "--model", "cdcn", "--flip-tta", "--store", str(tmp_path / "r.h5")])
    assert out.exit_code == 2 and "--flip-tta" in out.output and "fas model" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_bin_protocol_calibrates_and_builds_items_per_fold(tiny_bin, model):
    path, issame = tiny_bin
    p = replace(get_protocol(f"bin:{path}"), far=0.1)  # 18 impostor pairs in nine folds: FAR 1e-3 is out of reach
    pairs = p.pair_folds()
    assert pairs.genuine.tolist() == issame and np.bincount(pairs.folds).tolist() == [4] * 10
    assert pairs.first.tolist() == list(range(0, 80, 2)) and pairs.second.tolist() == list(range(1, 80, 2))
    dev = p.calibrate(model, p.dev_split(64), CPU)
    assert len(dev.operating_point.fold_thresholds) == 10 and dev.as_card()["genuine_pairs"] == 20
    items = p.goal_items("dodging", model, dev.operating_point.fold_thresholds, 10, 0, 64, CPU)
    assert [fold_of(i) for i in items.sample_ids] == list(range(10)) or sorted(fold_of(i) for i in items.sample_ids) == list(range(10))
    assert all(i.split(":")[1] == "g" for i in items.sample_ids)
    k = fold_of(items.sample_ids[0])
    assert float(items.task.threshold[0]) == pytest.approx(dev.operating_point.fold_thresholds[k])


def test_bin_run_end_to_end(tiny_bin, tmp_path, monkeypatch):
    """`bin:` through the runner, at a FAR the tiny file can state (the registered protocol made with far=0.1)."""
    path, _ = tiny_bin
    proto = replace(get_protocol(f"bin:{path}"), name="bin-tiny-test", far=0.1)
    monkeypatch.setitem(PROTOCOLS._entries, proto.name, proto)
    out = _run(tmp_path, "--protocol", proto.name, "--samples", "10")
    cells = ResultsStore(tmp_path / "r.h5").read_cells([c["cell_id"] for c in out["cells"]])
    for cell in cells:
        assert sorted(fold_of(i) for i in cell.arrays["sample_id"]) == list(range(10))


def test_bin_at_the_default_far_says_what_it_needs(tiny_bin, tmp_path):
    path, _ = tiny_bin
    out = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--protocol", f"bin:{path}",
                                    "--store", str(tmp_path / "r.h5"), "--device", "cpu", "--quiet"])
    assert out.exit_code == 2 and "FAR 0.001 needs at least 1000" in out.output, out.output
    assert not (tmp_path / "r.h5").exists()


class _Touch:
    """Unpickled by an ordinary unpickler, this creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_bin_with_a_global_is_refused_by_run_and_nothing_runs(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps(([fx.encoded_face(0), fx.encoded_face(1)], [_Touch(marker)]), protocol=4))
    out = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--protocol", f"bin:{evil}",
                                    "--store", str(tmp_path / "r.h5"), "--device", "cpu", "--quiet"])
    assert out.exit_code == 2 and "refused: the pickle refers to code" in out.output, out.output
    assert len(out.output.strip().splitlines()) == 1 and not marker.exists() and not (tmp_path / "r.h5").exists()


def test_an_unknown_family_member_and_a_missing_file(tmp_path):
    out = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--protocol", "bim:x.bin",
                                    "--store", str(tmp_path / "r.h5")])
    assert out.exit_code == 2 and "unknown protocol 'bim:x.bin'" in out.output
    out = CliRunner().invoke(main, ["run", "--model", "facenet-baseline", "--protocol", f"bin:{tmp_path}/absent.bin",
                                    "--store", str(tmp_path / "r.h5"), "--device", "cpu", "--quiet"])
    assert out.exit_code == 2 and ".bin file not found" in out.output


def test_the_cli_refuses_from_the_listings_before_torch(monkeypatch):
    """What `facebench run` checks from bench/listings.json alone: a family member resolves to its family's entry,
    its task is checked, and --flip-tta is refused for an anti-spoofing model."""
    import bench.listings as listings
    from bench.errors import BadInputError, UnknownNameError
    from bench.runconfig import RunConfig

    data = json.loads(listings.LISTINGS_FILE.read_text())
    assert listings.protocol_entry(data, "bin:/data/agedb_30.bin").name == "bin:PATH"
    assert listings.protocol_entry(data, "lfw").task == "fr"
    with pytest.raises(UnknownNameError, match="unknown protocol 'bim:x'"):
        listings.protocol_entry(data, "bim:x")
    monkeypatch.setattr(listings, "registries_loaded", lambda: False)
    listings.check_run(RunConfig(model="facenet-baseline", protocol="bin:/data/agedb_30.bin", flip_tta=True))
    with pytest.raises(BadInputError, match="protocol 'bin:/x.bin' is for fr models but 'cdcn' is a fas model"):
        listings.check_run(RunConfig(model="cdcn", protocol="bin:/x.bin"))
    with pytest.raises(BadInputError, match="--flip-tta .* 'cdcn' is a fas model"):
        listings.check_run(RunConfig(model="cdcn", flip_tta=True))


@pytest.mark.parametrize("which", ["lfw", "bin"])
def test_datasets_show_counts_pairs_per_fold_and_draws_pairs(which, lfw_env, tiny_bin, tmp_path):
    """`facebench datasets show` on a k-fold protocol (no training split): the genuine and impostor pairs of each
    fold, and a contact sheet of genuine and impostor pairs side by side, labelled with their folds."""
    from PIL import Image

    name = "lfw" if which == "lfw" else f"bin:{tiny_bin[0]}"
    pairs = get_protocol(name).pair_folds()
    sheet = tmp_path / "sheet.png"
    r = CliRunner().invoke(main, ["datasets", "show", name, "--size", "32", "--sheet", str(sheet)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    for fold in range(10):
        in_fold = pairs.folds == fold
        row = next(line.split() for line in lines if line.startswith(f"fold {fold} "))
        assert row[2:] == [str(int((in_fold & pairs.genuine).sum())), str(int((in_fold & ~pairs.genuine).sum()))]
    assert next(line.split() for line in lines if line.startswith("all ")) == \
        ["all", str(int(pairs.genuine.sum())), str(int((~pairs.genuine).sum()))]
    assert Image.open(sheet).size[0] == 4 * 2 * 32  # two pairs a row, each tile at twice the size
