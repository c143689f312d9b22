"""LFW: its face folders and the official 10-fold `pairs.txt` verification list."""
from __future__ import annotations


from bench.data.real.registry import register_dataset
from bench.data.real.common import OfficialLayout, DatasetError, ImageRecord, PairRecord, parse_int, read_lines


VIEW2 = (10, 300)
"""LFW View 2 (`pairs.txt`): 10 folds, each of 300 matched then 300 mismatched pairs."""


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

    def pairs(self, view2: bool = False) -> list[PairRecord]:
        """All pairs of `pairs.txt` in file order, each with its fold (0-based set index).

        With `view2`, the file must be View 2's: the header `10 300` (`VIEW2`), so 10 folds of 300 matched then 300
        mismatched pairs; otherwise any `<sets> <pairs per kind>` header (or a one-number header: one set) is read."""
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
        if view2 and (len(header), sets, per_kind) != (2, *VIEW2):
            raise DatasetError(
                f"{where}: View 2's header is '10 300' (10 folds of 300 matched and 300 mismatched pairs), "
                f"got {' '.join(header)!r}"
            )
        if sets < 1 or per_kind < 1:
            raise DatasetError(f"{where}: expected a positive number of sets and of pairs per kind, got {' '.join(header)!r}")
        body = lines[1:]
        expected = sets * 2 * per_kind
        if len(body) != expected:
            raise DatasetError(
                f"LFW pairs.txt ({path}): header promises {sets} x 2 x {per_kind} = {expected} pairs, found {len(body)}"
            )
        pairs = []
        for position, (number, fields) in enumerate(body):
            fold, within = divmod(position, 2 * per_kind)
            pairs.append(self._pair(fields, within < per_kind, fold, f"LFW pairs.txt line {number}"))
        return pairs

    def _pair(self, fields: list[str], genuine: bool, fold: int, where: str) -> PairRecord:
        """One line of `pairs.txt`: `name n1 n2` (matched, two different images) or `name1 n1 name2 n2`
        (mismatched, two different people); image numbers start at 1."""
        if len(fields) not in (3, 4):
            raise DatasetError(f"{where}: expected 3 or 4 fields, got {len(fields)}")
        if genuine and len(fields) != 3:
            raise DatasetError(f"{where}: expected a matched pair 'name n1 n2' (3 fields), got {len(fields)}")
        if not genuine and len(fields) != 4:
            raise DatasetError(f"{where}: expected a mismatched pair 'name1 n1 name2 n2' (4 fields), got {len(fields)}")
        if genuine:
            names, numbers = (fields[0], fields[0]), (parse_int(fields[1], where), parse_int(fields[2], where))
            if numbers[0] == numbers[1]:
                raise DatasetError(f"{where}: a matched pair of one image with itself ({fields[0]} {numbers[0]})")
        else:
            names, numbers = (fields[0], fields[2]), (parse_int(fields[1], where), parse_int(fields[3], where))
            if names[0] == names[1]:
                raise DatasetError(f"{where}: a mismatched pair of one person with themself ({names[0]})")
        if min(numbers) < 1:
            raise DatasetError(f"{where}: image numbers start at 1, got {min(numbers)}")
        a, b = self.image(names[0], numbers[0]), self.image(names[1], numbers[1])
        kind = "g" if genuine else "i"
        return PairRecord(a, b, genuine, fold, f"{kind}:{a.sample_id}|{b.sample_id}")
