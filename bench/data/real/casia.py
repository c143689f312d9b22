"""CASIA-FASD: per-subject folders of 12 videos (3 qualities x real, warped print, cut print, replay)."""
from __future__ import annotations


from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, VideoRecord, video_dirs

SPLITS = {"train": "train_release", "test": "test_release"}
TEST_SUBJECT_OFFSET = 20
"""Test subjects are numbered 1-30 in `test_release/`; they are subjects 21-50 of the database."""

VIDEO_TYPES = {
    "1": ("live", None, "normal"), "2": ("live", None, "low"), "HR_1": ("live", None, "high"),
    "3": ("print", "warped", "normal"), "4": ("print", "warped", "low"), "HR_2": ("print", "warped", "high"),
    "5": ("print", "cut", "normal"), "6": ("print", "cut", "low"), "HR_3": ("print", "cut", "high"),
    "7": ("replay", "video", "normal"), "8": ("replay", "video", "low"), "HR_4": ("replay", "video", "high"),
}
"""Video name -> (species, attack sub-type, capture quality)."""


@register_dataset("casia-fasd")
class CasiaFASD(OfficialLayout):
    """`train_release/<subject>/<video>/` and `test_release/<subject>/<video>/` under `root`."""

    required = ("train_release", "test_release")
    has_videos = True

    def videos(self, split: str) -> list[VideoRecord]:
        """Every video of `train` or `test`, subject by subject (numeric order), then by video name."""
        if split not in SPLITS:
            raise DatasetError(f"unknown CASIA-FASD split {split!r} (known: {', '.join(SPLITS)})")
        base = self.root / SPLITS[split]
        subjects = [d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")]
        for d in subjects:
            if not d.name.isdigit():
                raise DatasetError(f"{d}: expected a numbered subject folder in {base}")
        records = []
        for subject_dir in sorted(subjects, key=lambda d: int(d.name)):
            subject = int(subject_dir.name) + (TEST_SUBJECT_OFFSET if split == "test" else 0)
            for frames_dir in video_dirs(subject_dir):
                if frames_dir.name not in VIDEO_TYPES:
                    raise DatasetError(
                        f"{frames_dir}: unknown CASIA-FASD video name (expected one of {', '.join(VIDEO_TYPES)})"
                    )
                species, subtype, quality = VIDEO_TYPES[frames_dir.name]
                meta = {"quality": quality, "video": frames_dir.name}
                if subtype:
                    meta["subtype"] = subtype
                records.append(VideoRecord(
                    video_id=f"casia-fasd:{SPLITS[split]}/{subject_dir.name}/{frames_dir.name}",
                    frames_dir=frames_dir, split=split, live=species == "live", species=species,
                    subject=str(subject), domain="casia-fasd", meta=meta,
                ))
        return records
