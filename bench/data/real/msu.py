"""MSU-MFSD: laptop and Android captures of real faces, printed photos and iPad / iPhone replays."""
from __future__ import annotations

import re
from pathlib import Path

from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, VideoRecord, parse_int, read_lines, video_dirs

SPLITS = {"train": "train_sub_list.txt", "test": "test_sub_list.txt"}
REAL_NAME = re.compile(r"^real_client(\d{3})_(android|laptop)_SD_(scene\d{2})$")
ATTACK_NAME = re.compile(r"^attack_client(\d{3})_(android|laptop)_SD_(ipad_video|iphone_video|printed_photo)_(scene\d{2})$")
ATTACK_SPECIES = {"printed_photo": "print", "ipad_video": "replay", "iphone_video": "replay"}


@register_dataset("msu-mfsd")
class MsuMfsd(OfficialLayout):
    """`scene01/real/`, `scene01/attack/` (one frame directory per video) and the two subject lists."""

    required = ("scene01/real", "scene01/attack", "train_sub_list.txt", "test_sub_list.txt")
    has_videos = True

    def subjects(self, split: str) -> set[int]:
        """The subject numbers of `train` or `test`, from the official subject list (one number a line)."""
        if split not in SPLITS:
            raise DatasetError(f"unknown MSU-MFSD split {split!r} (known: {', '.join(SPLITS)})")
        path = self.root / SPLITS[split]
        found = set()
        for number, fields in read_lines(path):
            where = f"MSU-MFSD {path.name} line {number}"
            if len(fields) != 1:
                raise DatasetError(f"{where}: expected one subject number, got {len(fields)} fields")
            found.add(parse_int(fields[0], where))
        return found

    def videos(self, split: str) -> list[VideoRecord]:
        """The real then attack videos of the subjects listed for `split`, in name order."""
        keep = self.subjects(split)
        records = []
        for kind in ("real", "attack"):
            for frames_dir in video_dirs(self.root / "scene01" / kind):
                record = self._record(frames_dir, kind, split)
                if int(record.subject) in keep:
                    records.append(record)
        return records

    def _record(self, frames_dir: Path, kind: str, split: str) -> VideoRecord:
        pattern = REAL_NAME if kind == "real" else ATTACK_NAME
        match = pattern.match(frames_dir.name)
        if match is None:
            example = "real_client001_android_SD_scene01" if kind == "real" else "attack_client001_laptop_SD_printed_photo_scene01"
            raise DatasetError(f"{frames_dir}: not an MSU-MFSD {kind} video name (e.g. {example})")
        if kind == "real":
            client, camera, scene = match.groups()
            species, meta = "live", {"camera": camera, "scene": scene}
        else:
            client, camera, instrument, scene = match.groups()
            species, meta = ATTACK_SPECIES[instrument], {"camera": camera, "scene": scene, "subtype": instrument}
        return VideoRecord(
            video_id=f"msu-mfsd:{kind}/{frames_dir.name}", frames_dir=frames_dir, split=split,
            live=species == "live", species=species, subject=str(int(client)), domain="msu-mfsd", meta=meta,
        )
