"""The world on disk: stand-in datasets in official layouts, read back through the real loaders."""
import multiprocessing
import os
import re
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from bench.data.real import list_frames, open_dataset
from bench.data.sets import FASSet
from bench.data.synth import export, in_memory, readback
from bench.data.synth import fas as synth_fas
from bench.data.synth import fr as synth_fr
from bench.data.synth.fas import SynthFASLayout
from bench.data.synth.fr import SynthFRSplits
from bench.data.synth.world import DOMAINS, FAS_DOMAINS
from bench.errors import BadInputError
from bench.protocols import get_protocol

SIZE = 32
TINY_FR = SynthFRSplits(train_ids=range(0, 3), train_per_id=2, dev_ids=range(10, 12), dev_per_id=3,
                        test_ids=range(20, 24), test_per_id=3, test_pairs_per_kind=10)
TINY_FAS = {d: SynthFASLayout(train=2, dev=1, test=2, sessions=2, frames_per_video=2) for d in FAS_DOMAINS}


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A few identities and subjects at 32 px, in a fresh cache folder."""
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synth_fr, "SYNTH_FR", TINY_FR)
    monkeypatch.setattr(synth_fas, "SYNTH_FAS", TINY_FAS)
    return tmp_path / "cache"


def test_cache_location_and_key(tiny, monkeypatch):
    d = export.world_dir(0, SIZE)
    assert d.parent == tiny and d.name.startswith("world-v1-seed0-32px-")
    assert export.world_dir(1, SIZE) != d and export.world_dir(0, 64) != d
    for domain in FAS_DOMAINS:  # every domain's whole layout is part of the key
        for change in ({"test": 3}, {"sessions": 1}, {"frames_per_video": 3}):
            monkeypatch.setattr(synth_fas, "SYNTH_FAS", {**TINY_FAS, domain: replace(TINY_FAS[domain], **change)})
            assert export.world_dir(0, SIZE) != d, (domain, change)
    monkeypatch.setattr(synth_fas, "SYNTH_FAS", TINY_FAS)
    assert export.world_dir(0, SIZE) == d
    monkeypatch.setattr(export, "LAYOUT_VERSION", export.LAYOUT_VERSION + 1)
    assert export.world_dir(0, SIZE) != d
    monkeypatch.delenv("FACEBENCH_CACHE")
    assert export.cache_root().parts[-2:] == (".cache", "facebench")


def _assert_same(a, b, fields):
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), f
        else:
            assert x == y, f


def test_fr_read_through_loaders_equals_rendering(tiny):
    _assert_same(readback.synth_fr_train(SIZE), in_memory.render_synth_fr_train(SIZE), ("images", "identities", "sample_ids"))
    _assert_same(readback.synth_fr_dev(SIZE), in_memory.render_synth_fr_dev(SIZE), ("images", "identities", "sample_ids"))
    p = get_protocol("synth-fr")
    for kind in ("genuine", "impostor"):
        for n, seed in ((None, 0), (4, 0), (4, 1), (0, 0)):
            _assert_same(p.test_pairs(kind, n, seed, SIZE), in_memory.render_synth_fr_pairs(kind, n, seed, SIZE),
                         ("probes", "references", "genuine", "pair_ids"))


def test_fr_stand_ins_in_official_layout(tiny):
    celeba = open_dataset("celeba", export.ensure("celeba", SIZE))
    assert {int(r.identity) for r in celeba.faces("train")} == set(TINY_FR.train_ids)
    assert {int(r.identity) for r in celeba.faces("val")} == set(TINY_FR.dev_ids)
    assert celeba.faces("train")[0].path.name == "000001.png"
    lfw = open_dataset("lfw", export.ensure("lfw", SIZE))
    pairs = lfw.pairs()
    assert [p.fold for p in pairs] == [f for f in range(10) for _ in range(2)]  # 10 folds of 1 + 1 pairs
    assert [(int(p.a.identity[6:]), int(p.a.sample_id[-8:-4]) - 1, int(p.b.identity[6:]), int(p.b.sample_id[-8:-4]) - 1)
            for p in pairs if p.genuine] == synth_fr.pair_list("genuine", 0)
    assert all(p.a.path.exists() and p.b.path.exists() for p in pairs)
    assert len(lfw.faces()) == len({(p.a.path) for p in pairs} | {p.b.path for p in pairs})


def test_fas_read_through_loaders_equals_rendering(tiny):
    fields = [f for f in FASSet.__dataclass_fields__]
    for domain in FAS_DOMAINS:
        for split in ("train", "dev", "test"):
            _assert_same(readback.domain_split(domain, split, SIZE), in_memory.render_domain_split(domain, split, SIZE), fields)


def test_loaders_parse_the_synthetic_labels(tiny):
    """Each dataset's own loader gives back live / species / subject / split / sub-type of every video."""
    for domain in FAS_DOMAINS:
        layout = export.FAS_LAYOUTS[domain]
        root = export.ensure(layout.dataset, SIZE)
        labels = readback.read_labels(root)
        expected = {}  # (subject, video) -> (medium, split) as the world defines them
        for split in ("train", "dev", "test"):
            for subject, video, _, medium in synth_fas.split_frames(domain, split):
                expected[subject, video] = (medium, split)
        seen = set()
        for split in ("train", "dev", "test"):
            for video in layout.videos(root, split):
                subject = synth_fas.subject_ids(domain, "train").start + layout.subject_index(video)
                frames = list_frames(video, 100)
                assert len(frames) == TINY_FAS[domain].frames_per_video
                rows = [labels[f.path.relative_to(root).as_posix()] for f in frames]
                v = int(rows[0]["video"])
                medium, true_split = expected[subject, v]
                if true_split != split and not (domain in ("casia", "msu") and split != "test" and true_split != "test"):
                    pytest.fail(f"{video.video_id} in {split}, expected {true_split}")
                assert video.live == (medium == "live") and layout.subtype(video) == medium
                assert video.species == ("live" if medium == "live" else medium.split("-")[0])
                assert all(int(r["subject"]) == subject and r["subtype"] == medium for r in rows)
                assert all(f.depth_path is not None and f.path.with_name(f"{f.path.stem}_reflection.png").exists() for f in frames)
                seen.add((subject, v))
        assert seen == set(expected), domain
        per_subject = TINY_FAS[domain].sessions * (1 + len(DOMAINS[domain].media))
        assert len(seen) == TINY_FAS[domain].subjects * per_subject
        if domain == "oulu":
            assert len(open_dataset("oulu-npu", root).protocol(1, "dev")) == TINY_FAS[domain].dev * per_subject


def test_official_subtype_codes(tiny):
    """Every (session, medium) of a subject has its official name: sessions are phones / sessions
    (OULU), qualities (CASIA), attack supports and takes (Replay), cameras (MSU)."""
    oulu = open_dataset("oulu-npu", export.ensure("oulu-npu", SIZE))
    assert sorted({v.meta["file"] for v in oulu.videos("train")}) == [1, 2, 3, 4, 5]
    assert {(v.meta["phone"], v.meta["session"], v.meta["file"]) for v in oulu.videos("train") if v.subject == "1"} == {
        (1, s, f) for s in (1, 2) for f in (1, 2, 3, 4, 5)}
    casia = open_dataset("casia-fasd", export.ensure("casia-fasd", SIZE))
    assert sorted({v.meta["video"] for v in casia.videos("test")}) == ["1", "2", "3", "4", "5", "6", "7", "8"]
    replay = open_dataset("replay-attack", export.ensure("replay-attack", SIZE))
    names = {v.frames_dir.name.split("_client")[0] for v in replay.videos("devel") if not v.live}
    assert names == {"attack_print", "attack_mobile", "attack_highdef"}
    for split in ("train", "devel", "test"):
        videos = replay.videos(split)
        for client in {v.subject for v in videos}:
            attacks = [v for v in videos if v.subject == client and not v.live]
            assert sorted(v.meta["support"] for v in attacks) == ["fixed"] * 3 + ["hand"] * 3
            assert sorted(v.meta["take"] for v in videos if v.subject == client and v.live) == [1, 2]
    msu = open_dataset("msu-mfsd", export.ensure("msu-mfsd", SIZE))
    assert {v.meta.get("subtype") for v in msu.videos("test")} == {None, "printed_photo", "ipad_video", "iphone_video"}
    assert sorted((v.meta["camera"], v.meta.get("subtype", "live")) for v in msu.videos("train") if v.subject == "1") == sorted(
        (c, s) for c in ("android", "laptop") for s in ("live", "printed_photo", "ipad_video", "iphone_video"))


def test_three_sessions_round_trip(tiny, monkeypatch):
    """OULU and CASIA hold three sessions per subject (CASIA: all of its qualities, `HR_*` included)."""
    three = {d: replace(TINY_FAS[d], sessions=3) for d in ("oulu", "casia")}
    monkeypatch.setattr(synth_fas, "SYNTH_FAS", {**TINY_FAS, **three})
    fields = [f for f in FASSet.__dataclass_fields__]
    for domain in three:
        for split in ("train", "dev", "test"):
            read = readback.domain_split(domain, split, SIZE)
            _assert_same(read, in_memory.render_domain_split(domain, split, SIZE), fields)
            assert len(set(read.video_ids)) == len(synth_fas.subject_ids(domain, split)) * 3 * (1 + len(DOMAINS[domain].media))
    casia = open_dataset("casia-fasd", export.ensure("casia-fasd", SIZE))
    assert {v.meta["video"] for v in casia.videos("train")} == {f"{n}" for n in range(1, 9)} | {f"HR_{n}" for n in range(1, 5)}
    oulu = open_dataset("oulu-npu", export.ensure("oulu-npu", SIZE))
    assert {(v.meta["phone"], v.meta["session"]) for v in oulu.videos("test")} == {(1, 1), (1, 2), (1, 3)}


@pytest.mark.parametrize("domain, change, message", [
    ("oulu", {"sessions": 19}, "at most 18 sessions per subject"),
    ("oulu", {"test": 97}, "at most 99 subjects"),
    ("casia", {"sessions": 4}, "at most 3 sessions per subject"),
    ("casia", {"dev": 19}, "at most 20 train \\+ dev subjects"),
    ("replay", {"sessions": 3}, "at most 2 sessions per subject"),
    ("msu", {"sessions": 3}, "at most 2 sessions per subject"),
    ("msu", {"test": 997}, "at most 999 subjects"),
])
def test_layout_too_large_for_the_official_names(tiny, monkeypatch, domain, change, message):
    """Raised before anything is rendered, and nothing is left in the cache."""
    monkeypatch.setattr(synth_fas, "SYNTH_FAS", {**TINY_FAS, domain: replace(TINY_FAS[domain], **change)})

    def fail(*args, **kwargs):
        raise AssertionError("rendered before checking the layout")

    monkeypatch.setattr(synth_fas.FaceWorld, "render_fas", fail)
    dataset = export.FAS_DATASET[domain]
    with pytest.raises(ValueError, match=message) as err:
        export.ensure(dataset, SIZE)
    assert f"SYNTH_FAS[{domain!r}]" in str(err.value)
    parent = export.world_dir(0, SIZE)
    assert not (parent / dataset).exists() and not list(parent.glob(f".{dataset}.tmp-*"))


def test_second_ensure_reuses_the_build(tiny, monkeypatch):
    root = export.ensure("casia-fasd", SIZE)
    stamp = (root / export.LABELS_FILE).stat().st_mtime_ns
    first = readback.domain_split("casia", "train", SIZE)

    def fail(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(synth_fas.FaceWorld, "render_fas", fail)
    assert export.ensure("casia-fasd", SIZE) == root
    assert (root / export.LABELS_FILE).stat().st_mtime_ns == stamp
    assert readback.domain_split("casia", "train", SIZE) is first  # cached per process


def test_leftover_of_a_killed_build_is_cleaned(tiny):
    parent = export.world_dir(0, SIZE)
    leftover = parent / ".msu-mfsd.tmp-killed"
    (leftover / "scene01").mkdir(parents=True)
    root = export.ensure("msu-mfsd", SIZE)
    assert root == parent / "msu-mfsd" and (root / export.LABELS_FILE).exists()
    assert not leftover.exists() and not list(parent.glob(".*.tmp-*"))


def test_stand_in_modes_follow_the_umask(tiny):
    """A stand-in is readable by whoever the umask lets read (a cache shared between accounts): its folders and
    files get the modes `mkdir` and `open` give, not a private temporary folder's 0700."""
    old = os.umask(0o027)
    try:
        root = export.ensure("msu-mfsd", SIZE)
    finally:
        os.umask(old)
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(folders) > 1 and files
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {oct(0o750)}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}


def test_failed_build_leaves_nothing(tiny, monkeypatch):
    def broken(root, size, seed):
        (root / "half").write_text("x")
        raise RuntimeError("killed")

    monkeypatch.setitem(export.WRITERS, "lfw", broken)
    with pytest.raises(RuntimeError):
        export.ensure("lfw", SIZE)
    parent = export.world_dir(0, SIZE)
    assert not (parent / "lfw").exists() and not list(parent.glob(".lfw.tmp-*"))


def test_concurrent_ensure_builds_once(tiny, monkeypatch):
    calls = []
    real = export.WRITERS["celeba"]

    def slow(root, size, seed):
        calls.append(1)
        time.sleep(0.3)
        real(root, size, seed)

    monkeypatch.setitem(export.WRITERS, "celeba", slow)
    out = []
    threads = [threading.Thread(target=lambda: out.append(export.ensure("celeba", SIZE))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 2 and out[0] == out[1] and out[0].is_dir()


@pytest.mark.parametrize("dataset", ["celeba", "oulu-npu"])
def test_stand_in_written_by_several_processes_is_the_one_written_by_one(tiny, monkeypatch, dataset):
    """Chunks small enough for two rendering processes: the files they write are the ones one process writes with the
    same chunks. (A FAS frame rendered in another batch can differ at rounding level, `FaceWorld.render_fas` working
    in batches, so the writers keep the chunks of `in_memory`, which tests above compare with what is read back.)"""
    monkeypatch.setattr(synth_fr, "FACE_CHUNK", 4)
    monkeypatch.setattr(synth_fas, "FRAME_CHUNK", 4)
    pools = []

    class Recorded(export.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(export, "ProcessPoolExecutor", Recorded)
    digests = []
    for jobs in ("1", "2"):
        monkeypatch.setenv("FACEBENCH_CACHE", str(tiny / f"jobs-{jobs}"))
        monkeypatch.setenv(export.RENDER_JOBS_ENV, jobs)
        digests.append(export.tree_digest(export.ensure(dataset, SIZE)))
    assert pools == [2]  # one process, then two
    assert digests[0] == digests[1]


UNGUARDED_SCRIPT = f"""\
from bench.data.synth import export
from bench.data.synth import fr as synth_fr
from bench.data.synth.fr import SynthFRSplits

synth_fr.SYNTH_FR = {TINY_FR!r}
synth_fr.FACE_CHUNK = 2
pools = []


class Recorded(export.ProcessPoolExecutor):
    def __init__(self, *args, **kwargs):
        pools.append(kwargs["max_workers"])
        super().__init__(*args, **kwargs)


export.ProcessPoolExecutor = Recorded
root = export.ensure("celeba", {SIZE})
print("pools", pools, "faces", len(list((root / "img_align_celeba").iterdir())), flush=True)
"""


def test_a_script_without_a_main_guard_renders_on_several_processes(tmp_path):
    """A user's script that calls facebench at its top level, not under `if __name__ == "__main__":`, renders a
    stand-in on two processes and ends: the spawned processes do not re-run it (they would wait for ever on the
    render lock the script holds)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    env = {**os.environ, "FACEBENCH_CACHE": str(tmp_path / "cache"), export.RENDER_JOBS_ENV: "2"}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the script did not end in 120 s (its rendering processes re-ran it?):\n{out[-2000:]}")
    assert proc.returncode == 0, out[-2000:]
    assert "pools [2] faces 12" in out, out[-2000:]


def test_render_jobs_from_the_environment_else_the_cores(monkeypatch):
    monkeypatch.setenv(export.RENDER_JOBS_ENV, "3")
    assert export.render_jobs() == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv(export.RENDER_JOBS_ENV, bad)
        with pytest.raises(BadInputError, match=f"{export.RENDER_JOBS_ENV}='{re.escape(bad)}'"):
            export.render_jobs()
    monkeypatch.delenv(export.RENDER_JOBS_ENV)
    assert 1 <= export.render_jobs() <= export.MAX_RENDER_JOBS
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)  # may not start processes
    assert export.render_jobs() == 1


def test_chunks_run_here_unless_every_process_gets_two(monkeypatch):
    monkeypatch.setenv(export.RENDER_JOBS_ENV, "2")
    here = os.getpid()
    assert set(export._map_chunks(os.getpid, [()] * 3)) == {here}  # fewer than two per process
    pids = list(export._map_chunks(os.getpid, [()] * 4))
    assert len(pids) == 4 and here not in pids
    with pytest.raises(ProcessLookupError):  # a task failing in a rendering process fails here, with its own error
        list(export._map_chunks(os.getpgid, [(-5,)] * 4))


def test_cache_key_follows_the_rendering_code(monkeypatch):
    from bench.data.synth import export

    before = export.content_key(0, 32)
    export.renderer_fingerprint.cache_clear()
    monkeypatch.setattr(export, "RENDER_SOURCES", export.RENDER_SOURCES[:-1])  # as if the code changed
    try:
        assert export.content_key(0, 32) != before
    finally:
        monkeypatch.undo()
        export.renderer_fingerprint.cache_clear()
    assert export.content_key(0, 32) == before


def test_content_fingerprint_follows_the_files_not_the_code(tiny, monkeypatch):
    """Each stand-in's content hash is written with it; a cache written before it gets one on first use; it
    changes with a file's bytes or name, and a protocol's data fingerprint combines the stand-ins it reads."""
    root = export.ensure("msu-mfsd", SIZE)
    stamp = root / export.CONTENT_FILE
    written = stamp.read_text().strip()
    assert written == export.tree_digest(root) == export.content_fingerprint("msu-mfsd", SIZE)
    stamp.unlink()  # a cache from before the content file: computed, then kept
    assert export.content_fingerprint("msu-mfsd", SIZE) == written and stamp.read_text().strip() == written
    frame = sorted(p for p in root.rglob("*.png"))[0]
    data = frame.read_bytes()
    frame.write_bytes(data + b"\0")
    assert export.tree_digest(root) != written
    frame.write_bytes(data)
    frame.rename(frame.with_name("x" + frame.name))
    assert export.tree_digest(root) != written
    frame.with_name("x" + frame.name).rename(frame)
    assert export.tree_digest(root) == written
    # the code is not the data: another cache key (as after an edit of the rendering code) with the same files
    fas = get_protocol("synth-msu").data_fingerprint(SIZE)
    assert fas == export.combined_fingerprint(("msu-mfsd",), SIZE)
    monkeypatch.setattr(export, "renderer_fingerprint", lambda: "edited")
    assert export.world_dir(0, SIZE) != root.parent
    assert get_protocol("synth-msu").data_fingerprint(SIZE) == fas  # rendered again into the new folder: same files
    assert get_protocol("synth-fr").data_fingerprint(SIZE) != fas
    assert get_protocol("synth-ocim->m").data_fingerprint(SIZE) == export.combined_fingerprint(
        ("casia-fasd", "msu-mfsd", "oulu-npu", "replay-attack"), SIZE)
