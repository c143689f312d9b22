"""The real-dataset loaders on tiny fixtures in each dataset's official layout, `prepare`, and errors."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import FacebenchGroup
from bench.data.real import DATASETS, DatasetError, list_frames, open_dataset, read_image
from bench.data.real.casia import CasiaFASD
from bench.data.real.celeba import CelebA
from bench.data.real.celeba_spoof import CelebASpoof
from bench.data.real.cli import prepare
from bench.data.real.lfw import LFW
from bench.data.real.msu import MsuMfsd
from bench.data.real.oulu import OuluNPU
from bench.data.real.prepare import prepare_dataset
from bench.data.real.replay import ReplayAttack
from bench.errors import BadInputError, FacebenchError, UnknownNameError
from tests import real_fixtures as fx


def test_registry_knows_every_loader():
    assert DATASETS.names() == [
        "casia-fasd", "celeba", "celeba-spoof", "lfw", "msu-mfsd", "oulu-npu", "replay-attack",
    ]
    with pytest.raises(UnknownNameError, match="oulu-npu"):
        DATASETS.get("oulu")


# --------------------------------------------------------------------------- FR


def test_celeba_partitions_and_identities(tmp_path):
    ds = open_dataset("celeba", fx.write_celeba(tmp_path))
    train, val, test = ds.faces("train"), ds.faces("val"), ds.faces("test")
    assert [r.sample_id for r in train] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert [r.identity for r in train] == ["2880", "2880", "2937"]
    assert [r.identity for r in val] == ["2937", "8692"] and [r.sample_id for r in test] == ["000006.jpg"]
    img = read_image(train[0].path, 16)
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    with pytest.raises(DatasetError, match="partition"):
        ds.faces("validation")


def test_lfw_pairs_folds_and_faces(tmp_path):
    ds = LFW(fx.write_lfw(tmp_path))
    pairs = ds.pairs()
    assert len(pairs) == 8
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.genuine for p in pairs] == [True, True, False, False] * 2
    first, impostor = pairs[0], pairs[2]
    assert first.a.path == tmp_path / "lfw" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    assert first.b.sample_id == "Aaron_Peirsol_0002.jpg" and first.a.identity == first.b.identity
    assert (impostor.a.identity, impostor.b.identity) == ("Aaron_Peirsol", "Zico")
    assert impostor.b.path.exists() and len({p.pair_id for p in pairs}) == 8
    faces = ds.faces()
    assert len(faces) == sum(fx.LFW_PEOPLE.values()) and faces[0].identity == "Aaron_Peirsol"


# --------------------------------------------------------------------------- FAS


def test_oulu_splits_labels_and_meta(tmp_path):
    ds = OuluNPU(fx.write_oulu(tmp_path))
    train = ds.videos("train")
    assert [v.video_id for v in train] == [f"oulu-npu:{n}" for n in fx.OULU_VIDEOS["Train_files"]]
    assert [v.species for v in train] == ["live", "print", "replay", "live", "print"]
    assert [v.live for v in train] == [True, False, False, True, False]
    assert train[1].meta == {"phone": 1, "session": 1, "user": 1, "file": 2, "subtype": "printer1"}
    assert train[3].subject == "2" and train[3].domain == "oulu-npu"
    assert len(ds.videos("dev")) == 2 and ds.videos("test")[3].meta["subtype"] == "display2"


def test_oulu_protocol_lists_and_folds(tmp_path):
    ds = OuluNPU(fx.write_oulu(tmp_path))
    p1 = ds.protocol(1, "test")
    assert [v.frames_dir.name for v in p1] == ["1_3_36_1", "1_3_36_3", "2_3_36_1", "2_3_36_5"]
    assert [v.meta["protocol_label"] for v in p1] == ["+1", "-1", "+1", "-2"]
    assert [v.species for v in ds.protocol(3, "train", fold=1)] == ["live", "print"]
    assert ds.protocol_file(4, "dev", 6).name == "Dev_6.txt"
    with pytest.raises(DatasetError, match="needs a fold"):
        ds.protocol(3, "train")
    with pytest.raises(DatasetError, match="has no folds"):
        ds.protocol(1, "train", fold=2)
    with pytest.raises(DatasetError, match="Protocol_4.*Train_2.txt not found"):
        ds.protocol(4, "train", fold=2)


def test_frames_even_choice_depth_and_boxes(tmp_path):
    ds = OuluNPU(fx.write_oulu(tmp_path))
    live = ds.videos("train")[0]
    frames = list_frames(live, 2)
    assert [f.index for f in frames] == [0, 2]
    assert frames[0].box == (4, 4, 16, 16) and frames[0].depth_path.name == "0000_depth.png"
    assert [f.index for f in list_frames(live, 10)] == [0, 1, 2]
    middle = list_frames(live, 3)[1]
    assert middle.box is None  # no line for frame 1 in boxes.txt
    assert list_frames(ds.videos("train")[1], 1)[0].depth_path is None
    crop = read_image(frames[0].path, 8, frames[0].box)
    full = read_image(frames[0].path, 8)
    assert crop.shape == (8, 8, 3) and not np.array_equal(crop, full)


def test_casia_species_quality_and_subjects(tmp_path):
    ds = CasiaFASD(fx.write_casia(tmp_path))
    train = {v.frames_dir.name: v for v in ds.videos("train")}
    assert len(train) == 12
    assert [n for n, v in train.items() if v.live] == ["1", "2", "HR_1"]
    assert (train["HR_2"].species, train["HR_2"].meta["subtype"], train["HR_2"].meta["quality"]) == ("print", "warped", "high")
    assert (train["6"].meta["subtype"], train["6"].meta["quality"]) == ("cut", "low")
    assert (train["7"].species, train["7"].meta["quality"]) == ("replay", "normal")
    test = ds.videos("test")
    assert {v.subject for v in test} == {"21"} and [v.species for v in test] == ["live", "print", "replay"]


def test_replay_attack_species_from_names(tmp_path):
    ds = ReplayAttack(fx.write_replay(tmp_path))
    train = ds.videos("train")
    assert [v.species for v in train] == ["live", "print", "replay"]
    assert train[1].meta["support"] == "fixed" and train[1].meta["subtype"] == "print_photo"
    assert train[2].meta["support"] == "hand" and train[2].meta["subtype"] == "mobile_video"
    assert train[0].meta["light"] == "controlled" and train[1].meta["light"] == "adverse"
    assert [v.subject for v in ds.videos("dev")] == ["2"] * 3 and ds.videos("test")[0].split == "test"


def test_msu_subject_lists_and_attack_types(tmp_path):
    ds = MsuMfsd(fx.write_msu(tmp_path))
    train, test = ds.videos("train"), ds.videos("test")
    assert {v.subject for v in train} == {"2"} and {v.subject for v in test} == {"36"}
    assert [v.species for v in train] == ["live", "replay", "print"]
    assert train[1].meta == {"camera": "android", "scene": "scene01", "subtype": "ipad_video"}
    assert train[2].meta["camera"] == "laptop"


def test_celeba_spoof_labels_and_pixel_boxes(tmp_path):
    ds = CelebASpoof(fx.write_celeba_spoof(tmp_path))
    train = ds.frames("train")
    assert [f.video.species for f in train] == ["live", "print", "replay"]
    assert [f.video.meta.get("subtype") for f in train] == [None, "poster", "phone"]
    assert train[2].video.meta["illumination"] == "dark" and train[2].video.meta["environment"] == "outdoor"
    assert train[0].video.subject == "10" and len(train[0].video.meta["attributes"]) == 40
    assert train[0].box == (12, 6, 24, 30)  # 224-scale box on a 48x48 image
    test = ds.frames("test", with_boxes=False)
    assert [(f.video.live, f.video.species, f.box) for f in test] == [(True, "live", None), (False, "mask", None)]


# --------------------------------------------------------------------------- prepare


def test_prepare_oulu_videos_end_to_end(tmp_path):
    src, out = fx.write_oulu_videos(tmp_path / "official"), tmp_path / "frames"
    counts = prepare_dataset("oulu-npu", src, out, frames_per_video=3)
    assert counts["videos"] == 4 and counts["frames"] == 12 and counts["failed"] == []
    assert counts["copied_files"] == 3  # the protocol lists
    frames_dir = out / "Train_files" / "1_1_01_2"
    assert sorted(p.name for p in frames_dir.iterdir()) == ["0000.png", "0001.png", "0002.png", "boxes.txt"]
    ds = OuluNPU(out)
    videos = ds.protocol(1, "train")
    assert [v.species for v in videos] == ["live", "print"]
    frames = list_frames(videos[0], 3)
    first, last = (read_image(f.path, 8) for f in (frames[0], frames[-1]))
    assert first.shape == (8, 8, 3) and first.mean() < last.mean()  # first and last frame of the video
    assert counts["boxes"] == 0 and (frames_dir / "boxes.txt").read_text() == ""  # flat frames: no face
    again = prepare_dataset("oulu-npu", src, out, frames_per_video=3)
    assert again["skipped"] == 4 and again["videos"] == 0


def test_prepare_caps_frame_size(tmp_path):
    src = fx.write_oulu_videos(tmp_path / "official")
    prepare_dataset("oulu-npu", src, tmp_path / "small", frames_per_video=1, size=16)
    from PIL import Image

    with Image.open(tmp_path / "small" / "Test_files" / "1_3_36_1" / "0000.png") as img:
        assert img.size == (16, 16)


def test_loader_on_unprepared_video_folder_says_prepare(tmp_path):
    src = fx.write_oulu_videos(tmp_path / "official")
    with pytest.raises(DatasetError, match="1_1_01_1.avi.*datasets prepare"):
        OuluNPU(src).videos("train")


def test_prepare_refusals(tmp_path):
    src = fx.write_oulu_videos(tmp_path / "official")
    with pytest.raises(BadInputError, match="inside --src"):
        prepare_dataset("oulu-npu", src, src / "frames")
    (tmp_path / "afile").write_text("mine\n")
    with pytest.raises(BadInputError, match="afile is a file, not a folder"):
        prepare_dataset("oulu-npu", src, tmp_path / "afile" / "frames")
    assert (tmp_path / "afile").read_text() == "mine\n"
    with pytest.raises(DatasetError, match="not found"):
        prepare_dataset("oulu-npu", tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(UnknownNameError, match="unknown dataset 'oulu-npv'.*oulu-npu"):
        prepare_dataset("oulu-npv", src, tmp_path / "out")
    with pytest.raises(BadInputError, match="no videos"):
        prepare_dataset("lfw", src, tmp_path / "out")
    with pytest.raises(DatasetError, match="Train_files/Train_files not found .expected in the official layout"):
        prepare_dataset("oulu-npu", src / "Train_files", tmp_path / "out")


def test_prepare_command_help_and_one_line_errors(tmp_path):
    group = FacebenchGroup("datasets")
    group.add_command(prepare)
    runner = CliRunner()
    help_text = runner.invoke(group, ["prepare", "--help"]).output
    assert "--src" in help_text and "--frames" in help_text and "boxes.txt" in help_text
    result = runner.invoke(group, ["prepare", "oulu-npu", "--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "nowhere not found" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- errors


def test_missing_required_file_is_named(tmp_path):
    root = fx.write_celeba(tmp_path)
    (root / "identity_CelebA.txt").unlink()
    with pytest.raises(DatasetError, match="identity_CelebA.txt not found"):
        CelebA(root)
    with pytest.raises(DatasetError, match="dataset root not found"):
        LFW(tmp_path / "missing")
    assert issubclass(DatasetError, FacebenchError)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="cannot read image .*broken.jpg"):
        read_image(bad, 16)
    with pytest.raises(DatasetError, match="image not found: .*absent.png"):
        read_image(tmp_path / "absent.png", 16)


@pytest.mark.parametrize(
    "line, message",
    [
        ("Zico\t1", r"LFW pairs.txt line 3: expected 3 or 4 fields, got 2"),
        ("Zico\t1\tAaron_Peirsol\t2", r"LFW pairs.txt line 3: expected a matched pair"),
        ("Zico\tone\t2", r"LFW pairs.txt line 3: expected an integer, got 'one'"),
        ("Zico\t2\t2", r"LFW pairs.txt line 3: a matched pair of one image with itself \(Zico 2\)"),
        ("Zico\t0\t2", r"LFW pairs.txt line 3: image numbers start at 1, got 0"),
    ],
)
def test_malformed_pairs_line_names_file_and_line(tmp_path, line, message):
    root = fx.write_lfw(tmp_path)
    lines = (root / "pairs.txt").read_text().splitlines()
    lines[2] = line
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=message):
        LFW(root).pairs()


def test_pairs_count_must_match_header(tmp_path):
    root = fx.write_lfw(tmp_path)
    (root / "pairs.txt").write_text("10\t300\nZico\t1\t2\n")
    with pytest.raises(DatasetError, match="promises 10 x 2 x 300 = 6000 pairs, found 1"):
        LFW(root).pairs()


def test_lfw_view2_folds_in_file_order(tmp_path):
    pairs = LFW(fx.write_lfw_view2(tmp_path)).pairs(view2=True)
    assert len(pairs) == 6000
    assert [p.fold for p in pairs] == [i // 600 for i in range(6000)]
    assert [p.genuine for p in pairs] == [i % 600 < 300 for i in range(6000)]
    # the fixture names fold f's people P<f>_...: each pair sits in the fold of its lines
    assert all(p.a.identity.startswith(f"P{p.fold}_") and p.b.identity.startswith(f"P{p.fold}_") for p in pairs)
    first, mismatched = pairs[0], pairs[300]
    assert (first.a.identity, first.a.sample_id, first.b.sample_id) == ("P0_000", "P0_000_0001.jpg", "P0_000_0002.jpg")
    assert (mismatched.a.sample_id, mismatched.b.sample_id) == ("P0_000_0001.jpg", "P0_001_0001.jpg")
    assert len({p.pair_id for p in pairs}) == 6000


def test_lfw_view2_requires_its_header(tmp_path):
    root = fx.write_lfw(tmp_path)  # a 2 x 2 list: read as is without view2, refused with it
    assert len(LFW(root).pairs()) == 8
    with pytest.raises(DatasetError, match=r"LFW pairs.txt line 1: View 2's header is '10 300' .*got '2 2'"):
        LFW(root).pairs(view2=True)
    (root / "pairs.txt").write_text("6000\n" + "Zico\t1\t2\n" * 6000)
    with pytest.raises(DatasetError, match="line 1: View 2's header"):
        LFW(root).pairs(view2=True)


@pytest.mark.parametrize(
    "line, fold_line, message",
    [
        ("P3_007\t2\t2", 3 * 600 + 8, r"line 1809: a matched pair of one image with itself \(P3_007 2\)"),
        ("P3_007\t1\tP3_007\t2", 3 * 600 + 300 + 8, r"line 2109: a mismatched pair of one person with themself"),
        ("P3_007\t0\t2", 3 * 600 + 8, r"line 1809: image numbers start at 1, got 0"),
        ("P3_007\t1\tP3_008\t-1", 3 * 600 + 300 + 8, r"line 2109: image numbers start at 1, got -1"),
        ("P3_007\t1\tP3_008\t2", 3 * 600 + 8, r"line 1809: expected a matched pair"),
        ("P3_007\t1\t2", 3 * 600 + 300 + 8, r"line 2109: expected a mismatched pair"),
    ],
)
def test_lfw_view2_malformed_line_is_named(tmp_path, line, fold_line, message):
    root = fx.write_lfw_view2(tmp_path)
    lines = (root / "pairs.txt").read_text().splitlines()
    lines[fold_line] = line  # index i is line i + 1 (line 1 is the header)
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="LFW pairs.txt " + message) as info:
        LFW(root).pairs(view2=True)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "line, message",
    [
        ("+1 1_1_01_1", r"Protocol_1/Train.txt line 2: expected '<label>,<video>'"),
        ("+3,1_1_01_1", r"Protocol_1/Train.txt line 2: label must be \+1, -1 or -2"),
        ("-1,1_1_01_1", r"Protocol_1/Train.txt line 2: label -1 contradicts"),
        ("+1,7_1_01_1", r"Protocol_1/Train.txt line 2: '7_1_01_1' is not an OULU-NPU video name"),
        ("+1,1_2_01_1", r"Protocol_1/Train.txt line 2: video 1_2_01_1 not found"),
    ],
)
def test_malformed_protocol_line_names_file_and_line(tmp_path, line, message):
    root = fx.write_oulu(tmp_path)
    path = root / "Protocols" / "Protocol_1" / "Train.txt"
    lines = path.read_text().splitlines()
    lines[1] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=message):
        OuluNPU(root).protocol(1, "train")


def test_malformed_lists_boxes_and_labels(tmp_path):
    msu = fx.write_msu(tmp_path / "msu")
    (msu / "test_sub_list.txt").write_text("36\nthirty\n")
    with pytest.raises(DatasetError, match="test_sub_list.txt line 2: expected an integer"):
        MsuMfsd(msu).videos("test")
    oulu = fx.write_oulu(tmp_path / "oulu")
    (oulu / "Train_files" / "1_1_01_1" / "boxes.txt").write_text("0 1 2 3\n")
    with pytest.raises(DatasetError, match="boxes.txt line 1: expected 5 fields"):
        list_frames(OuluNPU(oulu).videos("train")[0], 2)
    spoof = fx.write_celeba_spoof(tmp_path / "spoof")
    labels = spoof / "metas" / "intra_test" / "test_label.json"
    table = json.loads(labels.read_text())
    table["Data/test/20/live/000004.jpg"][43] = 1
    labels.write_text(json.dumps(table))
    with pytest.raises(DatasetError, match="test_label.json entry 'Data/test/20/live/000004.jpg'.*disagree"):
        CelebASpoof(spoof).frames("test")
    labels.write_text("{not json")
    with pytest.raises(DatasetError, match="test_label.json line 1: not valid JSON"):
        CelebASpoof(spoof).frames("test")
    casia = fx.write_casia(tmp_path / "casia")
    fx.write_video_dir(casia / "train_release" / "1" / "HR_9")
    with pytest.raises(DatasetError, match="HR_9: unknown CASIA-FASD video name"):
        CasiaFASD(casia).videos("train")
