"""CelebA-Spoof: live and spoof images with rich labels and face boxes, one image per 'video'."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from PIL import Image, UnidentifiedImageError

from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, Box, DatasetError, FrameRecord, VideoRecord

SPLITS = ("train", "test")
LABEL_LENGTH = 44
"""Label vector: [0:40] face attributes, [40] spoof type, [41] illumination, [42] environment, [43] live (0) / spoof (1)."""

SPOOF_TYPES = {
    0: ("live", "live"), 1: ("print", "photo"), 2: ("print", "poster"), 3: ("print", "a4"),
    4: ("mask", "face_mask"), 5: ("mask", "upper_body_mask"), 6: ("mask", "region_mask"),
    7: ("replay", "pc"), 8: ("replay", "pad"), 9: ("replay", "phone"), 10: ("mask", "3d_mask"),
}
ILLUMINATIONS = {0: "live", 1: "normal", 2: "strong", 3: "back", 4: "dark"}
ENVIRONMENTS = {0: "live", 1: "indoor", 2: "outdoor"}
BOX_SCALE = 224
"""`*_BB.txt` holds `x y w h score` for the image scaled to 224 x 224; we rescale to the image's pixels."""


@register_dataset("celeba-spoof")
class CelebASpoof(OfficialLayout):
    """`Data/{train,test}/<id>/{live,spoof}/` images with `*_BB.txt` boxes, and `metas/intra_test/*_label.json`."""

    required = ("Data/train", "Data/test", "metas/intra_test/train_label.json", "metas/intra_test/test_label.json")
    has_videos = False

    def labels(self, split: str) -> dict[str, list[int]]:
        """The official label file of `split`: image path (relative to the root) -> label vector."""
        if split not in SPLITS:
            raise DatasetError(f"unknown CelebA-Spoof split {split!r} (known: {', '.join(SPLITS)})")
        path = self.root / "metas" / "intra_test" / f"{split}_label.json"
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(table, dict):
            raise DatasetError(f"{path}: expected a JSON object mapping image paths to label vectors")
        return table

    def frames(self, split: str, with_boxes: bool = True) -> list[FrameRecord]:
        """Every labelled image of `split` as a one-frame video, in label-file order.

        With `with_boxes`, each image's `_BB.txt` box is converted to pixels (this opens the image
        header, so it costs one small read per image).
        """
        label_file = f"metas/intra_test/{split}_label.json"
        records = []
        for key, label in self.labels(split).items():
            where = f"CelebA-Spoof {label_file} entry {key!r}"
            rel = key[2:] if key.startswith("./") else key
            parts = Path(rel).parts
            if len(parts) != 5 or parts[0] != "Data" or parts[1] != split or parts[3] not in ("live", "spoof"):
                raise DatasetError(f"{where}: expected a path 'Data/{split}/<id>/<live|spoof>/<image>'")
            if not isinstance(label, list) or len(label) < LABEL_LENGTH or not all(isinstance(v, int) for v in label):
                raise DatasetError(f"{where}: expected a list of {LABEL_LENGTH} integer labels")
            spoof_type, illumination, environment, spoof = label[40], label[41], label[42], label[43]
            if spoof_type not in SPOOF_TYPES or spoof not in (0, 1):
                raise DatasetError(f"{where}: unknown spoof type {spoof_type} or live/spoof label {spoof}")
            species, subtype = SPOOF_TYPES[spoof_type]
            if (spoof == 0) != (species == "live") or (parts[3] == "live") != (spoof == 0):
                raise DatasetError(
                    f"{where}: live/spoof label {spoof}, spoof type {spoof_type} and folder '{parts[3]}' disagree"
                )
            path = self.root / rel
            if not path.is_file():
                raise DatasetError(f"{where}: image {path} not found")
            meta = {
                "spoof_type": spoof_type, "illumination": ILLUMINATIONS.get(illumination, str(illumination)),
                "environment": ENVIRONMENTS.get(environment, str(environment)), "attributes": label[:40],
            }
            if species != "live":
                meta["subtype"] = subtype
            video = VideoRecord(
                video_id=f"celeba-spoof:{rel}", frames_dir=path.parent, split=split, live=spoof == 0,
                species=species, subject=parts[2], domain="celeba-spoof", meta=meta,
            )
            box = self.box(path) if with_boxes else None
            records.append(FrameRecord(path, video, 0, None, box))
        return records

    def box(self, image: Path) -> Optional[Box]:
        """The face box (x, y, w, h) in pixels of `image` from its `_BB.txt`, or None if it has none."""
        bb = image.with_name(f"{image.stem}_BB.txt")
        if not bb.exists():
            return None
        fields = bb.read_text(encoding="utf-8", errors="replace").split()
        if len(fields) < 4:
            raise DatasetError(f"{bb} line 1: expected 'x y w h score', got {len(fields)} fields")
        try:
            x, y, w, h = (float(v) for v in fields[:4])
        except ValueError:
            raise DatasetError(f"{bb} line 1: expected numbers 'x y w h score', got {' '.join(fields)!r}") from None
        try:
            with Image.open(image) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError) as e:
            raise DatasetError(f"cannot read image {image}: {e}") from None
        sx, sy = width / BOX_SCALE, height / BOX_SCALE
        return int(x * sx), int(y * sy), max(1, int(w * sx)), max(1, int(h * sy))
