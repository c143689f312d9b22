"""Tiny copies of each real dataset in its exact official layout (24x24 images, a few subjects).

FAS video datasets are written in the facebench frame layout (each video a folder of frames),
except `write_oulu_videos`, which writes real AVI files in the official layout for `prepare`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

SIDE = 24


def write_image(path: Path, seed: int, side: int = SIDE) -> Path:
    """A small deterministic RGB image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_video_dir(path: Path, frames: int = 3, depth: bool = False, boxes: bool = True, seed: int = 0) -> Path:
    """A video in the frame layout: 0000.png..., optional *_depth.png and boxes.txt."""
    path.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(frames):
        write_image(path / f"{i:04d}.png", seed * 100 + i)
        if depth:
            Image.fromarray(np.full((SIDE, SIDE), 128, np.uint8)).save(path / f"{i:04d}_depth.png")
        if boxes and i % 2 == 0:  # odd frames have no detected face
            lines.append(f"{i} 4 4 16 16\n")
    if boxes:
        (path / "boxes.txt").write_text("".join(lines))
    return path


def _write(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


# --------------------------------------------------------------------------- FR


def write_celeba(root: Path) -> Path:
    """6 images, identities 2880 / 2937 / 8692; partitions 3 train, 2 val, 1 test."""
    identities = [2880, 2880, 2937, 2937, 8692, 8692]
    partitions = [0, 0, 0, 1, 1, 2]
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for i, name in enumerate(names):
        write_image(root / "img_align_celeba" / name, i)
    _write(root / "identity_CelebA.txt", [f"{n} {i}" for n, i in zip(names, identities)])
    _write(root / "list_eval_partition.txt", [f"{n} {p}" for n, p in zip(names, partitions)])
    return root


LFW_PEOPLE = {"Aaron_Peirsol": 3, "George_W_Bush": 4, "Zico": 2}


def write_lfw(root: Path) -> Path:
    """3 people; pairs.txt with 2 sets x 2 pairs per kind (tab separated, like the official file)."""
    seed = 0
    for name, count in LFW_PEOPLE.items():
        for n in range(1, count + 1):
            write_image(root / "lfw" / name / f"{name}_{n:04d}.jpg", seed)
            seed += 1
    _write(root / "pairs.txt", [
        "2\t2",
        "Aaron_Peirsol\t1\t2", "George_W_Bush\t1\t4",
        "Aaron_Peirsol\t1\tZico\t2", "George_W_Bush\t2\tZico\t1",
        "Zico\t1\t2", "Aaron_Peirsol\t2\t3",
        "Zico\t2\tGeorge_W_Bush\t3", "Aaron_Peirsol\t3\tGeorge_W_Bush\t1",
    ])
    return root


# --------------------------------------------------------------------------- FAS (frame layout)

OULU_VIDEOS = {
    "Train_files": ["1_1_01_1", "1_1_01_2", "1_1_01_4", "2_2_02_1", "2_2_02_3"],
    "Dev_files": ["1_1_21_1", "1_1_21_5"],
    "Test_files": ["1_3_36_1", "1_3_36_3", "2_3_36_1", "2_3_36_5"],
}


def write_oulu(root: Path) -> Path:
    """11 videos over the three splits, protocol 1 lists and protocol 3 fold-1 lists."""
    for i, (folder, names) in enumerate(OULU_VIDEOS.items()):
        for j, name in enumerate(names):
            write_video_dir(root / folder / name, depth=name.endswith("_1"), seed=10 * i + j)
    p1 = root / "Protocols" / "Protocol_1"
    _write(p1 / "Train.txt", ["+1,1_1_01_1", "-1,1_1_01_2", "-2,1_1_01_4", "+1,2_2_02_1", "-1,2_2_02_3"])
    _write(p1 / "Dev.txt", ["+1,1_1_21_1", "-2,1_1_21_5"])
    _write(p1 / "Test.txt", ["+1,1_3_36_1", "-1,1_3_36_3", "+1,2_3_36_1", "-2,2_3_36_5"])
    p3 = root / "Protocols" / "Protocol_3"
    _write(p3 / "Train_1.txt", ["+1,2_2_02_1", "-1,2_2_02_3"])
    _write(p3 / "Dev_1.txt", ["+1,1_1_21_1"])
    _write(p3 / "Test_1.txt", ["+1,1_3_36_1", "-1,1_3_36_3"])
    return root


def write_casia(root: Path) -> Path:
    """train_release subject 1 with all 12 videos; test_release subject 1 with 1, 5 and HR_4."""
    all_videos = ["1", "2", "HR_1", "3", "4", "HR_2", "5", "6", "HR_3", "7", "8", "HR_4"]
    for j, name in enumerate(all_videos):
        write_video_dir(root / "train_release" / "1" / name, frames=2, seed=j)
    for j, name in enumerate(["1", "5", "HR_4"]):
        write_video_dir(root / "test_release" / "1" / name, frames=2, seed=20 + j)
    return root


def write_replay(root: Path) -> Path:
    """Per split: one real access, a fixed print attack and a hand-held mobile video replay."""
    for s, split in enumerate(["train", "devel", "test"]):
        client = f"client{s + 1:03d}"
        write_video_dir(root / split / "real" / f"{client}_session01_webcam_authenticate_controlled_1", seed=s)
        write_video_dir(root / split / "attack" / "fixed" / f"attack_print_{client}_session01_highdef_photo_adverse", seed=s + 10)
        write_video_dir(root / split / "attack" / "hand" / f"attack_mobile_{client}_session01_mobile_video_controlled", seed=s + 20)
    return root


def write_msu(root: Path) -> Path:
    """Subjects 2 (train) and 36 (test): each a real android video, a printed photo and an iPad replay."""
    for k, client in enumerate(["002", "036"]):
        write_video_dir(root / "scene01" / "real" / f"real_client{client}_android_SD_scene01", seed=k)
        write_video_dir(root / "scene01" / "attack" / f"attack_client{client}_laptop_SD_printed_photo_scene01", seed=k + 5)
        write_video_dir(root / "scene01" / "attack" / f"attack_client{client}_android_SD_ipad_video_scene01", seed=k + 9)
    _write(root / "train_sub_list.txt", ["02", "03"])
    _write(root / "test_sub_list.txt", ["36"])
    return root


def celeba_spoof_label(spoof_type: int, illumination: int, environment: int) -> list[int]:
    return [0] * 40 + [spoof_type, illumination, environment, 0 if spoof_type == 0 else 1]


def write_celeba_spoof(root: Path) -> Path:
    """Train: subject 10 live + poster + phone replay; test: subject 20 live + 3D mask. Boxes on 224 scale."""
    entries = {
        "train": [("10", "live", "000001.jpg", 0, 0, 0), ("10", "spoof", "000002.png", 2, 1, 1),
                  ("10", "spoof", "000003.jpg", 9, 4, 2)],
        "test": [("20", "live", "000004.jpg", 0, 0, 0), ("20", "spoof", "000005.png", 10, 2, 1)],
    }
    for split, rows in entries.items():
        labels = {}
        for k, (subject, kind, name, spoof_type, illum, env) in enumerate(rows):
            image = write_image(root / "Data" / split / subject / kind / name, 50 + k, side=48)
            (image.parent / f"{image.stem}_BB.txt").write_text("56 28 112 140 0.99\n")
            labels[f"Data/{split}/{subject}/{kind}/{name}"] = celeba_spoof_label(spoof_type, illum, env)
        path = root / "metas" / "intra_test" / f"{split}_label.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(labels))
    return root


# --------------------------------------------------------------------------- videos for `prepare`


def write_avi(path: Path, frames: int = 6, side: int = 32, seed: int = 0) -> Path:
    """A tiny MJPG AVI whose frames differ (so frame choice is visible)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (side, side))
    for i in range(frames):
        writer.write(np.full((side, side, 3), (seed * 40 + i * 30) % 256, np.uint8))
    writer.release()
    return path


def write_oulu_videos(root: Path) -> Path:
    """Official OULU-NPU layout with real .avi videos: 2 train, 1 dev, 1 test, and protocol 1 lists."""
    write_avi(root / "Train_files" / "1_1_01_1.avi", seed=1)
    write_avi(root / "Train_files" / "1_1_01_2.avi", seed=2)
    write_avi(root / "Dev_files" / "1_1_21_4.avi", seed=3)
    write_avi(root / "Test_files" / "1_3_36_1.avi", seed=4)
    p1 = root / "Protocols" / "Protocol_1"
    _write(p1 / "Train.txt", ["+1,1_1_01_1", "-1,1_1_01_2"])
    _write(p1 / "Dev.txt", ["-2,1_1_21_4"])
    _write(p1 / "Test.txt", ["+1,1_3_36_1"])
    return root


# --------------------------------------------------------------------------- LFW View 2, insightface .bin

def write_lfw_view2(root: Path) -> Path:
    """An LFW root whose `pairs.txt` is View 2's shape: header `10<TAB>300`, then per fold 300 matched lines
    `name<TAB>n1<TAB>n2` followed by 300 mismatched lines `name1<TAB>n1<TAB>name2<TAB>n2` (6001 lines).

    The names are made up and no images are written (`pairs()` reads the list only); fold f's pairs use the
    people `P<f>_<k>`, so a pair's fold can be read from its names."""
    (root / "lfw").mkdir(parents=True, exist_ok=True)
    lines = ["10\t300"]
    for fold in range(10):
        lines += [f"P{fold}_{k:03d}\t{1 + k % 3}\t{2 + k % 3 + k % 2}" for k in range(300)]
        lines += [f"P{fold}_{k:03d}\t{1 + k % 4}\tP{fold}_{(k + 1) % 300:03d}\t{1 + k % 2}" for k in range(300)]
    _write(root / "pairs.txt", lines)
    return root


def encoded_face(seed: int, side: int = 112, fmt: str = "JPEG") -> bytes:
    """An encoded image (JPEG by default, as insightface's packing scripts store the aligned faces' .jpg files)."""
    import io

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def write_insightface_bin(path: Path, bins: list, issame: list, protocol: int | None = None) -> Path:
    """A `.bin` written the way insightface writes one: `pickle.dump((bins, issame_list), f,
    protocol=pickle.HIGHEST_PROTOCOL)` (the protocol can be lowered to 3 or 4, as older Python 3s wrote)."""
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump((bins, issame), f, protocol=pickle.HIGHEST_PROTOCOL if protocol is None else protocol)
    return path


def py2_pickle(bins: list[bytes], issame: list[bool], protocol: int) -> bytes:
    """The bytes Python 2's pickle writes for `(bins, issame)` of `str` images at protocol 0 or 2 (assembled opcode by
    opcode, since no Python 2 is at hand): images as STRING (protocol 0, escaped text) or SHORT_BINSTRING / BINSTRING
    (protocol 2), booleans as INT `I01` / `I00` (protocol 0) or NEWTRUE / NEWFALSE (2), each list and string memoised
    with PUT / BINPUT, the pair as MARK ... TUPLE (0) or TUPLE2 (2)."""
    import struct

    memo = iter(range(10 ** 6))

    def put() -> bytes:
        i = next(memo)
        return f"p{i}\n".encode() if protocol == 0 else (b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i))

    def string(b: bytes) -> bytes:
        if protocol == 0:
            return b"S'" + "".join(f"\\x{c:02x}" for c in b).encode() + b"'\n" + put()
        head = b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))
        return head + b + put()

    def boolean(v: bool) -> bytes:
        return (b"I01\n" if v else b"I00\n") if protocol == 0 else (b"\x88" if v else b"\x89")

    def items(values: list, one) -> bytes:
        if protocol == 0:  # MARK LIST, then each item APPENDed
            return b"(l" + put() + b"".join(one(v) + b"a" for v in values)
        return b"]" + put() + b"(" + b"".join(one(v) for v in values) + b"e"  # EMPTY_LIST, MARK ... APPENDS

    body = items(bins, string) + items(issame, boolean)
    if protocol == 0:
        return b"(" + body + b"t" + put() + b"."
    return b"\x80\x02" + body + b"\x86" + put() + b"."


# --------------------------------------------------------------------------- rendered faces in the k-fold layouts

RENDERED_PEOPLE = 8
RENDERED_PER_PERSON = 3


def rendered_faces(size: int = 64) -> tuple[np.ndarray, list[int]]:
    """Faces of the embedded world (its unseen test identities), `RENDERED_PER_PERSON` of each of `RENDERED_PEOPLE`
    people, person-major: (uint8 images, identity of each)."""
    from bench.data.synth.fr import SYNTH_FR, cached_world

    ids = [SYNTH_FR.test_ids[p] for p in range(RENDERED_PEOPLE) for _ in range(RENDERED_PER_PERSON)]
    samples = [s for _ in range(RENDERED_PEOPLE) for s in range(RENDERED_PER_PERSON)]
    return cached_world(0, size).render(ids, samples).images, ids


def view2_lines(person: "callable") -> list[str]:
    """LFW View 2's `pairs.txt` (header `10<TAB>300`; per fold 300 matched lines, then 300 mismatched) over
    `RENDERED_PEOPLE` people of `RENDERED_PER_PERSON` images each, named by `person(p)`; pairs repeat. Fold f's
    mismatched pairs are the people `f + 1 + f % 7` apart, so the folds' score distributions (and so the thresholds
    chosen without each of them) differ."""
    lines = ["10\t300"]
    n, k = RENDERED_PEOPLE, RENDERED_PER_PERSON
    for fold in range(10):
        for i in range(300):
            p = (fold + i) % n
            lines.append(f"{person(p)}\t{1 + i % k}\t{1 + (i + 1) % k}")
        for i in range(300):
            p, q = (fold + i) % n, (fold + i + 1 + fold % (n - 1)) % n  # each fold its own people pairs
            lines.append(f"{person(p)}\t{1 + i % k}\t{person(q)}\t{1 + (i + 2) % k}")
    return lines


def write_lfw_view2_rendered(root: Path, size: int = 64) -> Path:
    """A tiny LFW layout of rendered faces (`lfw/<Name>/<Name>_000N.png`, as the facebench stand-in writes them)
    with View 2's exact `pairs.txt` (10 folds of 300 matched then 300 mismatched lines) over them."""
    images, ids = rendered_faces(size)
    names = [f"Synth_{ids[p * RENDERED_PER_PERSON]}" for p in range(RENDERED_PEOPLE)]
    for i, image in enumerate(images):
        name = names[i // RENDERED_PER_PERSON]
        path = root / "lfw" / name / f"{name}_{1 + i % RENDERED_PER_PERSON:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    _write(root / "pairs.txt", view2_lines(lambda p: names[p]))
    return root


def write_rendered_bin(path: Path, pairs_per_fold: int = 4, size: int = 64) -> tuple[Path, list[bool]]:
    """An insightface `.bin` of rendered faces (PNG-encoded, written with `write_insightface_bin`): 10 folds of
    `pairs_per_fold` pairs, genuine and impostor alternating, pairs interleaved (images 2i, 2i + 1)."""
    import io

    images, ids = rendered_faces(size)
    k = RENDERED_PER_PERSON

    def png(i: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(images[i]).save(buffer, format="PNG")
        return buffer.getvalue()

    bins, issame = [], []
    for i in range(10 * pairs_per_fold):
        p, same = i % RENDERED_PEOPLE, i % 2 == 0
        q = p if same else (p + 1 + i % (RENDERED_PEOPLE - 1)) % RENDERED_PEOPLE
        bins += [png(p * k + i % k), png(q * k + (i + 1) % k)]
        issame.append(same)
    return write_insightface_bin(path, bins, issame), issame
