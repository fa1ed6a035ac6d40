"""MTCNN, the multi-task cascaded face detector (Zhang, Zhang, Li and Qiao, "Joint Face
Detection and Alignment using Multi-task Cascaded Convolutional Networks", IEEE Signal
Processing Letters 2016), with the weights and the exact inference conventions of
facenet-pytorch 2.6.0 (``facenet_pytorch/models/utils/detect_face.py``, itself a port of
the authors' MATLAB code by way of davidsandberg/facenet).

Three small networks, each run on what the previous one let through (the paper's
figure 1 and 2)::

    image (H, W, 3) uint8 RGB
      |  pyramid: scales s_k = (12 / min_face_size) * factor**k while min(H, W) * s_k >= 12
      v  each level resized to (int(H s_k + 1), int(W s_k + 1)) by area averaging
    P-Net  fully convolutional, 12x12 receptive field, stride 2        (stage 1, "proposal")
      |  every score-map cell with p(face) >= 0.6 -> a box (below); NMS 0.5 per scale,
      |  NMS 0.7 over all scales; box regression (offsets x box side, no +1); squared
      v  (rerec); clipped (pad)
    R-Net  each box cropped, resized to 24x24: p(face), 4 offsets      (stage 2, "refine")
      |  p > 0.7; NMS 0.7; box regression (offsets x (side + 1)); squared
      v
    O-Net  each box cropped, resized to 48x48: p(face), 4 offsets,     (stage 3, "output")
      |  10 landmark coordinates
      |  p > 0.7; landmarks mapped into the image from the (unregressed) box; box
      v  regression; NMS 0.7 with the "Min" overlap (intersection / smaller area)
    boxes (N, 4) x1y1x2y2, probs (N,), landmarks (N, 5, 2) (eyes, nose, mouth corners), xy

From a P-Net score-map cell to an image box
-------------------------------------------
P-Net is conv3 -> 2x2/2 max pool -> conv3 -> conv3 (all 'valid'), so an input of 12x12
gives one output cell, and output cell ``(i, j)`` (row, column) sees input rows
``2i .. 2i + 11`` and columns ``2j .. 2j + 11`` of the level (stride 2, cell size 12).
A level of height ``h`` gives ``ceil((h - 2) / 2) - 4`` rows (the pool rounds up, as
Caffe's). The MATLAB code names that window with 1-based pixel numbers ``2j + 1 ..
2j + 12`` and divides them by the scale; facenet-pytorch keeps that arithmetic and then
treats the numbers as 0-based coordinates::

    x1 = floor((2 j + 1) / s)      y1 = floor((2 i + 1) / s)
    x2 = floor((2 j + 12) / s)     y2 = floor((2 i + 12) / s)

computed in float32 (``s`` rounded to float32 first, as torch does with a Python scalar).
Worked case: ``s = 0.5``, cell ``(i, j) = (3, 5)``: ``x1 = floor(11 / 0.5) = 22``,
``x2 = floor(22 / 0.5) = 44``, ``y1 = floor(7 / 0.5) = 14``, ``y2 = floor(18 / 0.5) =
36``. The window itself, level columns 10 .. 21, is image columns 20 .. 43 (``2j / s`` to
``(2j + 12) / s``); the 1-based numbering moves x1 and y1 one level pixel (here 2 image
pixels) inwards, giving a 22 x 22 box whose corners are 1-based. The cell's four
regression outputs ``(dx1, dy1, dx2, dy2)`` move the corners by that fraction of the box's
width ``x2 - x1`` and height ``y2 - y1`` (stage 1 only; R-Net and O-Net use
``x2 - x1 + 1``).

Conventions copied from facenet-pytorch (each one changes the boxes)
--------------------------------------------------------------------
* Input normalisation ``(x - 127.5) * 0.0078125`` (1/128), on the resized float image.
* Resizing is torch's ``interpolate(mode='area')``, which *is* adaptive average pooling
  (``imresample`` below, ``F.adaptive_avg_pool2d``); crops smaller than 24/48 pixels are
  enlarged the same way (each output pixel copies one input pixel).
* ``rerec`` makes a box square about its centre with side ``max(w, h)``
  (``w = x2 - x1``, no +1).
* ``pad`` truncates the box to integers and clips ``x1, y1`` to >= 1 and ``x2, y2`` to
  ``<= W, H``; the crop is ``image[y1 - 1 : y2, x1 - 1 : x2]``. Unlike the MATLAB code it
  does not zero-pad a box that crosses the border: the clipped part is resized to the
  full 24x24 / 48x48 (a face at the border is seen stretched). Boxes whose crop is empty
  are dropped here (facenet-pytorch would fail on them).
* Stage 1 keeps scores ``>= 0.6``; stages 2 and 3 keep ``> threshold``.
* NMS in stages 1 and 2 is torchvision's (IoU with areas ``(x2 - x1) (y2 - y1)``, a box
  is dropped when IoU > threshold); stage 3 uses ``nms_min``: areas
  ``(x2 - x1 + 1) (y2 - y1 + 1)``, overlap = intersection / min(area_i, area_j), kept
  while overlap <= threshold (so a small box inside a big one is suppressed).
* Landmarks: O-Net's outputs ``(px_1..px_5, py_1..py_5)`` are fractions of the stage-3
  input box ``b`` (before its regression): ``x = (b.x2 - b.x1 + 1) px + b.x1 - 1``.
* ``detect`` returns the faces largest box area first (facenet-pytorch's default
  ``select_largest=True``); with no face it returns empty arrays where facenet-pytorch
  returns ``None``.

Weights: ``weights='facenet'`` reads ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` from the
facenet-pytorch 2.6.0 wheel (``data/wheel_files.py``) with ``scratchvision.io.load_torch``;
the layer names are facenet-pytorch's, so its state_dicts load as they are. R-Net and
O-Net flatten their last feature map in (W, H, C) order (``permute(0, 3, 2, 1)``), as
the weights were converted from Caffe/TensorFlow that way.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import scratchvision as sv
import scratchvision.functional as F
from scratchvision import nn, ops

__all__ = ["MTCNN", "ONet", "PNet", "RNet", "bbreg", "generate_boxes", "imresample",
           "load_facenet_weights", "nms_min", "pad", "pyramid_scales", "rerec"]

FACENET_VERSION = "2.6.0"


# ------------------------------------------------------------------------------ networks
class PNet(nn.Module):
    """Proposal net: (N, 3, H, W) -> regression (N, 4, h, w), probabilities (N, 2, h, w)
    with ``h = ceil((H - 2) / 2) - 4``; channel 1 of the probabilities is p(face)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refine net: (N, 3, 24, 24) -> regression (N, 4), probabilities (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)          # 24 -> 22
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)       # 22 -> 11
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)         # 11 -> 9
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)       # 9 -> 4
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)         # 4 -> 3
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)                     # 64 * 3 * 3
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)   # (N, W, H, C) order, as trained
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output net: (N, 3, 48, 48) -> regression (N, 4), landmarks (N, 10) as
    ``(x_1..x_5, y_1..y_5)`` fractions of the box, probabilities (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)          # 48 -> 46
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)       # 46 -> 23
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)         # 23 -> 21
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)       # 21 -> 10
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)         # 10 -> 8
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)       # 8 -> 4
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)        # 4 -> 3
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)                    # 128 * 3 * 3
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)   # (N, W, H, C) order, as trained
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def load_facenet_weights(model: MTCNN, version: str = FACENET_VERSION) -> MTCNN:
    """Load facenet-pytorch's pnet.pt, rnet.pt, onet.pt (from its wheel) into ``model``."""
    from scratchvision.data.wheel_files import wheel_file
    from scratchvision.io import load_torch
    for name in ("pnet", "rnet", "onet"):
        path = wheel_file("facenet-pytorch", version, f"facenet_pytorch/data/{name}.pt")
        getattr(model, name).load_state_dict(load_torch(path))
    return model


# ------------------------------------------------------------------ the cascade's steps
def pyramid_scales(h: int, w: int, min_face_size: float, factor: float) -> list[float]:
    """Scales ``(12 / min_face_size) * factor**k`` while the scaled short side is >= 12."""
    scale = 12.0 / min_face_size
    side = min(h, w) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def imresample(x, size: tuple[int, int]):
    """Area resampling of (N, C, H, W) to ``size``: torch's ``interpolate(mode='area')``,
    which is adaptive average pooling (output pixel i averages input rows
    ``floor(i H / h) .. ceil((i + 1) H / h) - 1``)."""
    return F.adaptive_avg_pool2d(x, tuple(size))


def generate_boxes(reg: np.ndarray, prob: np.ndarray, scale: float,
                   threshold: float) -> np.ndarray:
    """P-Net cells with ``prob >= threshold`` as boxes in image pixels.

    Parameters
    ----------
    reg : (4, h, w) float32 regression map; prob : (h, w) float32 p(face) map.
    scale : the pyramid level's scale; threshold : stage 1's score threshold.

    Returns
    -------
    (K, 9) float32 rows ``(x1, y1, x2, y2, score, dx1, dy1, dx2, dy2)``, cells in row-major
    order; the corners are ``floor((2 j + 1) / s)`` .. ``floor((2 j + 12) / s)`` (module
    docstring).
    """
    stride, cell = 2, 12
    ii, jj = np.nonzero(prob >= np.float32(threshold))           # row-major, as torch
    s = np.float32(scale)                       # torch rounds a Python scalar to float32
    xy = np.stack([jj, ii], axis=1).astype(np.float32)           # (K, 2) cell (x, y)
    q1 = np.floor((stride * xy + 1) / s)                         # 1-based first pixel / s
    q2 = np.floor((stride * xy + cell - 1 + 1) / s)              # 1-based last pixel / s
    return np.concatenate([q1, q2, prob[ii, jj][:, None], reg[:, ii, jj].T],
                          axis=1).astype(np.float32)


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS with MTCNN's 'Min' overlap: intersection / min(area_i, area_j).

    Areas and intersections count pixels inclusively (``x2 - x1 + 1``), as the MATLAB
    code; a box is kept while its overlap with every kept, higher-scored box is
    ``<= threshold``. Ranks follow ``(-score, index)`` like ``ops.nms``.

    Parameters
    ----------
    boxes : (N, 4) x1y1x2y2; scores : (N,); threshold : float.

    Returns
    -------
    (K,) int64 indices of the kept boxes, best first.
    """
    boxes = np.asarray(boxes)
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)                         # (N,)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = iw * ih / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def rerec(boxes: np.ndarray) -> np.ndarray:
    """Squares (N, >=4) boxes about their centres, side ``max(x2 - x1, y2 - y1)``."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """R-Net/O-Net box regression: corners move by ``reg`` times (side + 1)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, :4] = boxes[:, :4] + reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return out


def pad(boxes: np.ndarray, w: int, h: int):
    """Truncated, clipped integer corners ``(y1, y2, x1, x2)``: the crop of box k is
    ``image[y1 - 1 : y2, x1 - 1 : x2]`` (1-based ``x1, y1`` clipped to >= 1, ``x2, y2``
    to <= W, H)."""
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x1, y1 = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    x2, y2 = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    return y1, y2, x1, x2


def _normalise(x):
    return (x - 127.5) * 0.0078125


# ---------------------------------------------------------------------------- detector
class MTCNN(nn.Module):
    """The three-stage MTCNN face detector (see the module docstring).

    Parameters
    ----------
    min_face_size : smallest face side (pixels) looked for; sets the first pyramid scale
        ``12 / min_face_size``.
    thresholds : p(face) thresholds of P-Net, R-Net and O-Net.
    factor : scale step of the image pyramid.
    weights : None (randomly initialised nets) or 'facenet' (facenet-pytorch's weights).
    """

    def __init__(self, min_face_size: float = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, weights: str | None = None) -> None:
        super().__init__()
        if min_face_size <= 0:
            raise ValueError(f"min_face_size must be > 0, got {min_face_size}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if len(thresholds) != 3:
            raise ValueError(f"thresholds must hold 3 values, got {thresholds!r}")
        if weights not in (None, "facenet"):
            raise ValueError(f"weights must be None or 'facenet', got {weights!r}")
        self.min_face_size, self.factor = min_face_size, factor
        self.thresholds = tuple(float(t) for t in thresholds)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        if weights == "facenet":
            load_facenet_weights(self)
        self.eval()

    def _device(self):
        return next(iter(self.parameters())).device

    def _crops(self, x, boxes: np.ndarray, size: int):
        """Crops of the (1, 3, H, W) image at ``boxes``, resized to ``size``; and which
        boxes gave a non-empty crop."""
        h, w = x.shape[2:]
        y1, y2, x1, x2 = pad(boxes, w, h)
        valid = (y2 > y1 - 1) & (x2 > x1 - 1)
        crops = [imresample(x[:, :, y1[k] - 1:y2[k], x1[k] - 1:x2[k]], (size, size))
                 for k in np.flatnonzero(valid)]
        return (_normalise(sv.cat(crops)) if crops else None), valid

    def _stage1(self, x) -> np.ndarray:
        h, w = x.shape[2:]
        per_scale = []
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            level = _normalise(imresample(x, (int(h * scale + 1), int(w * scale + 1))))
            reg, prob = self.pnet(level)
            b = generate_boxes(reg.numpy()[0], prob.numpy()[0, 1], scale, self.thresholds[0])
            per_scale.append(b[ops.nms(b[:, :4], b[:, 4], 0.5)])
        boxes = np.concatenate(per_scale) if per_scale else np.zeros((0, 9), np.float32)
        boxes = boxes[ops.nms(boxes[:, :4], boxes[:, 4], 0.7)]
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]   # no +1 in stage 1
        moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([bw, bh, bw, bh], axis=1)
        return rerec(np.concatenate([moved, boxes[:, 4:5]], axis=1))

    def _stage2(self, x, boxes: np.ndarray) -> np.ndarray:
        im, valid = self._crops(x, boxes, 24)
        if im is None:
            return np.zeros((0, 5), np.float32)
        reg, prob = (t.numpy() for t in self.rnet(im))
        boxes, score = boxes[valid], prob[:, 1]
        keep = score > np.float32(self.thresholds[1])
        boxes = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1)
        reg = reg[keep]
        pick = ops.nms(boxes[:, :4], boxes[:, 4], 0.7)
        return rerec(bbreg(boxes[pick], reg[pick]))

    def _stage3(self, x, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        im, valid = self._crops(x, boxes, 48)
        if im is None:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        reg, marks, prob = (t.numpy() for t in self.onet(im))
        boxes, score = boxes[valid], prob[:, 1]
        keep = score > np.float32(self.thresholds[2])
        boxes = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1)
        reg, marks = reg[keep], marks[keep]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]              # (K, 1)
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        px = bw * marks[:, :5] + boxes[:, 0:1] - 1                 # (K, 5)
        py = bh * marks[:, 5:] + boxes[:, 1:2] - 1
        points = np.stack([px, py], axis=2)                        # (K, 5, 2)
        boxes = bbreg(boxes, reg)
        pick = nms_min(boxes[:, :4], boxes[:, 4], 0.7)
        return boxes[pick], points[pick]

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in one image, as facenet-pytorch's ``MTCNN.detect(img, landmarks=True)``.

        Parameters
        ----------
        image : (H, W, 3) uint8 RGB array.

        Returns
        -------
        boxes : (N, 4) float32 x1y1x2y2 in image pixels (may reach outside the image).
        probs : (N,) float32 O-Net face probabilities.
        landmarks : (N, 5, 2) float32 (x, y) of left eye, right eye, nose, left and right
            mouth corner.
        Faces come largest box first; N = 0 gives empty arrays.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got "
                             f"{image.dtype} of shape {image.shape}")
        with sv.no_grad():
            x = sv.tensor(np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32),
                          device=self._device())
            boxes = self._stage1(x)
            points = np.zeros((0, 5, 2), np.float32)
            if len(boxes):
                boxes = self._stage2(x, boxes)
            if len(boxes):
                boxes, points = self._stage3(x, boxes)
        boxes = boxes.astype(np.float32).reshape(-1, 5)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.argsort(area)[::-1]                   # facenet-pytorch's select_largest
        return (np.ascontiguousarray(boxes[order, :4]), np.ascontiguousarray(boxes[order, 4]),
                np.ascontiguousarray(points[order].astype(np.float32)))

    def predict(self, image: np.ndarray) -> dict:
        """``detect`` as a prediction dict: ``boxes``, ``scores``, ``labels`` (all 1, face),
        ``landmarks``, NumPy arrays."""
        boxes, probs, points = self.detect(image)
        return {"boxes": boxes, "scores": probs, "labels": np.ones(len(boxes), np.int64),
                "landmarks": points}
