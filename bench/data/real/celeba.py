"""CelebA (aligned faces) as an FR training source: identities and the official partition."""
from __future__ import annotations


from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, ImageRecord, parse_int, read_lines

PARTITIONS = {"train": 0, "val": 1, "test": 2}
"""Codes of `list_eval_partition.txt`: 0 train, 1 validation, 2 test."""


@register_dataset("celeba")
class CelebA(OfficialLayout):
    """`img_align_celeba/000001.jpg`, `identity_CelebA.txt` and `list_eval_partition.txt` under `root`."""

    required = ("img_align_celeba", "identity_CelebA.txt", "list_eval_partition.txt")
    has_videos = False

    def _two_column(self, name: str) -> dict[str, int]:
        path = self.root / name
        table: dict[str, int] = {}
        for number, fields in read_lines(path):
            where = f"{path} line {number}"
            if len(fields) != 2:
                raise DatasetError(f"{where}: expected 2 fields '<image> <number>', got {len(fields)}")
            table[fields[0]] = parse_int(fields[1], where)
        return table

    def faces(self, partition: str) -> list[ImageRecord]:
        """The faces of one official partition (`train`, `val` or `test`), in file order."""
        if partition not in PARTITIONS:
            raise DatasetError(f"unknown CelebA partition {partition!r} (known: {', '.join(PARTITIONS)})")
        identities = self._two_column("identity_CelebA.txt")
        partition_of = self._two_column("list_eval_partition.txt")
        bad = sorted({code for code in partition_of.values() if code not in PARTITIONS.values()})
        if bad:
            raise DatasetError(f"{self.root / 'list_eval_partition.txt'}: unknown partition code {bad[0]} (expected 0, 1 or 2)")
        records = []
        for image, code in partition_of.items():
            if code != PARTITIONS[partition]:
                continue
            if image not in identities:
                raise DatasetError(f"{self.root / 'identity_CelebA.txt'} has no identity for {image}")
            records.append(ImageRecord(self.root / "img_align_celeba" / image, str(identities[image]), image))
        return records
