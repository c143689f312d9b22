"""OULU-NPU: mobile-phone videos named `Phone_Session_User_File` and the four official protocols."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, VideoRecord, read_lines, video_dirs

SPLITS = {"train": "Train", "dev": "Dev", "test": "Test"}
VIDEO_NAME = re.compile(r"^([1-6])_([1-3])_(\d{2})_([1-5])$")
FILE_TYPES = {
    1: ("live", None),
    2: ("print", "printer1"),
    3: ("print", "printer2"),
    4: ("replay", "display1"),
    5: ("replay", "display2"),
}
"""The File field: 1 real access, 2-3 print attacks (printers 1, 2), 4-5 replay attacks (displays 1, 2)."""

PROTOCOL_LABELS = {"+1": True, "-1": False, "-2": False}
"""First field of a protocol line: +1 real access, -1 print attack, -2 replay attack."""

FOLDED_PROTOCOLS = {3: 6, 4: 6}
"""Protocols 3 and 4 are leave-one-phone-out: six folds, lists `Train_<k>.txt` ... `Test_<k>.txt`."""


@register_dataset("oulu-npu")
class OuluNPU(OfficialLayout):
    """`Train_files/`, `Dev_files/`, `Test_files/` (one frame directory per video) and `Protocols/`."""

    required = ("Train_files", "Dev_files", "Test_files", "Protocols")
    has_videos = True

    def _record(self, frames_dir: Path, split: str) -> VideoRecord:
        match = VIDEO_NAME.match(frames_dir.name)
        if match is None:
            raise DatasetError(
                f"{frames_dir}: not an OULU-NPU video name 'Phone_Session_User_File' (e.g. 1_1_01_1)"
            )
        phone, session, user, file = (int(v) for v in match.groups())
        species, subtype = FILE_TYPES[file]
        meta = {"phone": phone, "session": session, "user": user, "file": file}
        if subtype:
            meta["subtype"] = subtype
        return VideoRecord(
            video_id=f"oulu-npu:{frames_dir.name}", frames_dir=frames_dir, split=split,
            live=species == "live", species=species, subject=str(user), domain="oulu-npu", meta=meta,
        )

    def videos(self, split: str) -> list[VideoRecord]:
        """Every video of an official split (`train`, `dev`, `test`), in name order."""
        if split not in SPLITS:
            raise DatasetError(f"unknown OULU-NPU split {split!r} (known: {', '.join(SPLITS)})")
        return [self._record(d, split) for d in video_dirs(self.root / f"{SPLITS[split]}_files")]

    def protocol_file(self, n: int, split: str, fold: Optional[int] = None) -> Path:
        """The official list file of protocol `n`, `split` and, for protocols 3 and 4, `fold` (1-6)."""
        if n not in (1, 2, 3, 4):
            raise DatasetError(f"OULU-NPU has protocols 1-4, got {n}")
        if split not in SPLITS:
            raise DatasetError(f"unknown OULU-NPU split {split!r} (known: {', '.join(SPLITS)})")
        folds = FOLDED_PROTOCOLS.get(n)
        if folds is None:
            if fold is not None:
                raise DatasetError(f"OULU-NPU protocol {n} has no folds (got fold {fold})")
            name = f"{SPLITS[split]}.txt"
        else:
            if fold is None or not 1 <= fold <= folds:
                raise DatasetError(f"OULU-NPU protocol {n} needs a fold from 1 to {folds} (got {fold})")
            name = f"{SPLITS[split]}_{fold}.txt"
        return self.root / "Protocols" / f"Protocol_{n}" / name

    def protocol(self, n: int, split: str, fold: Optional[int] = None) -> list[VideoRecord]:
        """The videos listed by a protocol file, in list order; each line must be `<label>,<video>`."""
        path = self.protocol_file(n, split, fold)
        if not path.exists():
            raise DatasetError(f"{path} not found (official OULU-NPU protocol list)")
        files_dir = self.root / f"{SPLITS[split]}_files"
        records = []
        for number, fields in read_lines(path):
            where = f"OULU-NPU {path.relative_to(self.root)} line {number}"
            parts = "".join(fields).split(",")
            if len(parts) != 2:
                raise DatasetError(f"{where}: expected '<label>,<video>' such as '+1,1_1_01_1', got {' '.join(fields)!r}")
            label, name = parts
            if label not in PROTOCOL_LABELS:
                raise DatasetError(f"{where}: label must be +1, -1 or -2, got {label!r}")
            if not VIDEO_NAME.match(name):
                raise DatasetError(f"{where}: {name!r} is not an OULU-NPU video name (e.g. 1_1_01_1)")
            frames_dir = files_dir / name
            if not frames_dir.is_dir():
                raise DatasetError(f"{where}: video {name} not found in {files_dir}")
            record = self._record(frames_dir, split)
            if record.live != PROTOCOL_LABELS[label]:
                raise DatasetError(f"{where}: label {label} contradicts the file type of {name}")
            record.meta["protocol_label"] = label
            records.append(record)
        return records
