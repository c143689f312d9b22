"""Idiap Replay-Attack: real accesses and print / mobile / high-definition attacks, fixed or hand-held."""
from __future__ import annotations

import re
from pathlib import Path

from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, VideoRecord, require, video_dirs

SPLITS = {"train": "train", "devel": "devel", "dev": "devel", "test": "test"}
REAL_NAME = re.compile(r"^client(\d+)_session(\d+)_webcam_(authenticate|enroll)_(controlled|adverse)(?:_(\d+))?$")
ATTACK_NAME = re.compile(
    r"^attack_(print|mobile|highdef)_client(\d+)_session(\d+)_(mobile|highdef)_(photo|video)_(controlled|adverse)$"
)
ATTACK_SPECIES = {"print": "print", "mobile": "replay", "highdef": "replay"}
"""Attack device -> species: a paper print, or a replay on an iPhone (mobile) or iPad (highdef) screen."""


@register_dataset("replay-attack")
class ReplayAttack(OfficialLayout):
    """`train/ devel/ test/`, each with `real/` and `attack/{fixed,hand}/` video directories."""

    required = ("train", "devel", "test")
    has_videos = True

    def videos(self, split: str) -> list[VideoRecord]:
        """Real accesses then attacks (fixed, then hand) of `train`, `devel` (or `dev`) or `test`."""
        if split not in SPLITS:
            raise DatasetError(f"unknown Replay-Attack split {split!r} (known: train, devel, test)")
        base = self.root / SPLITS[split]
        require(base, "real", "attack")
        records = [self._real(d, SPLITS[split]) for d in video_dirs(base / "real")]
        for support in ("fixed", "hand"):
            if (base / "attack" / support).is_dir():
                records += [self._attack(d, SPLITS[split], support) for d in video_dirs(base / "attack" / support)]
        return records

    def _real(self, frames_dir: Path, split: str) -> VideoRecord:
        match = REAL_NAME.match(frames_dir.name)
        if match is None:
            raise DatasetError(f"{frames_dir}: not a Replay-Attack real-access name (client001_session01_webcam_...)")
        client, session, purpose, light, take = match.groups()
        meta = {"light": light, "purpose": purpose, "session": int(session), "take": int(take) if take else 1}
        return VideoRecord(
            video_id=f"replay-attack:{split}/real/{frames_dir.name}", frames_dir=frames_dir, split=split,
            live=True, species="live", subject=str(int(client)), domain="replay-attack", meta=meta,
        )

    def _attack(self, frames_dir: Path, split: str, support: str) -> VideoRecord:
        match = ATTACK_NAME.match(frames_dir.name)
        if match is None:
            raise DatasetError(f"{frames_dir}: not a Replay-Attack attack name (attack_<print|mobile|highdef>_client...)")
        device, client, session, sample_device, sample_type, light = match.groups()
        meta = {
            "light": light, "support": support, "attack_device": device, "sample_device": sample_device,
            "sample_type": sample_type, "session": int(session), "subtype": f"{device}_{sample_type}",
        }
        return VideoRecord(
            video_id=f"replay-attack:{split}/attack/{support}/{frames_dir.name}", frames_dir=frames_dir,
            split=split, live=False, species=ATTACK_SPECIES[device], subject=str(int(client)),
            domain="replay-attack", meta=meta,
        )
