"""YOLO v1 (Redmon, Divvala, Girshick, Farhadi, "You Only Look Once: Unified, Real-Time
Object Detection", CVPR 2016).

Detection as one regression: a single network looks at the whole image once and outputs,
for each cell of an S x S grid, B boxes with a confidence each and one set of C class
probabilities shared by the cell's boxes (section 2, figure 2)::

    image (3, h, w) -> resize to input_size x input_size (the paper: 448; here 128)
      -> conv backbone: stages of 3x3 conv + BN + leaky ReLU(0.1), each ending in a 2x2
         max pool; a 1x1 conv (+ BN + leaky) reduces the channels     (N, R, m, m)
      -> flatten -> fc (hidden) -> leaky ReLU(0.1) -> dropout
      -> fc, linear activation -> reshape (N, S, S, 5B + C)                    (``forward``)
    per cell (i, j) (row i = y, column j = x), the last axis holds
      [x, y, sqrt w, sqrt h, conf] for each of the B boxes, then Pr(class_c | object), c < C

``x, y`` are the box centre's offsets within its cell (in [0, 1) for the truth), ``w, h`` its
size relative to the image, so every number is in [0, 1] and a box decodes to
``cx = (j + x) / S, cy = (i + y) / S, w = (sqrt w)^2, h = (sqrt h)^2`` of the image
(``decode``; the square, as Darknet's ``sqrt=1`` detection layer does, keeps w >= 0).

Training targets (``encode_targets``, section 2.2): an object belongs to the cell that
contains its box centre, ``j = floor(S cx / w_img)`` (and likewise ``i``): cell j covers the
half-open ``[j / S, (j + 1) / S)`` of the image, so a centre exactly on a border between
cells belongs to the right (lower) one, with offset 0. Each cell predicts one set of
class probabilities, so it can hold **one object**; when two centres fall in one cell the
larger box (by area; ties: the first in the targets) keeps it and the other object gets no
target at all. (Darknet shuffles the boxes and keeps the first, so which one is dropped
changes between epochs; a fixed rule makes the loss a function of the batch.) On Shapes at
S = 4 this drops 5.5 % of the objects (S = 8: 0.9 %).

Of the cell's B predictors, the one whose predicted box has the highest IoU with the object
(measured in image-relative coordinates, i.e. in the resized square input) is
*responsible* for it (``assign_predictors``). When every predictor has IoU 0 (early in
training) the one nearest the object by root-mean-square difference of (cx, cy, w, h) is
responsible, as in Darknet's ``forward_detection_layer``; exact ties go to the first.

The loss (section 2.2, equation 3), sum-squared error throughout, ``lambda_coord = 5``,
``lambda_noobj = 0.5``; ``1^obj_ij`` is 1 when predictor j of cell i is responsible for an
object, ``1^noobj_ij = 1 - 1^obj_ij`` (so the non-responsible predictor of a cell with an
object is pushed to confidence 0 too), ``1^obj_i`` is 1 when an object is in cell i::

    lambda_coord sum_i sum_j 1^obj_ij [(x_i - x^_i)^2 + (y_i - y^_i)^2]           loss_xy
  + lambda_coord sum_i sum_j 1^obj_ij [(sqrt w_i - sqrt w^_i)^2
                                       + (sqrt h_i - sqrt h^_i)^2]               loss_wh
  + sum_i sum_j 1^obj_ij (C_i - C^_i)^2                                          loss_obj
  + lambda_noobj sum_i sum_j 1^noobj_ij (C_i - C^_i)^2                           loss_noobj
  + sum_i 1^obj_i sum_c (p_i(c) - p^_i(c))^2                                      loss_cls

with ``C^_i`` = the IoU of the responsible predictor's box with the object (the paper: "the
confidence ... equal the IoU between the predicted box and the ground truth"; computed from
the detached prediction, so it is a target, not a path for gradients: Darknet's
``rescore=1``), 0 for all other predictors, and ``p^_i(c)`` the one-hot class of the cell's
object. ``yolo_v1_loss`` computes the five terms, one line each, marked ``# term 1`` ..
``# term 5`` in the order above, and returns them under the names on the right (the
trainer sums and logs them). Normalisation: each term is summed over cells and predictors
and divided by the batch size N. That is what Darknet does: its cost is the sum over the
batch and its update uses ``learning_rate / batch``, i.e. the gradient of the per-image mean.

Test time (section 2, "At test time"; ``postprocess``): class-specific confidence
``Pr(class_c | object) * conf = Pr(class_c) * IoU`` for each of the S S B boxes and C
classes. The network's outputs are linear, so both factors can stray outside [0, 1]; each
is clipped to [0, 1] first (otherwise a negative probability times a negative confidence
would score high). Then ``select_detections``: boxes scaled to the image's pixels and
clipped to it, score threshold (0.05), per-class NMS (IoU 0.5), top 100.

Scaled for Shapes (the paper: 448 px VOC images, S = 7, 64-pixel cells, a 24-layer network
with 4096-unit fc):

- **Input 64 px** (``small``): every image is resized (bilinear) to 64 x 64, as the paper
  resizes to 448; boxes are predicted relative to the image, so they map back to any
  size. Shapes is generated at 128 px; at 64 its objects are 5-45 px. The reason is the
  budget: a training step costs 0.15 s instead of 0.52 s at 128 px, so the 15 minutes of
  the results table hold 30 epochs instead of 13, and YOLO v1 is starved of updates (next
  item). Measured with the rest of this preset, batches of 16: 128 px, 2 + 13 epochs: val
  mAP@0.5 0.483; 64 px, 2 + 30 epochs: 0.723 (with batches of 8, 2 + 28 epochs: 0.733;
  the later default schedules are in ``train_det.DEFAULTS``). ``large`` keeps 128 px.
- **S = 4**: 32-pixel cells, B = 2. The last fully connected layer gives every cell its
  own weights, so a cell learns only from the objects whose centres fall in it: 2,000
  training images with 2.5 objects each give a cell of an 8 x 8 grid about 77 distinct
  objects, fewer than the 2,048 inputs of the first fc layer at 128 px, and a 4 x 4 cell
  about 300 (the paper's cells see ~16 k VOC images x 135 epochs of augmentation).
  Measured, three epochs of detection after the pre-training below, at 128 px, val
  mAP@0.5: S = 8 0.187, S = 4 0.203, the classification loss lower and the coordinates
  learnt much faster at S = 4. The
  price: two centres share a cell for 5.5 % of the objects (S = 8: 0.9 %); a cell then
  trains on the larger object only, and at test time its B = 2 boxes share one class
  distribution. Objects are 10-89 px (``sqrt(w h)``, median 36), so 0.3-2.8 cells.
- **Backbone** ``small``: widths (16, 32, 64, 128), depths (1, 1, 2, 2) of 3x3 convs with
  batch norm (YOLO v2's addition; it lets Adam train from scratch) and leaky ReLU 0.1, 2x2
  max pool after each stage (64 -> 4), a 1x1 reduction to 32 channels (the paper's 1x1
  reduction layers), fc 512 -> 1024 -> 208 (1.03 M parameters, 0.53 M of them in the first
  fc). ``large`` doubles the widths, the reduction and the fc and has two convs in stage 2.
  ``tiny`` (32 px, S = 4) is for tests.
- **Pre-training** (``BackbonePretrainer``, ``train-det --pretrain-epochs``, 2 by default):
  the paper pre-trains its first 20 conv layers as an ImageNet classifier; Shapes has no
  ImageNet, so the 3x3 stages learn to classify crops of the training images (an object in
  the middle, or background) first. Measured over three detection epochs (S = 8, 128
  px): val mAP@0.5 0.099 without, 0.187 with (the pre-training took 2 epochs' time).
- **Augmentation** (``train-det --augment yolo``, the default; ``data/augment.py``): the
  paper's random scaling and translation of up to 20 % and exposure / saturation up to
  1.5x, plus flips. Translations move objects between cells, which is what the per-cell
  weights of the fc layer need most.
- **No dropout** in the presets (the paper: 0.5 after the first fc): with it the fc layers
  learnt half as fast (3 epochs, S = 8, 128 px, hidden 1024: mAP 0.044 with 0.5, 0.099
  without); the augmentation regularises instead. A hidden width of 256 (the first guess) learnt
  slower still (0.010 after 3 of 10 epochs).
- Inputs are normalised as for every model here (``data/normalization.py``: (x/255 - 0.5)
  / 0.25 per channel); batch norm follows every conv, so no other scaling is needed.
"""
from __future__ import annotations

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd import Tensor, default_generator, no_grad
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.backend import get_array_module
from scratchvision.nets.detection.images import resize_images
from scratchvision.nets.detection.postprocess import select_detections
from scratchvision.nets.detection.targets import check_targets
from scratchvision.validation import to_numpy

__all__ = ["SIZES", "BackbonePretrainer", "YOLOv1", "assign_predictors", "decode",
           "encode_targets", "yolo_v1_loss"]

SIZES = {
    "small": {"widths": (16, 32, 64, 128), "depths": (1, 1, 2, 2), "reduce_channels": 32,
              "hidden": 1024, "grid_size": 4, "input_size": 64, "dropout": 0.0},
    "large": {"widths": (32, 64, 128, 256), "depths": (1, 2, 2, 2), "reduce_channels": 64,
              "hidden": 2048, "grid_size": 4, "input_size": 128, "dropout": 0.0},
    "tiny": {"widths": (4, 8, 8), "depths": (1, 1, 1), "reduce_channels": 4, "hidden": 32,
             "grid_size": 4, "input_size": 32, "dropout": 0.0},
}


# ----------------------------------------------------------------------------- geometry
def _cell_offsets(s: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, S, 1) column index j and row index i of every cell, to broadcast over B."""
    i, j = np.meshgrid(np.arange(s, dtype=np.float64), np.arange(s, dtype=np.float64),
                       indexing="ij")
    return j[..., None], i[..., None]


def decode(boxes: np.ndarray) -> np.ndarray:
    """(N, S, S, B, 4) (x, y, sqrt w, sqrt h) -> (N, S, S, B, 4) x1y1x2y2 relative to the
    image: ``cx = (j + x) / S``, ``w = (sqrt w)^2`` (see the module docstring)."""
    b = np.asarray(boxes, np.float64)
    s = b.shape[1]
    j, i = _cell_offsets(s)
    cx, cy = (j + b[..., 0]) / s, (i + b[..., 1]) / s
    w, h = b[..., 2] ** 2, b[..., 3] ** 2
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of x1y1x2y2 boxes (..., 4) and (..., 4) (0 where the union is 0)."""
    iw = (np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])).clip(0)
    ih = (np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])).clip(0)
    inter = iw * ih
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) \
        + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _cxcywh(b: np.ndarray) -> np.ndarray:
    """x1y1x2y2 (..., 4) -> (cx, cy, w, h) (..., 4)."""
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2,
                     b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)


# ----------------------------------------------------------------------------- targets
def encode_targets(targets: list, image_sizes: list, grid_size: int, num_classes: int) -> dict:
    """The grid targets of a batch (section 2.2; see the module docstring).

    Parameters
    ----------
    targets : validated per-image dicts (``check_targets``): ``boxes`` (K, 4) x1y1x2y2 in
        the image's pixels, ``labels`` (K,) in 1..num_classes - 1.
    image_sizes : (h, w) of each image.
    grid_size : S.
    num_classes : classes including background; the cells predict C = num_classes - 1.

    Returns
    -------
    dict of host arrays: ``obj`` (N, S, S) bool, the cells holding an object; ``boxes``
    (N, S, S, 4) its (x, y, sqrt w, sqrt h) target (x, y: offsets in the cell, w, h:
    fractions of the image); ``gt`` (N, S, S, 4) its box x1y1x2y2 relative to the image;
    ``classes`` (N, S, S, C) its one-hot class. Zeros where ``obj`` is False.
    """
    s, c, n = int(grid_size), int(num_classes) - 1, len(targets)
    out = {"obj": np.zeros((n, s, s), bool), "boxes": np.zeros((n, s, s, 4)),
           "gt": np.zeros((n, s, s, 4)), "classes": np.zeros((n, s, s, c))}
    area = np.zeros((n, s, s))
    for k, (t, (h, w)) in enumerate(zip(targets, image_sizes)):
        boxes = np.asarray(t["boxes"], np.float64).reshape(-1, 4) / [w, h, w, h]
        for box, label in zip(boxes, np.asarray(t["labels"]).reshape(-1)):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            bw, bh = box[2] - box[0], box[3] - box[1]
            # the cell containing the centre: [j / S, (j + 1) / S) is cell j, so a centre
            # on a border (S cx an integer) goes to the right / lower cell, offset 0
            j, i = min(int(np.floor(cx * s)), s - 1), min(int(np.floor(cy * s)), s - 1)
            if out["obj"][k, i, j] and bw * bh <= area[k, i, j]:
                continue                     # one object per cell: the larger one keeps it
            out["obj"][k, i, j] = True
            area[k, i, j] = bw * bh
            out["boxes"][k, i, j] = [cx * s - j, cy * s - i, np.sqrt(bw), np.sqrt(bh)]
            out["gt"][k, i, j] = box
            out["classes"][k, i, j] = 0.0
            out["classes"][k, i, j, int(label) - 1] = 1.0
    return out


def assign_predictors(pred_boxes: np.ndarray, encoded: dict) -> tuple[np.ndarray, np.ndarray]:
    """Which of each cell's B predictors is responsible for its object, and its IoU.

    Parameters
    ----------
    pred_boxes : (N, S, S, B, 4) predicted (x, y, sqrt w, sqrt h) (host array, no graph).
    encoded : ``encode_targets``'s dict.

    Returns
    -------
    responsible (N, S, S, B) bool (one True per cell with an object, none elsewhere) and
    iou (N, S, S, B) float64: each predictor's IoU with its cell's object (0 in empty cells).
    """
    pred = decode(pred_boxes)                                            # (N, S, S, B, 4)
    gt = encoded["gt"][:, :, :, None, :]                                 # (N, S, S, 1, 4)
    obj = encoded["obj"]
    iou = np.where(obj[..., None], _iou(pred, gt), 0.0)                  # (N, S, S, B)
    # no predictor overlaps: the nearest by RMSE of (cx, cy, w, h) (Darknet's fallback)
    rmse = np.sqrt(((_cxcywh(pred) - _cxcywh(gt)) ** 2).sum(axis=-1))   # (N, S, S, B)
    best = np.where(iou.max(axis=-1) > 0, iou.argmax(axis=-1), rmse.argmin(axis=-1))
    responsible = (np.arange(pred.shape[3]) == best[..., None]) & obj[..., None]
    return responsible, iou


# ----------------------------------------------------------------------------- the loss
def yolo_v1_loss(output, encoded: dict, responsible, iou, lambda_coord: float = 5.0,
                 lambda_noobj: float = 0.5) -> dict:
    """Equation 3 of the paper, term by term (see the module docstring), per image.

    Parameters
    ----------
    output : (N, S, S, 5B + C) Tensor, the network's raw (linear) output.
    encoded : ``encode_targets``'s dict; responsible, iou : ``assign_predictors``'s arrays
        (constants: the IoU target carries no gradient).

    Returns
    -------
    ``{'loss_xy', 'loss_wh', 'loss_obj', 'loss_noobj', 'loss_cls'}``: scalar Tensors, each
    summed over cells and predictors and divided by the batch size N.
    """
    b = responsible.shape[-1]
    if output.ndim != 4 or output.shape[1] != output.shape[2] or output.shape[3] <= 5 * b:
        raise ValueError(f"output must be (N, S, S, 5B + C) with B = {b}, got "
                         f"{tuple(output.shape)}")
    n, s, _, _ = output.shape
    if responsible.shape != (n, s, s, b) or encoded["obj"].shape != (n, s, s):
        raise ValueError(f"targets are for a grid {encoded['obj'].shape} with B = {b}, the "
                         f"output is {tuple(output.shape)}")
    xp = get_array_module(output.data)

    def const(a):                                   # a host array as a graph constant
        return Tensor(xp.asarray(a, dtype=output.dtype))

    boxes = output[..., :5 * b].reshape(n, s, s, b, 5)                   # (N, S, S, B, 5)
    probs = output[..., 5 * b:]                                          # (N, S, S, C)
    resp = const(responsible)                                            # 1^obj_ij
    noobj = const(~np.asarray(responsible))                              # 1^noobj_ij
    obj_cell = const(encoded["obj"][..., None])                          # 1^obj_i
    t = const(np.broadcast_to(encoded["boxes"][:, :, :, None, :], (n, s, s, b, 4)))
    conf = boxes[..., 4]
    xy_err = ((boxes[..., 0:2] - t[..., 0:2]) ** 2).sum(dim=-1)          # (N, S, S, B)
    wh_err = ((boxes[..., 2:4] - t[..., 2:4]) ** 2).sum(dim=-1)
    loss_xy = lambda_coord * (resp * xy_err).sum() / n                   # term 1
    loss_wh = lambda_coord * (resp * wh_err).sum() / n                   # term 2
    loss_obj = (resp * (conf - const(iou)) ** 2).sum() / n               # term 3, C^ = IoU
    loss_noobj = lambda_noobj * (noobj * conf ** 2).sum() / n            # term 4, C^ = 0
    loss_cls = (obj_cell * (probs - const(encoded["classes"])) ** 2).sum() / n   # term 5
    return {"loss_xy": loss_xy, "loss_wh": loss_wh, "loss_obj": loss_obj,
            "loss_noobj": loss_noobj, "loss_cls": loss_cls}


@register_gradcheck("yolo_v1_loss")
def _loss_case(rng):
    # a 3 x 3 grid, B = 2, C = 2, two images (one cell of the first holds two objects);
    # the assignment (responsible predictors and their IoU targets) is computed once from
    # the initial output and held fixed while gradcheck perturbs it, as the detached IoU
    # target is a constant to the gradient in training
    s, b, c = 3, 2, 2
    out = rng.uniform(0.1, 0.9, (2, s, s, 5 * b + c))
    targets = [{"boxes": np.array([[10.0, 12.0, 40.0, 30.0], [50.0, 55.0, 58.0, 60.0]]),
                "labels": np.array([1, 2])},
               {"boxes": np.array([[20.0, 40.0, 60.0, 59.0]]), "labels": np.array([2])}]
    encoded = encode_targets(targets, [(60, 60), (60, 60)], s, c + 1)
    responsible, iou = assign_predictors(out[..., :5 * b].reshape(2, s, s, b, 5)[..., :4],
                                         encoded)

    def fn(x):
        return tuple(yolo_v1_loss(x, encoded, responsible, iou).values())
    return fn, [out]


# ----------------------------------------------------------------------------- pre-training
class BackbonePretrainer(nn.Module):
    """The paper's classification pre-training of the convolutional layers (section 2.2),
    on crops of the detection images, since Shapes has no ImageNet.

    The paper trains its first 20 convolutional layers "followed by a average-pooling
    layer and a fully connected layer" on ImageNet (one centred object per image, at half
    the detection resolution), then adds the remaining layers with random weights. Here
    each training image gives one crop per object and as many background crops, the
    ImageNet-like task "what is in the middle of this window":

    - an object crop is the square window of side ``2 max(w, h)`` (at least 16 px) centred
      on its box, so the object fills about half of it, as ImageNet objects do;
    - a background crop is a window of the same size range at a random place whose IoU
      with every box is below 0.3 (up to 20 draws; none when every draw overlaps);
    - every crop is resampled to ``crop_size`` x ``crop_size`` (default: half the network's
      input, so an object keeps about its size in the input, as a median object fills
      about half its window) by ``roi_align`` on the normalised, resized input.

    The backbone's 3x3 stages (``backbone[:-1]``, shared with the detector, so training
    this module trains the detector's stages), global average pooling and a linear layer
    classify the crops into C + 1 classes (background = 0) with cross-entropy. The 1x1
    reduction and both fully connected layers keep their initial weights, as the paper's
    added layers. The linear layer is not part of the detector and is not saved with it.
    The background windows are drawn from ``scratchvision``'s default generator (seeded by
    ``manual_seed``, saved in the trainer's checkpoints, so a resumed run draws the same).
    """

    def __init__(self, detector: "YOLOv1", crop_size: int | None = None) -> None:
        super().__init__()
        self.stages = detector.backbone[:-1]
        channels = detector.backbone[-1][0].in_channels        # the 1x1 reduction's input
        self.num_classes = detector.num_classes
        self.crop_size = detector.input_size // 2 if crop_size is None else int(crop_size)
        self.classifier = nn.Linear(channels, detector.num_classes)
        self.detector = [detector]                             # not a submodule: not saved

    def windows(self, targets: list, sizes: list) -> tuple[np.ndarray, np.ndarray]:
        """(K, 5) ``[image, x1, y1, x2, y2]`` crop windows and their (K,) labels."""
        rng = default_generator()          # seeded by manual_seed, kept in checkpoints
        rows, labels = [], []
        for k, (t, (h, w)) in enumerate(zip(targets, sizes)):
            boxes = np.asarray(t["boxes"], np.float64).reshape(-1, 4)
            for box, label in zip(boxes, np.asarray(t["labels"]).reshape(-1)):
                side = max(16.0, 2.0 * max(box[2] - box[0], box[3] - box[1]))
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                rows.append([k, cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
                labels.append(int(label))
            for _ in range(len(boxes)):
                for _ in range(20):
                    side = rng.uniform(16.0, max(17.0, min(h, w) / 2))
                    x1, y1 = rng.uniform(0, w - side), rng.uniform(0, h - side)
                    win = np.array([x1, y1, x1 + side, y1 + side])
                    if len(boxes) == 0 or _iou(boxes, win).max() < 0.3:
                        rows.append([k, *win])
                        labels.append(0)
                        break
        return np.asarray(rows, np.float32).reshape(-1, 5), np.asarray(labels, np.int64)

    def loss(self, images, targets) -> dict:
        """``{'loss_pretrain'}``: cross-entropy of the crops' classes (see the class doc)."""
        from scratchvision.ops import roi_align  # noqa: PLC0415
        x, sizes = self.detector[0].inputs(images)
        targets = check_targets(targets, sizes, self.num_classes)
        size = self.detector[0].input_size                      # boxes into the resized input
        resized = [{"boxes": np.asarray(t["boxes"], np.float64).reshape(-1, 4)
                    * [size / w, size / h, size / w, size / h], "labels": t["labels"]}
                   for t, (h, w) in zip(targets, sizes)]
        rows, labels = self.windows(resized, [(size, size)] * len(sizes))
        if len(rows) == 0:
            return {"loss_pretrain": (self.classifier.weight * 0.0).sum()}
        xp = get_array_module(x.data)
        crops = roi_align(x.detach(), Tensor(xp.asarray(rows)), self.crop_size, aligned=True)
        logits = self.classifier(F.adaptive_avg_pool2d(self.stages(crops), 1).flatten(1))
        return {"loss_pretrain": F.cross_entropy(logits, Tensor(xp.asarray(labels)))}


# ----------------------------------------------------------------------------- the model
def conv_bn_leaky(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """conv (no bias) -> batch norm -> leaky ReLU(0.1), 'same' padding."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2,
                                   bias=False),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1))


class YOLOv1(nn.Module):
    """YOLO v1: a conv backbone and two fully connected layers regress an S x S x (5B + C)
    grid of boxes, confidences and class probabilities (see the module docstring).

    Parameters
    ----------
    num_classes : classes including background (Shapes: 4); each cell predicts the
        C = num_classes - 1 foreground classes.
    widths, depths : channels and number of 3x3 convs of each backbone stage; every stage
        ends in a 2x2 max pool, so the last map is input_size / 2 ** len(widths) wide.
    reduce_channels : the 1x1 conv after the stages (the channels that are flattened).
    hidden : width of the first fully connected layer (the paper: 4096).
    grid_size : S; boxes_per_cell : B.
    input_size : images are resized to this square size (the paper: 448).
    first_conv : (kernel, stride) of the first conv (the paper's: a 7x7 conv with stride 2
        before its first max pool); the other convs are 3x3 with stride 1.
    last_pool : False drops the max pool after the last stage, so the map the fully
        connected layers see is twice as wide.
    dropout : after the first fully connected layer (the paper: 0.5).
    lambda_coord, lambda_noobj : the loss weights (the paper: 5 and 0.5).
    score_thresh, nms_thresh, detections_per_img : ``select_detections``.
    """

    uses_proposals = False

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128), depths=(1, 1, 2, 2),
                 reduce_channels: int = 32, hidden: int = 256, grid_size: int = 8,
                 boxes_per_cell: int = 2, input_size: int = 128, first_conv=(3, 1),
                 last_pool: bool = True, dropout: float = 0.5,
                 lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
                 score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got "
                             f"{num_classes}")
        if len(widths) != len(depths) or not widths or min(depths) < 1:
            raise ValueError(f"widths {widths} and depths {depths} need one entry (>= 1 conv) "
                             "per stage")
        if grid_size < 1 or boxes_per_cell < 1:
            raise ValueError(f"grid_size and boxes_per_cell must be >= 1, got {grid_size}, "
                             f"{boxes_per_cell}")
        first_kernel, first_stride = (int(v) for v in first_conv)
        if first_kernel < 1 or first_stride < 1:
            raise ValueError(f"first_conv (kernel, stride) must be >= 1, got {first_conv}")
        stride = 2 ** (len(widths) - (not last_pool)) * first_stride
        if input_size < stride or input_size % stride:
            raise ValueError(f"input_size must be a multiple of the backbone's stride "
                             f"{stride} (first_conv's stride x 2 ** len(widths)), got "
                             f"{input_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_classes, self.grid_size, self.boxes_per_cell = num_classes, grid_size, \
            boxes_per_cell
        self.input_size = int(input_size)
        self.lambda_coord, self.lambda_noobj = float(lambda_coord), float(lambda_noobj)
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        layers, c = [], 3
        for width, depth in zip(widths, depths):
            for _ in range(depth):
                first = not layers
                layers.append(conv_bn_leaky(c, width, first_kernel if first else 3,
                                            first_stride if first else 1))
                c = width
            layers.append(nn.MaxPool2d(2, 2))
        if not last_pool:
            layers.pop()
        layers.append(conv_bn_leaky(c, reduce_channels, 1))
        self.backbone = nn.Sequential(*layers)
        m = self.input_size // stride
        self.cell_outputs = 5 * boxes_per_cell + num_classes - 1       # 5B + C
        self.fc1 = nn.Linear(reduce_channels * m * m, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, grid_size * grid_size * self.cell_outputs)

    def forward(self, x):
        """(N, 3, input_size, input_size) -> (N, S, S, 5B + C), linear outputs."""
        f = self.backbone(x).flatten(1)
        f = self.drop(F.leaky_relu(self.fc1(f), 0.1))
        s = self.grid_size
        return self.fc2(f).reshape(-1, s, s, self.cell_outputs)

    def inputs(self, images) -> tuple[Tensor, list]:
        """The images resized to the network's square input (bilinear, as the paper resizes
        to 448), and each image's true (h, w)."""
        return resize_images(images, self.input_size)

    def pretrainer(self) -> BackbonePretrainer:
        """The classification pre-training module of this detector's stages (see
        ``BackbonePretrainer``); ``train-det`` trains it for ``--pretrain-epochs`` first."""
        return BackbonePretrainer(self)

    def loss(self, images, targets) -> dict:
        """``{'loss_xy', 'loss_wh', 'loss_obj', 'loss_noobj', 'loss_cls'}`` (equation 3)."""
        x, sizes = self.inputs(images)
        targets = check_targets(targets, sizes, self.num_classes)
        out = self(x)
        encoded = encode_targets(targets, sizes, self.grid_size, self.num_classes)
        b = self.boxes_per_cell
        pred = to_numpy(out)[..., :5 * b].reshape(*out.shape[:3], b, 5)[..., :4]
        responsible, iou = assign_predictors(pred, encoded)
        return yolo_v1_loss(out, encoded, responsible, iou, self.lambda_coord,
                            self.lambda_noobj)

    def postprocess(self, output, image_sizes: list) -> list:
        """(N, S, S, 5B + C) outputs -> per image ``{'boxes', 'scores', 'labels'}``: class
        confidence Pr(class | object) x conf for every box and class (both clipped to
        [0, 1]), boxes in the image's pixels, then ``select_detections``."""
        out = to_numpy(output).astype(np.float64)
        n, s, _, _ = out.shape
        b = self.boxes_per_cell
        boxes = out[..., :5 * b].reshape(n, s, s, b, 5)
        rel = decode(boxes[..., :4]).reshape(n, s * s * b, 4)              # (N, S S B, 4)
        conf = boxes[..., 4].clip(0, 1)[..., None]                         # (N, S, S, B, 1)
        probs = out[..., 5 * b:].clip(0, 1)[:, :, :, None, :]              # (N, S, S, 1, C)
        scores = (probs * conf).reshape(n, s * s * b, -1)                  # (N, S S B, C)
        results = []
        for k, (h, w) in enumerate(image_sizes):
            results.append(select_detections(rel[k] * [w, h, w, h], scores[k], (h, w),
                                             self.score_thresh, self.nms_thresh,
                                             self.detections_per_img))
        return results

    def predict(self, images) -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` Tensors, boxes in input-image pixels."""
        with no_grad():
            x, sizes = self.inputs(images)
            return self.postprocess(self(x), sizes)
