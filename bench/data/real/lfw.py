"""LFW: its face folders and the official 10-fold `pairs.txt` verification list."""
from __future__ import annotations


from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, ImageRecord, PairRecord, parse_int, read_lines


@register_dataset("lfw")
class LFW(OfficialLayout):
    """`lfw/<Name>/<Name>_0001.jpg` and `pairs.txt` under `root`.

    Images may also be `.png` (the facebench stand-in writes lossless PNG); `.jpg` is preferred.

    `pairs.txt` (LFW README section 3c): a header `<sets> <pairs per kind>`, then for each set
    that many matched lines `name n1 n2` followed by that many mismatched lines
    `name1 n1 name2 n2`. The fold of a pair is the set its line falls in.
    """

    required = ("lfw", "pairs.txt")
    has_videos = False

    def image(self, name: str, number: int) -> ImageRecord:
        """The record of the `number`-th image of person `name` (`lfw/name/name_000N.jpg`, or `.png` if only that exists)."""
        file = f"{name}_{number:04d}.jpg"
        png = f"{name}_{number:04d}.png"
        if not (self.root / "lfw" / name / file).exists() and (self.root / "lfw" / name / png).exists():
            file = png
        return ImageRecord(self.root / "lfw" / name / file, name, file)

    def faces(self) -> list[ImageRecord]:
        """Every image under `lfw/`, person by person in name order."""
        records = []
        for person in sorted(p for p in (self.root / "lfw").iterdir() if p.is_dir()):
            for path in sorted(f for f in person.iterdir() if f.suffix in (".jpg", ".png")):
                records.append(ImageRecord(path, person.name, path.name))
        return records

    def pairs(self) -> list[PairRecord]:
        """All pairs of `pairs.txt` in file order, each with its fold (0-based set index)."""
        path = self.root / "pairs.txt"
        lines = list(read_lines(path))
        if not lines:
            raise DatasetError(f"{path} is empty (expected a header '<sets> <pairs per kind>')")
        number, header = lines[0]
        where = f"LFW pairs.txt line {number}"
        if len(header) == 1:  # pairsDevTrain/DevTest style: one set
            sets, per_kind = 1, parse_int(header[0], where)
        elif len(header) == 2:
            sets, per_kind = (parse_int(v, where) for v in header)
        else:
            raise DatasetError(f"{where}: expected a header '<sets> <pairs per kind>', got {len(header)} fields")
        body = lines[1:]
        expected = sets * 2 * per_kind
        if len(body) != expected:
            raise DatasetError(
                f"LFW pairs.txt ({path}): header promises {sets} x 2 x {per_kind} = {expected} pairs, found {len(body)}"
            )
        pairs = []
        for position, (number, fields) in enumerate(body):
            where = f"LFW pairs.txt line {number}"
            fold, within = divmod(position, 2 * per_kind)
            genuine = within < per_kind
            if len(fields) not in (3, 4):
                raise DatasetError(f"{where}: expected 3 or 4 fields, got {len(fields)}")
            if genuine and len(fields) != 3:
                raise DatasetError(f"{where}: expected a matched pair 'name n1 n2' (3 fields), got {len(fields)}")
            if not genuine and len(fields) != 4:
                raise DatasetError(f"{where}: expected a mismatched pair 'name1 n1 name2 n2' (4 fields), got {len(fields)}")
            if genuine:
                a = self.image(fields[0], parse_int(fields[1], where))
                b = self.image(fields[0], parse_int(fields[2], where))
            else:
                a = self.image(fields[0], parse_int(fields[1], where))
                b = self.image(fields[2], parse_int(fields[3], where))
            kind = "g" if genuine else "i"
            pairs.append(PairRecord(a, b, genuine, fold, f"{kind}:{a.sample_id}|{b.sample_id}"))
        return pairs
