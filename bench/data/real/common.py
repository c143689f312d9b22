"""Records and helpers shared by the real-dataset loaders: what a face, pair, video and frame is.

Every loader returns these records and reads images through `read_image`, so that a missing or
corrupt file anywhere gives one clear `DatasetError` naming the file, never a deep traceback.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.errors import BadInputError

SPECIES = ("live", "print", "replay", "mask")
"""What is in front of the camera: a live face or one of the presentation-attack families."""

VIDEO_SUFFIXES = (".avi", ".mov", ".mp4")
"""Video files that `prepare` turns into frame directories."""

FRAME_NAME = re.compile(r"^(\d{4,})\.(png|jpg)$")
BOX_MARGIN = 0.2
"""Fraction of the box size added on each side before cropping, so the crop keeps the whole face."""

Box = tuple[int, int, int, int]


class DatasetError(BadInputError):
    """A dataset folder, list file or image that is missing or not in the expected form."""


@dataclass(frozen=True)
class ImageRecord:
    """One face image of an FR dataset: where it is, whose face, and a stable id."""

    path: Path
    identity: str
    sample_id: str


@dataclass(frozen=True)
class PairRecord:
    """A verification pair from an official pair list, with its cross-validation fold."""

    a: ImageRecord
    b: ImageRecord
    genuine: bool
    fold: int
    pair_id: str


@dataclass(frozen=True)
class VideoRecord:
    """One FAS video in the facebench frame layout: its frames directory and its official labels.

    `species` is one of `SPECIES`; `meta` holds dataset-specific labels (phone, session, quality...)
    and, for attacks, the attack sub-type under `meta["subtype"]`.
    """

    video_id: str
    frames_dir: Path
    split: str
    live: bool
    species: str
    subject: str
    domain: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.species not in SPECIES:
            raise ValueError(f"species must be one of {SPECIES}, got {self.species!r}")
        if self.live != (self.species == "live"):
            raise ValueError(f"video {self.video_id}: live={self.live} contradicts species {self.species!r}")


@dataclass(frozen=True)
class FrameRecord:
    """One frame of a video, with its pseudo-depth map and face box (x, y, w, h) when present."""

    path: Path
    video: VideoRecord
    index: int
    depth_path: Optional[Path] = None
    box: Optional[Box] = None


class OfficialLayout:
    """Base of every loader: a dataset root checked up front for the files its layout requires."""

    required: tuple[str, ...] = ()
    has_videos = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        require(self.root, *self.required)


# --------------------------------------------------------------------------- files


def require(root: Path, *relative: str) -> None:
    """Raise a `DatasetError` naming the first of `relative` (files or folders) missing under `root`."""
    if not root.is_dir():
        raise DatasetError(f"dataset root not found or not a directory: {root}")
    for rel in relative:
        if not (root / rel).exists():
            raise DatasetError(f"{root / rel} not found (expected in the official layout under {root})")


def read_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, whitespace-separated fields) of each non-blank line of a text file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DatasetError(f"{path} not found") from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def parse_int(value: str, where: str) -> int:
    """`int(value)`, or a `DatasetError` saying where the bad number is."""
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"{where}: expected an integer, got {value!r}") from None


def video_dirs(parent: Path) -> list[Path]:
    """The video directories (frame layout) directly under `parent`, sorted by name.

    A video file with no directory beside it means the dataset was not prepared: say so.
    """
    if not parent.is_dir():
        raise DatasetError(f"{parent} not found (expected a folder of videos)")
    dirs, unprepared = [], []
    for entry in sorted(parent.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            dirs.append(entry)
        elif entry.suffix.lower() in VIDEO_SUFFIXES and not entry.with_suffix("").is_dir():
            unprepared.append(entry)
    if unprepared:
        raise DatasetError(
            f"{unprepared[0]} is a video file with no frame directory beside it; run "
            f"`facebench datasets prepare` on the official folder first"
        )
    return dirs


# --------------------------------------------------------------------------- images


def read_image(path: Path, size: int, box: Optional[Sequence[int]] = None) -> np.ndarray:
    """Read an image as uint8 RGB (size, size, 3); crop to `box` (x, y, w, h) plus a margin first."""
    if size < 1:
        raise BadInputError(f"image size must be positive, got {size}")
    path = Path(path)
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.load()
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"cannot read image {path}: {e}") from None
    if box is not None:
        img = img.crop(_crop_window(box, img.size, path))
    img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _crop_window(box: Sequence[int], image_size: tuple[int, int], path: Path) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) crop of a face box enlarged by `BOX_MARGIN`, clipped to the image."""
    x, y, w, h = (int(v) for v in box)
    width, height = image_size
    if w <= 0 or h <= 0:
        raise DatasetError(f"face box {tuple(box)} of {path} has no area")
    mx, my = int(round(w * BOX_MARGIN)), int(round(h * BOX_MARGIN))
    left, top = max(0, x - mx), max(0, y - my)
    right, bottom = min(width, x + w + mx), min(height, y + h + my)
    if right <= left or bottom <= top:
        raise DatasetError(f"face box {tuple(box)} lies outside image {path} ({width}x{height})")
    return left, top, right, bottom


# --------------------------------------------------------------------------- frames


def read_boxes(path: Path) -> dict[int, Box]:
    """Parse a frame-layout `boxes.txt`: lines `<frame-index> <x> <y> <w> <h>`."""
    boxes: dict[int, Box] = {}
    for number, fields in read_lines(path):
        where = f"{path} line {number}"
        if len(fields) != 5:
            raise DatasetError(f"{where}: expected 5 fields '<frame> <x> <y> <w> <h>', got {len(fields)}")
        index, x, y, w, h = (parse_int(v, where) for v in fields)
        boxes[index] = (x, y, w, h)
    return boxes


def frame_files(frames_dir: Path) -> list[tuple[int, Path]]:
    """(index, path) of the frames `0000.png, 0001.png, ...` of a video directory, in index order."""
    found = []
    for entry in frames_dir.iterdir():
        match = FRAME_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def even_indices(count: int, n: int) -> list[int]:
    """`n` positions spread evenly over `count` items, first and last included (all if n >= count)."""
    if n < 1:
        raise BadInputError(f"number of frames must be at least 1, got {n}")
    if n >= count:
        return list(range(count))
    if n == 1:
        return [count // 2]
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, n)})


def list_frames(video: VideoRecord, n: int) -> list[FrameRecord]:
    """`n` frames of a video chosen evenly (deterministic), with depth maps and boxes where present."""
    if not video.frames_dir.is_dir():
        raise DatasetError(f"frame directory not found: {video.frames_dir}")
    frames = frame_files(video.frames_dir)
    if not frames:
        raise DatasetError(f"no frames (0000.png, 0001.png, ...) in {video.frames_dir}")
    boxes_path = video.frames_dir / "boxes.txt"
    boxes = read_boxes(boxes_path) if boxes_path.exists() else {}
    records = []
    for position in even_indices(len(frames), n):
        index, path = frames[position]
        depth = path.with_name(f"{path.stem}_depth.png")
        records.append(
            FrameRecord(path, video, index, depth if depth.exists() else None, boxes.get(index))
        )
    return records
