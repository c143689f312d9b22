"""The embedded world on disk, in the official layouts of the real datasets it stands in for.

`ensure("oulu-npu", size)` renders the OULU-NPU stand-in once into a versioned cache folder laid
out like the real dataset after `facebench datasets prepare`; the synthetic protocols then read
their data back through the real loaders (`bench.data.synth.readback`), so the default path exercises
them. What the official layouts have no place for (illumination, the synthetic sub-type, reflection
maps, sample numbers) goes into `facebench_labels.csv` and `NNNN_reflection.png`.
See docs/datasets.md, "On disk", for the layouts and the label mapping.
"""
from __future__ import annotations

import ast
import contextlib
import csv
import fcntl
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, ClassVar, Iterator, Optional, TypeVar

import numpy as np
from PIL import Image
from bench.progress import bar as progress_bar

from bench.data.real.casia import TEST_SUBJECT_OFFSET, CasiaFASD
from bench.data.real.common import DatasetError, VideoRecord
from bench.data.real.msu import MsuMfsd
from bench.data.real.oulu import OuluNPU
from bench.data.real.replay import ReplayAttack
from bench.data.synth import fas as synth_fas
from bench.data.synth import fr as synth_fr
from bench.data.synth.media import SUBTYPES
from bench.data.synth.world import ILLUMINATION, WORLD_VERSION
from bench.errors import BadInputError, UnknownNameError

T = TypeVar("T")

LAYOUT_VERSION = 2
"""Version of the on-disk layouts and label mapping below; part of the cache key."""

LABELS_FILE = "facebench_labels.csv"
FAS_DATASET = {"oulu": "oulu-npu", "casia": "casia-fasd", "replay": "replay-attack", "msu": "msu-mfsd"}
"""FAS capture domain of the world -> the real dataset it stands in for."""
SPLITS = ("train", "dev", "test")
FAS_COLUMNS = ("path", "live", "species", "subtype", "illumination", "subject", "video", "frame")
FR_COLUMNS = ("path", "identity", "sample")


# --------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """`$FACEBENCH_CACHE` if set, else `~/.cache/facebench`."""
    env = os.environ.get("FACEBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facebench"


RENDER_SOURCES = ("world.py", "media.py", "raster.py", "fr.py", "fas.py", "export.py")
"""The modules (of this folder) whose code decides the pixels and labels written: a code edit to any of
them starts a new cache; docstrings and comments do not. Protocols and readers are not among them."""


def render_source_paths() -> list[Path]:
    """The files of `RENDER_SOURCES`."""
    here = Path(__file__).parent
    return [here / name for name in RENDER_SOURCES]


def source_fingerprint(text: str) -> str:
    """A hash of a module's code: its syntax tree without docstrings (comments and layout never reach it).

    Every statement that is a bare string (module, class and function docstrings, and the strings
    documenting an attribute) is dropped: it does nothing when the module runs.
    """
    tree = ast.parse(text)
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list):
                setattr(node, name, [s for s in block if not _is_bare_string(s)])
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def _is_bare_string(statement: ast.AST) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


@lru_cache(maxsize=1)
def renderer_fingerprint() -> str:
    """The code of `RENDER_SOURCES` as one hash (see `source_fingerprint`)."""
    h = hashlib.sha256()
    for path in render_source_paths():
        h.update(source_fingerprint(path.read_text(encoding="utf-8")).encode())
    return h.hexdigest()


def content_key(seed: int = 0, size: int = 64) -> str:
    """A short hash of everything that changes what is written, the rendering code included."""
    text = repr((LAYOUT_VERSION, WORLD_VERSION, renderer_fingerprint(), repr(synth_fr.SYNTH_FR),
                 repr(synth_fas.SYNTH_FAS), seed, size))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


EXPORT_RECORD = "facebench_export.json"
CONTENT_FILE = "facebench_content.sha256"
"""Beside a written stand-in: the hash of its files (`tree_digest`), which `content_fingerprint` reads."""


def tree_digest(root: Path) -> str:
    """A hash of the files under `root`: each one's path (relative, sorted) and bytes; the export record and the
    content file itself aside (they describe the data, they are not part of it)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in (EXPORT_RECORD, CONTENT_FILE):
            continue
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def content_fingerprint(dataset: str, size: int = 64, seed: int = 0) -> str:
    """The hash of what stand-in `dataset` holds (`tree_digest`), rendered first if absent: part of the id of every
    cell computed on it (`bench.protocols.base.Protocol.data_fingerprint`).

    Unlike the cache key (`content_key`), it follows the pixels and labels, not the code: an edit to the
    rendering code that leaves every file as it was leaves it, and so every stored cell, as it was. Written when
    the stand-in is; a cache written before that gets it on first use (atomically, so readers racing agree)."""
    root = ensure(dataset, size, seed)
    stamp = root / CONTENT_FILE
    try:
        return stamp.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    digest = tree_digest(root)
    tmp = stamp.with_name(f".{CONTENT_FILE}.{os.getpid()}")
    tmp.write_text(digest + "\n", encoding="utf-8")
    os.replace(tmp, stamp)
    return digest


def combined_fingerprint(datasets: tuple[str, ...], size: int = 64, seed: int = 0) -> str:
    """One hash of the stand-ins a protocol reads (`content_fingerprint` of each, in the order given)."""
    h = hashlib.sha256()
    for name in datasets:
        h.update(f"{name}:{content_fingerprint(name, size, seed)}\n".encode())
    return h.hexdigest()[:16]


def world_dir(seed: int = 0, size: int = 64) -> Path:
    """The cache folder of one world (seed, image size, protocol layouts); one subfolder per dataset."""
    return cache_root() / f"world-v{WORLD_VERSION}-seed{seed}-{size}px-{content_key(seed, size)}"


def ensure(dataset: str, size: int = 64, seed: int = 0) -> Path:
    """The root of stand-in `dataset` in the cache, rendered and written first if absent.

    Written into a temporary sibling folder and renamed into place, under a lock file: a second
    process waits and reuses the result; leftovers of a killed build are removed.
    """
    if dataset not in WRITERS:
        raise UnknownNameError(f"unknown stand-in dataset {dataset!r} (known: {', '.join(WRITERS)})")
    parent = world_dir(seed, size)
    final = parent / dataset
    if final.is_dir():
        return final
    parent.mkdir(parents=True, exist_ok=True)
    with open(parent / f".{dataset}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():  # built by another process while we waited
            return final
        for stale in parent.glob(f".{dataset}.tmp-*"):  # only the lock holder writes: these are dead builds
            shutil.rmtree(stale, ignore_errors=True)
        # not `tempfile.mkdtemp`: its folder is private (0700), and the stand-in is this folder renamed, so a cache
        # shared between accounts (docs/scaling.md) would be unreadable to all but its writer; `mkdir` follows the umask
        tmp = parent / f".{dataset}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            WRITERS[dataset](tmp, size, seed)
            (tmp / EXPORT_RECORD).write_text(json.dumps({
                "dataset": dataset, "world_version": WORLD_VERSION, "layout_version": LAYOUT_VERSION,
                "seed": seed, "size": size, "synth_fr": repr(synth_fr.SYNTH_FR), "synth_fas": repr(synth_fas.SYNTH_FAS),
            }, indent=1))
            (tmp / CONTENT_FILE).write_text(tree_digest(tmp) + "\n")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _progress(dataset: str, size: int, total: int):
    return progress_bar(total=total, desc=f"facebench: rendering {dataset} stand-in ({size}px)", unit="img",
                leave=False)


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, compress_level=1)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# --------------------------------------------------------------------------- FR: CelebA and LFW


def _write_celeba(root: Path, size: int, seed: int) -> None:
    """Train identities as partition 0, dev identities as partition 1; `000001.png` ... in that order.

    The faces are rendered and written a chunk at a time (`synth_fr.face_chunks`), by `render_jobs()` processes
    when there are enough chunks: each chunk's images are the same whichever process renders them."""
    fr = synth_fr.SYNTH_FR
    parts = [(0, fr.train_ids, fr.train_per_id), (1, fr.dev_ids, fr.dev_per_id)]
    identity_lines, partition_lines, rows, chunks = [], [], [], []
    for code, ids, per_id in parts:
        for identities, samples in synth_fr.face_chunks(ids, per_id):
            chunks.append((identities, samples))
            for identity, sample in zip(identities, samples):
                name = f"{len(rows) + 1:06d}.png"
                identity_lines.append(f"{name} {identity}")
                partition_lines.append(f"{name} {code}")
                rows.append((f"img_align_celeba/{name}", int(identity), int(sample)))
    (root / "img_align_celeba").mkdir()
    with _progress("celeba", size, len(rows)) as bar:
        for written in write_celeba_faces(root, size, seed, chunks):
            bar.update(written)
    _write_lines(root / "identity_CelebA.txt", identity_lines)
    _write_lines(root / "list_eval_partition.txt", partition_lines)
    _write_csv(root / LABELS_FILE, FR_COLUMNS, rows)


def write_celeba_faces(root: Path, size: int, seed: int, chunks: list[tuple[np.ndarray, np.ndarray]]) -> Iterator[int]:
    """Render `chunks` (`synth_fr.face_chunks`'s `(identities, samples)`, in file order) and write them into
    `root/img_align_celeba` as `000001.png`, `000002.png`, ...; yields each chunk's number of faces as it is written
    (in no set order), by `render_jobs()` processes when there are enough chunks (`_map_chunks`)."""
    tasks, first = [], 0
    for identities, samples in chunks:
        tasks.append((root, size, seed, first, identities, samples))
        first += len(identities)
    return _map_chunks(_write_celeba_chunk, tasks)


def _write_celeba_chunk(root: Path, size: int, seed: int, first: int, identities: np.ndarray,
                        samples: np.ndarray) -> int:
    """Render one chunk of CelebA faces and write them as `first + 1`, `first + 2`, ... (`write_celeba_faces`)."""
    images = synth_fr.render_faces(identities, samples, size, seed)
    for k, image in enumerate(images):
        _png(root / "img_align_celeba" / f"{first + k + 1:06d}.png", image)
    return len(images)


RENDER_JOBS_ENV = "FACEBENCH_RENDER_JOBS"
MAX_RENDER_JOBS = 8


def render_jobs() -> int:
    """How many processes render a large stand-in: `$FACEBENCH_RENDER_JOBS` if set, else the cores this process may
    run on (at most `MAX_RENDER_JOBS`); 1 inside a daemonic process, which may not start any."""
    env = os.environ.get(RENDER_JOBS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise BadInputError(f"{RENDER_JOBS_ENV}={env!r}: expected a whole number of processes, at least 1")
        jobs = int(env)
    else:
        jobs = min(MAX_RENDER_JOBS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return 1 if multiprocessing.current_process().daemon else jobs


def _map_chunks(work: Callable[..., T], tasks: list[tuple]) -> Iterator[T]:
    """`work(*task)` for every task, each result yielded as it comes (in no set order): in this process, or in
    `render_jobs()` fresh processes when there are at least two tasks per process (starting one costs about a
    second). Fresh (spawned) processes see the modules as they are on disk, not as this process may have patched
    them: every task carries what it renders."""
    jobs = min(render_jobs(), len(tasks) // 2)
    if jobs < 2:
        for task in tasks:
            yield work(*task)
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        with _main_left_behind():  # the processes are spawned by `submit`, in this thread
            futures = [pool.submit(work, *task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


@contextlib.contextmanager
def _main_left_behind():
    """While processes are spawned: `__main__` replaced by an empty module.

    A spawned process first imports the parent's `__main__` from its file (as `__mp_main__`), which re-runs a
    script's top-level code unless it sits under `if __name__ == "__main__":`. A script that calls facebench
    without that guard would then, in each new process, ask for the stand-in this process is writing and wait
    for ever on its lock. The rendering processes need nothing from `__main__` (they run functions of this module,
    and every task carries what it renders), so they are started without it."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is None:
            del sys.modules["__main__"]
        else:
            sys.modules["__main__"] = main


def lfw_name(identity: int) -> str:
    """The LFW person name of a synthetic identity."""
    return f"Synth_{identity}"


def _write_lfw(root: Path, size: int, seed: int) -> None:
    """The synth-fr test pairs as a 10-fold `pairs.txt` and the images they use (sample s -> `_000{s+1}`)."""
    pairs = {kind: synth_fr.pair_list(kind, seed) for kind in ("genuine", "impostor")}
    per_kind = len(pairs["genuine"])
    sets = 10 if per_kind % 10 == 0 else 1  # else one set, with the one-number header of pairsDevTrain.txt
    k = per_kind // sets
    lines = [f"{sets}\t{k}" if sets > 1 else f"{k}"]
    for s in range(sets):
        for a, sa, _, sb in pairs["genuine"][s * k : (s + 1) * k]:
            lines.append(f"{lfw_name(a)}\t{sa + 1}\t{sb + 1}")
        for a, sa, b, sb in pairs["impostor"][s * k : (s + 1) * k]:
            lines.append(f"{lfw_name(a)}\t{sa + 1}\t{lfw_name(b)}\t{sb + 1}")
    used = sorted({(p[0], p[1]) for ps in pairs.values() for p in ps} | {(p[2], p[3]) for ps in pairs.values() for p in ps})
    world = synth_fr.cached_world(seed, size)
    rows = []
    (root / "lfw").mkdir()
    with _progress("lfw", size, len(used)) as bar:
        for start in range(0, len(used), 256):
            keys = used[start : start + 256]
            images = world.render([i for i, _ in keys], [s for _, s in keys]).images
            for (identity, sample), image in zip(keys, images):
                rel = f"lfw/{lfw_name(identity)}/{lfw_name(identity)}_{sample + 1:04d}.png"
                _png(root / rel, image)
                rows.append((rel, identity, sample))
            bar.update(len(keys))
    _write_lines(root / "pairs.txt", lines)
    _write_csv(root / LABELS_FILE, FR_COLUMNS, rows)


# --------------------------------------------------------------------------- FAS: four video datasets


def _light(illumination: int) -> str:
    """Replay-Attack light of a video: normal / strong light -> controlled, back light / dark -> adverse."""
    return "controlled" if ILLUMINATION[illumination] in ("normal", "strong") else "adverse"


@dataclass(frozen=True)
class FASLayout:
    """How one capture domain's videos are named in its real dataset, and read back.

    `official` maps each synthetic spoof sub-type to the sub-type label the loader puts in
    `VideoRecord.meta["subtype"]`; `video_dir` names the frame folder (relative to the root) of a
    subject's video of one capture session and medium. `check` raises a `ValueError` naming the
    limit when the domain's layout (`synth_fas.SYNTH_FAS[domain]`) does not fit the official names.
    """

    domain: str
    official: dict

    title: ClassVar[str] = ""  # the dataset's name in messages
    max_sessions: ClassVar[int] = 1
    sessions_are: ClassVar[str] = ""  # what the sessions are in the official layout (for the message)
    max_subjects: ClassVar[Optional[int]] = None  # None: no limit
    subjects_are: ClassVar[str] = ""

    @property
    def dataset(self) -> str:
        return FAS_DATASET[self.domain]

    def check(self) -> None:
        fas = synth_fas.layout(self.domain)
        where = f"synth_fas.SYNTH_FAS[{self.domain!r}]"
        if fas.sessions > self.max_sessions:
            raise ValueError(f"the {self.title} stand-in holds at most {self.max_sessions} sessions per subject "
                             f"({self.sessions_are}); {where} has sessions={fas.sessions}")
        if self.max_subjects is not None and fas.subjects > self.max_subjects:
            raise ValueError(f"the {self.title} stand-in holds at most {self.max_subjects} subjects "
                             f"({self.subjects_are}); {where} has {fas.subjects} (train + dev + test)")

    def video_dir(self, split: str, index: int, session: int, medium: str, illumination: int) -> str:
        raise NotImplementedError

    def write_lists(self, root: Path, videos: dict[str, list[tuple[str, str]]]) -> None:
        """Official list files; `videos[split]` is [(video dir, medium)] in write order."""

    def videos(self, root: Path, split: str) -> list[VideoRecord]:
        raise NotImplementedError

    def subject_index(self, video: VideoRecord) -> int:
        """0-based index of the video's subject within the domain (official numbers are 1-based)."""
        return int(video.subject) - 1

    def subtype(self, video: VideoRecord) -> str:
        if video.live:
            return "live"
        back = {v: k for k, v in self.official.items()}
        if video.meta.get("subtype") not in back:
            raise DatasetError(f"{video.frames_dir}: sub-type {video.meta.get('subtype')!r} is not one the "
                               f"{self.domain} stand-in writes ({', '.join(back)})")
        return back[video.meta["subtype"]]


class OuluLayout(FASLayout):
    """`{Train,Dev,Test}_files/Phone_Session_User_File`; user = index + 1; capture session s -> phone
    1 + s // 3, session 1 + s % 3; File 1 live, attacks File from `FILES`; `Protocols/Protocol_1` lists."""

    FILES = {"printer1": 2, "printer2": 3, "display1": 4, "display2": 5}
    DIRS = {"train": "Train_files", "dev": "Dev_files", "test": "Test_files"}
    title = "OULU-NPU"
    max_sessions, sessions_are = 18, "6 phones x 3 sessions"
    max_subjects, subjects_are = 99, "two-digit user field"

    def video_dir(self, split, index, session, medium, illumination):
        phone, number = 1 + session // 3, 1 + session % 3
        file = 1 if medium == "live" else self.FILES[self.official[medium]]
        return f"{self.DIRS[split]}/{phone}_{number}_{index + 1:02d}_{file}"

    def write_lists(self, root, videos):
        label = {"live": "+1", "print": "-1", "replay": "-2"}
        for split, listed in videos.items():
            lines = [f"{label[SUBTYPES.get(m, 'live')]},{Path(d).name}" for d, m in listed]
            _write_lines(root / "Protocols" / "Protocol_1" / f"{split.capitalize()}.txt", lines)
        for d in self.DIRS.values():
            (root / d).mkdir(exist_ok=True)

    def videos(self, root, split):
        return OuluNPU(root).protocol(1, split)


class CasiaLayout(FASLayout):
    """`train_release/<index + 1>/` holds the train then dev subjects (CASIA has no dev split: dev =
    the last `SYNTH_FAS["casia"].dev` of them); `test_release/<n>/` the test subjects (database
    subject n + 20). Capture session s (0, 1, 2: CASIA's three capture qualities) -> the s-th video
    of each type: live `1`, `2`, `HR_1`; warped print `3`, `4`, `HR_2`; cut print `5`, `6`, `HR_3`;
    video replay `7`, `8`, `HR_4`."""

    VIDEOS = {"live": ("1", "2", "HR_1"), "warped": ("3", "4", "HR_2"), "cut": ("5", "6", "HR_3"),
              "video": ("7", "8", "HR_4")}
    title = "CASIA-FASD"
    max_sessions, sessions_are = 3, "low, normal and high quality videos"

    def check(self):
        super().check()
        self._train_subjects()

    def _train_subjects(self) -> int:
        fas = synth_fas.layout(self.domain)
        n = fas.train + fas.dev
        if n > TEST_SUBJECT_OFFSET:
            raise ValueError(f"the CASIA-FASD stand-in holds at most {TEST_SUBJECT_OFFSET} train + dev subjects "
                             f"(train_release 1-{TEST_SUBJECT_OFFSET}); synth_fas.SYNTH_FAS['casia'] has train + dev = {n}")
        return n

    def video_dir(self, split, index, session, medium, illumination):
        name = self.VIDEOS["live" if medium == "live" else self.official[medium]][session]
        train = self._train_subjects()
        folder = f"train_release/{index + 1}" if split != "test" else f"test_release/{index - train + 1}"
        return f"{folder}/{name}"

    def write_lists(self, root, videos):
        for d in ("train_release", "test_release"):
            (root / d).mkdir(exist_ok=True)

    def videos(self, root, split):
        return CasiaFASD(root).videos("test" if split == "test" else "train")

    def subject_index(self, video):
        number = int(video.subject)
        return number - 1 if video.split == "train" else self._train_subjects() + number - TEST_SUBJECT_OFFSET - 1


class ReplayLayout(FASLayout):
    """`{train,devel,test}/real/client<NNN>_session01_webcam_authenticate_<light>_<s+1>` for the live
    video of capture session s; attacks `attack/<support>/attack_<device>_client<NNN>_session01_<sample
    device>_<photo|video>_<light>` with support `fixed` (session 0) or `hand` (session 1); client =
    index + 1; light from the video's illumination (see `_light`)."""

    ATTACKS = {"print_photo": ("print", "highdef", "photo"), "mobile_video": ("mobile", "mobile", "video"),
               "highdef_video": ("highdef", "highdef", "video")}
    SUPPORTS = ("fixed", "hand")
    DIRS = {"train": "train", "dev": "devel", "test": "test"}
    title = "Replay-Attack"
    max_sessions, sessions_are = len(SUPPORTS), "fixed and hand-held attack supports"

    def video_dir(self, split, index, session, medium, illumination):
        client, light = f"client{index + 1:03d}", _light(illumination)
        base = self.DIRS[split]
        if medium == "live":
            return f"{base}/real/{client}_session01_webcam_authenticate_{light}_{session + 1}"
        device, sample_device, sample_type = self.ATTACKS[self.official[medium]]
        return (f"{base}/attack/{self.SUPPORTS[session]}/"
                f"attack_{device}_{client}_session01_{sample_device}_{sample_type}_{light}")

    def write_lists(self, root, videos):
        for d in self.DIRS.values():
            for sub in ("real", "attack"):
                (root / d / sub).mkdir(parents=True, exist_ok=True)

    def videos(self, root, split):
        return ReplayAttack(root).videos(split)


class MsuLayout(FASLayout):
    """`scene01/real/real_client<NNN>_<camera>_SD_scene01` and
    `scene01/attack/attack_client<NNN>_<camera>_SD_<instrument>_scene01`, camera `laptop` (capture
    session 0) or `android` (session 1); client = index + 1; `train_sub_list.txt` lists the train and
    dev subjects (MSU has no dev split), `test_sub_list.txt` the test ones."""

    CAMERAS = ("laptop", "android")
    title = "MSU-MFSD"
    max_sessions, sessions_are = len(CAMERAS), "laptop and android cameras"
    max_subjects, subjects_are = 999, "three-digit client field"

    def video_dir(self, split, index, session, medium, illumination):
        client, camera = f"client{index + 1:03d}", self.CAMERAS[session]
        if medium == "live":
            return f"scene01/real/real_{client}_{camera}_SD_scene01"
        return f"scene01/attack/attack_{client}_{camera}_SD_{self.official[medium]}_scene01"

    def write_lists(self, root, videos):
        base = synth_fas.subject_ids(self.domain, "train").start
        lists = {"train_sub_list.txt": ("train", "dev"), "test_sub_list.txt": ("test",)}
        for name, splits in lists.items():
            numbers = [s - base + 1 for split in splits for s in synth_fas.subject_ids(self.domain, split)]
            _write_lines(root / name, [f"{n:02d}" for n in numbers])
        for d in ("scene01/real", "scene01/attack"):
            (root / d).mkdir(parents=True, exist_ok=True)

    def videos(self, root, split):
        return MsuMfsd(root).videos("test" if split == "test" else "train")


FAS_LAYOUTS: dict[str, FASLayout] = {
    "oulu": OuluLayout("oulu", {"print-glossy": "printer1", "print-matte": "printer2",
                                "replay-phone": "display1", "replay-monitor": "display2"}),
    "casia": CasiaLayout("casia", {"print-warped": "warped", "print-cut": "cut", "replay-tablet": "video"}),
    "replay": ReplayLayout("replay", {"print-matte": "print_photo", "replay-phone": "mobile_video",
                                      "replay-tablet": "highdef_video"}),
    "msu": MsuLayout("msu", {"print-glossy": "printed_photo", "replay-phone": "iphone_video",
                             "replay-tablet": "ipad_video"}),
}
"""Synthetic spoof sub-type -> the official sub-type label of each stand-in dataset (see the layouts' docstrings)."""


def _write_fas(domain: str) -> Callable[[Path, int, int], None]:
    def write(root: Path, size: int, seed: int) -> None:
        """Every frame rendered and written a chunk at a time (`synth_fas.frame_chunks`; by `render_jobs()` processes
        when there are enough chunks) under its number in `.frames/`, then renamed into its video's folder: the
        folder's official name needs the video's illumination, which only rendering tells."""
        layout = FAS_LAYOUTS[domain]
        layout.check()  # before rendering anything
        base = synth_fas.subject_ids(domain, "train").start
        staging = root / ".frames"
        chunks, total = [], 0  # (split, number of the chunk's first frame, its frames)
        for split in SPLITS:
            for keys in synth_fas.frame_chunks(domain, split):
                chunks.append((split, total, keys))
                total += len(keys)
        labels = {}
        with _progress(layout.dataset, size, total) as bar:
            tasks = [(staging, size, seed, domain, first, keys) for _, first, keys in chunks]
            for first, chunk_labels in _map_chunks(_write_fas_chunk, tasks):
                labels[first] = chunk_labels
                bar.update(len(chunk_labels))
        rows, listed, used = [], {split: [] for split in SPLITS}, set()
        dirs: dict[tuple[str, int, int], str] = {}
        for split, first, keys in chunks:
            for j, ((subject, video, frame, medium), (live, species, subtype, illumination)) in enumerate(
                    zip(keys, labels[first])):
                if (split, subject, video) not in dirs:  # a video's scene (and light) is shared by its frames
                    session = synth_fas.session_of(domain, video)
                    name = layout.video_dir(split, subject - base, session, medium, illumination)
                    if name in used:  # two videos under one official name would overwrite each other
                        raise ValueError(f"the {layout.title} stand-in names two videos {name}")
                    used.add(name)
                    dirs[split, subject, video] = name
                    listed[split].append((name, medium))
                folder = root / dirs[split, subject, video]
                folder.mkdir(parents=True, exist_ok=True)
                for suffix in FAS_FRAME_FILES:
                    os.rename(staging / f"{first + j:06d}{suffix}.png", folder / f"{frame:04d}{suffix}.png")
                rows.append((f"{dirs[split, subject, video]}/{frame:04d}.png", live, species, subtype,
                             ILLUMINATION[illumination], subject, video, frame))
        if staging.exists():
            staging.rmdir()  # empty now: every frame was moved
        layout.write_lists(root, listed)
        _write_csv(root / LABELS_FILE, FAS_COLUMNS, rows)

    return write


FAS_FRAME_FILES = ("", "_depth", "_reflection")
"""A FAS frame's files: `NNNN.png`, `NNNN_depth.png`, `NNNN_reflection.png`."""


def _write_fas_chunk(staging: Path, size: int, seed: int, domain: str, first: int,
                     keys: list[tuple[int, int, int, str]]) -> tuple[int, list[tuple[int, str, str, int]]]:
    """Render one chunk of a domain's frames, write them as `staging/<first + j>{suffix}.png`, and give back `first`
    and each frame's (live, species, subtype, illumination) for `_write_fas`."""
    part = synth_fas.render_frames(keys, domain, size, seed)
    maps = {"": part.images, "_depth": synth_fas.map_to_uint8(part.depth),
            "_reflection": synth_fas.map_to_uint8(part.reflection)}
    for j in range(len(part)):
        for suffix in FAS_FRAME_FILES:
            _png(staging / f"{first + j:06d}{suffix}.png", maps[suffix][j])
    return first, [(int(part.live[j]), str(part.species[j]), str(part.subtype[j]), int(part.illumination[j]))
                   for j in range(len(part))]


WRITERS: dict[str, Callable[[Path, int, int], None]] = {
    "celeba": _write_celeba,
    "lfw": _write_lfw,
    **{FAS_DATASET[d]: _write_fas(d) for d in FAS_LAYOUTS},
}
"""Stand-in dataset name -> function writing it (root, size, world seed)."""
