"""insightface's verification `.bin` files (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, `calfw.bin`, `cplfw.bin`), read
without running any pickle code.

A `.bin` is a pickle of `(list of encoded images, list of is-same booleans)`: images `2i` and `2i + 1` are pair `i`,
each a JPEG (or PNG) of an aligned face, 112 x 112 in the published sets. insightface writes it with
`pickle.dump((bins, issame_list), f, protocol=pickle.HIGHEST_PROTOCOL)`: protocol 2 under Python 2 (the images as
`str`: `SHORT_BINSTRING` / `BINSTRING`), protocol 4 or 5 under Python 3 (`SHORT_BINBYTES` / `BINBYTES`); its reader
loads it with `encoding='bytes'`, which reads Python 2 strings back as bytes. Its evaluation splits the pairs into 10
folds in file order without shuffling (scikit-learn's `KFold(10)`): `bin_folds`.

What is admitted, and why nothing can run:

1. Before unpickling, every opcode of the file is read (`_opcodes`: each opcode and the length of its argument, by
   `pickletools`' table of opcodes; nothing is decoded or executed) and checked against `ALLOWED_OPCODES`: the opcodes that build bytes (and Python 2 strings, read as bytes), lists,
   tuples and booleans, plus framing (`PROTO`, `FRAME`, `STOP`), `MARK` and the memo. An opcode that can import or
   call anything (`GLOBAL`, `STACK_GLOBAL`, `INST`, `OBJ`, `REDUCE`, `BUILD`, `NEWOBJ`, the extension registry, the
   persistent ids) refuses the file; so does any other opcode (text, numbers, dicts, sets, None: a `.bin` holds none).
   No integer or None *object* is needed: the integers that framing, `MARK` and the memo use are opcode arguments,
   not values. The one integer opcode admitted is protocol 0/1's `INT`, because that is how those protocols write a
   boolean (`I01` / `I00`); an `INT` that is not a boolean is refused by the structure check.
2. The file is then unpickled by `_NoCodeUnpickler`, whose `find_class` and `persistent_load` always raise: a second
   lock, should the opcode check ever miss a way to reach a global.
3. The result must be `(images, issame)` (a tuple or a list of two), images a list of bytes and issame a list of
   bools with `len(images) == 2 * len(issame)`.

Python 3 pickles of bytes at protocols 0-2 call `_codecs.encode` (a global), so such a file is refused: re-save it
with protocol 3 or higher. Images are decoded with Pillow on demand (`images`), never all at once.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.data.real.common import DatasetError

DEFAULT_FOLDS = 10

EXECUTING_OPCODES = frozenset({
    "GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX",
    "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID",
})
"""Opcodes that import a name, call an object or hand an id to the unpickler: any of them refuses the file."""

ALLOWED_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK",  # framing
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",  # the memo (shared references)
    "SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8",  # bytes (protocols 3-5)
    "STRING", "BINSTRING", "SHORT_BINSTRING",  # Python 2 str (read as bytes with encoding='bytes')
    "EMPTY_LIST", "APPEND", "APPENDS", "LIST",  # lists
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",  # tuples
    "NEWTRUE", "NEWFALSE", "INT",  # booleans (INT: protocols 0 and 1 write True / False as I01 / I00)
})
"""Every opcode a `.bin` written by insightface (Python 2 or 3, any protocol from 0 up, bytes read as bytes) uses."""


class _NoCodeUnpickler(pickle.Unpickler):
    """An unpickler that resolves no global and no persistent id."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"global {module}.{name} refused")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent id refused")


OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_LENGTH_PREFIX = {  # how the length of a counted argument is written: (its size in bytes, signed)
    pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
    pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
    pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
    pickletools.TAKEN_FROM_ARGUMENT8U: (8, False),
}


class _Malformed(Exception):
    """A pickle that ends early or holds an unknown opcode (turned into a `DatasetError` by `check_opcodes`)."""


def _opcodes(data: bytes):
    """Yield (opcode, offset, argument bytes) of each opcode of `data` up to STOP, skipping arguments without decoding
    them (`pickletools.genops` decodes protocol 0 strings as ASCII, which a Python 2 image is not)."""
    view, pos = memoryview(data), 0

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(view):
            raise _Malformed(f"an argument at byte {pos} runs past the end of the file")
        pos += n
        return bytes(view[pos - n: pos]) if n <= 256 else b""  # only short arguments are kept (names, for messages)

    def line() -> bytes:
        nonlocal pos
        end = data.find(b"\n", pos)
        if end < 0:
            raise _Malformed(f"a text argument at byte {pos} has no end of line")
        text, pos = data[pos:end], end + 1
        return text

    while True:
        start = pos
        if pos >= len(view):
            raise _Malformed(f"the file ends at byte {pos}, before the pickle's STOP")
        op = OPCODES.get(take(1))
        if op is None:
            raise _Malformed(f"byte {start} is no pickle opcode")
        arg = op.arg
        if arg is None:
            value = b""
        elif arg.n >= 0:
            value = take(arg.n)
        elif arg.n == pickletools.UP_TO_NEWLINE:
            value = line() + (b"." + line() if arg.name == "stringnl_noescape_pair" else b"")
        else:
            size, signed = _LENGTH_PREFIX[arg.n]
            value = take(int.from_bytes(take(size), "little", signed=signed))
        yield op, start, value
        if op.name == "STOP":
            return


def check_opcodes(data: bytes, path: Path) -> None:
    """Read every opcode of `data` without executing it; a `DatasetError` for a truncated or malformed pickle, an
    opcode that could run code (named, with its byte offset) or any other opcode a `.bin` does not use."""
    if not data:
        raise DatasetError(f"{path}: the file is empty")
    if data[:1] not in (b"\x80", b"("):  # PROTO (protocol 2 and up) or the MARK of a protocol 0/1 tuple
        raise DatasetError(f"{path}: not a pickle (a .bin is a pickled (images, issame) pair; it starts with {data[:8]!r})")
    other, pushed = None, []  # pushed: the last two (opcode, argument) that put something on the stack
    try:
        for op, pos, arg in _opcodes(data):
            if op.name in EXECUTING_OPCODES:
                raise DatasetError(_code_refusal(path, op.name, pos, arg, pushed))
            if op.name not in ALLOWED_OPCODES and other is None:
                other = (op.name, pos)
            if op.name not in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
                pushed = (pushed + [(op.name, arg)])[-2:]
    except _Malformed as e:
        raise DatasetError(f"{path}: not a complete pickle ({e}); the file may be truncated") from None
    if other is not None:
        raise DatasetError(
            f"{path}: refused: opcode {other[0]} at byte {other[1]} builds something a .bin does not hold "
            f"(only bytes, lists, tuples and booleans are read)"
        )


UNICODE_OPCODES = ("UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8")


def _code_refusal(path: Path, opcode: str, pos: int, arg: bytes, pushed: list[tuple[str, bytes]]) -> str:
    """The one line that refuses a pickle at an opcode that could run code: the global it names where it can be read
    (GLOBAL and INST carry it; STACK_GLOBAL takes the two strings pushed just before it), and how to fix two
    common causes."""
    name = ""
    if opcode in ("GLOBAL", "INST"):
        name = arg.decode("latin-1")
    elif opcode == "STACK_GLOBAL" and len(pushed) == 2 and all(op in UNICODE_OPCODES for op, _ in pushed):
        name = ".".join(a.decode("utf-8", "replace") for _, a in pushed)
    hint = ""
    if name == "_codecs.encode":
        hint = "; Python 3 pickles bytes that way below protocol 3: re-save it with protocol 3 or higher"
    elif name.startswith("numpy"):
        hint = ("; it stores numpy arrays or numpy booleans: where you trust the file, load it and re-save it as a list "
                "of bytes (bytes(image)) and a list of bools (bool(label))")
    what = f"{opcode} {name}" if name else opcode
    return (f"{path}: refused: the pickle refers to code ({what} at byte {pos}); a .bin holds only bytes, lists, "
            f"tuples and booleans, and nothing in it was run{hint}")


def _validate(obj: object, path: Path) -> tuple[list[bytes], np.ndarray]:
    """The (images, issame) of an unpickled `.bin`, or a `DatasetError` saying what is wrong with its structure."""
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise DatasetError(f"{path}: expected a pickled pair (images, issame), got {_describe(obj)}")
    images, issame = obj
    if not isinstance(images, list) or not isinstance(issame, list):
        raise DatasetError(
            f"{path}: expected (list of encoded images, list of is-same booleans), got ({_describe(images)}, "
            f"{_describe(issame)})"
        )
    for i, item in enumerate(images):
        if not isinstance(item, (bytes, bytearray)):
            raise DatasetError(f"{path}: image {i} is {_describe(item)}, not encoded image bytes")
    for i, item in enumerate(issame):
        if not isinstance(item, bool):
            raise DatasetError(f"{path}: is-same label {i} is {_describe(item)}, not a boolean")
    if not issame:
        raise DatasetError(f"{path}: holds no pairs")
    if len(images) != 2 * len(issame):
        raise DatasetError(
            f"{path}: {len(issame)} is-same labels need {2 * len(issame)} images (two per pair), found {len(images)}"
        )
    return [bytes(b) for b in images], np.asarray(issame, dtype=bool)


def _describe(obj: object) -> str:
    size = f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else ""
    return f"a {type(obj).__name__}{size}"


def bin_folds(n_pairs: int, folds: int = DEFAULT_FOLDS) -> np.ndarray:
    """The fold of each pair: `folds` consecutive blocks in file order, the first `n_pairs % folds` one pair longer
    (scikit-learn's `KFold(folds)` without shuffling, as insightface's `calculate_roc` splits them)."""
    if n_pairs < folds:
        raise DatasetError(f"{folds}-fold evaluation needs at least {folds} pairs, got {n_pairs}")
    sizes = np.full(folds, n_pairs // folds)
    sizes[: n_pairs % folds] += 1
    return np.repeat(np.arange(folds), sizes)


class InsightFaceBin:
    """One verification `.bin`: its encoded images and is-same labels, checked when it is opened; images decoded on
    demand. Pair `i` is images `2i` and `2i + 1`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"{self.path}: .bin file not found") from None
        except OSError as e:
            raise DatasetError(f"cannot read {self.path}: {e.strerror or e}") from None
        check_opcodes(data, self.path)
        try:
            obj = _NoCodeUnpickler(io.BytesIO(data), encoding="bytes").load()
        except Exception as e:  # anything the opcode check let through and the unpickler still rejects
            raise DatasetError(f"{self.path}: cannot unpickle ({type(e).__name__}: {e})") from None
        self.encoded, self.issame = _validate(obj, self.path)

    def __len__(self) -> int:
        """The number of pairs."""
        return int(self.issame.size)

    def folds(self, folds: int = DEFAULT_FOLDS) -> np.ndarray:
        """The fold of each pair (`bin_folds`)."""
        return bin_folds(len(self), folds)

    def images(self, indices: Sequence[int], size: Optional[int] = None) -> np.ndarray:
        """The images at `indices` (image indices, not pair indices) as uint8 RGB (n, H, W, 3), resized to
        `size` x `size` (bilinear) when given; without `size` they must all be the same size."""
        decoded = [self._decode(int(i), size) for i in indices]
        if not decoded:
            side = size or 112
            return np.zeros((0, side, side, 3), np.uint8)
        shapes = {a.shape for a in decoded}
        if len(shapes) > 1:
            raise DatasetError(f"{self.path}: images of different sizes {sorted(shapes)}; give a size to resize them")
        return np.stack(decoded)

    def floats(self, indices: Sequence[int], size: Optional[int] = None) -> np.ndarray:
        """`images` as float32 RGB in [0, 1]."""
        return self.images(indices, size).astype(np.float32) / 255.0

    def pairs(self, pairs: Sequence[int], size: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """(first images, second images) of the pairs at `pairs`, uint8 RGB."""
        pairs = [int(p) for p in pairs]
        return self.images([2 * p for p in pairs], size), self.images([2 * p + 1 for p in pairs], size)

    def _decode(self, index: int, size: Optional[int]) -> np.ndarray:
        if not 0 <= index < len(self.encoded):
            raise DatasetError(f"{self.path}: no image {index} (it holds {len(self.encoded)})")
        try:
            with Image.open(io.BytesIO(self.encoded[index])) as img:
                img = img.convert("RGB")
                img.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DatasetError(
                f"{self.path}: image {index} (pair {index // 2}) cannot be decoded as an image: {e}"
            ) from None
        if size is not None:
            img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def read_bin(path: Path) -> InsightFaceBin:
    """Open and check an insightface verification `.bin` (see the module docstring for what is admitted)."""
    return InsightFaceBin(path)
