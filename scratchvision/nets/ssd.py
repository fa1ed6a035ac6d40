"""SSD (Liu, Anguelov, Erhan, Szegedy, Reed, Fu, Berg, "SSD: Single Shot MultiBox Detector",
ECCV 2016).

One network, one pass: small 3x3 conv predictors on several feature maps of decreasing
size score every *default box* (boxes of a few fixed scales and aspect ratios centred on
every cell of every map) for each class and regress four offsets from it (section 2.1,
figure 2)::

    image (3, h, w) -> resize to input_size x input_size (the paper: 300; here 128)
      -> VGG-style backbone: stages of 3x3 conv + BN + ReLU, a 2x2 max pool before each
         stage but the first; the last ``sources`` stages are source maps
             stage 3, stride 4:   32 x 32, 64 channels           source 1 (conv4_3's role)
             stage 4, stride 8:   16 x 16, 128 channels          source 2
             stage 5, stride 16:   8 x 8, 128 channels           source 3 (fc7's role)
      -> extra layers (section 2.1, "Multi-scale feature maps"), each a 1x1 conv to c/2
         then a 3x3 conv stride 2 (padding 1: f -> ceil(f / 2)), BN + ReLU after each
             4 x 4, 2 x 2, 1 x 1 (strides 32, 64, 128)       sources 4, 5, 6
      -> on source k: a 3x3 conv -> A_k (C + 1) class scores and a 3x3 conv -> 4 A_k offsets
      -> concatenated: scores (N, D, C + 1) and offsets (N, D, 4)                (``forward``)

**Layout of the D default boxes** (the index arithmetic every function here shares; it is
torchvision's ``DefaultBoxGenerator`` / ``SSDHead`` order). Map k (k = 1..m) is
f_k x f_k cells with A_k boxes each; box a of cell (row i, column j) of map k is row::

    d = O_k + (i f_k + j) A_k + a,     O_k = sum_{l < k} f_l^2 A_l

(for "small": f = 32, 16, 8, 4, 2, 1 and A = 4, 6, 6, 6, 4, 4, so O = 0, 4096, 5632, 6016,
6112, 6128 and D = 6132). A predictor's output channel ``a (C + 1) + c`` (scores) or
``4 a + t`` (offsets) at (i, j) belongs to box d: the head's (N, A_k K, f_k, f_k) output
is viewed as (N, A_k, K, f_k, f_k) and permuted to (N, f_k, f_k, A_k, K) -> (N, f_k^2 A_k, K).

**Default boxes** (section 2.2, "Choosing scales and aspect ratios for default boxes";
``default_box_scales``, ``default_aspect_ratios``). Map k has scale (a fraction of the image
side)::

    s_k = s_min + (s_max - s_min) (k - 1) / (m - 1),   k = 1..m

and its boxes, in this order a = 0, 1, ..., all centred on ((j + 0.5) / f_k, (i + 0.5) / f_k)::

    a = 0:  s_k x s_k                              (ratio 1)
    a = 1:  s'_k x s'_k,  s'_k = sqrt(s_k s_{k+1})  (the extra box of ratio 1)
    a = 2, 3:  w = s_k sqrt(r), h = s_k / sqrt(r) for r = 2, then for r = 1/2
    a = 4, 5:  the same for r = 3 and r = 1/3       (not on the first and last two maps)

widths and heights clipped to [0, 1] (torchvision's ``clip=True``; it only touches the
r = 2 boxes of the last two maps here). As SSD300, the first map and the last two carry only
{1, 2, 1/2} (A = 4), the others {1, 2, 3, 1/2, 1/3} (A = 6). ``ops.DefaultBoxGenerator``
builds them: its own scale rule, ``min_ratio + (max_ratio - min_ratio) k / (m - 1)`` for
k = 0..m-1, is the paper's formula with k counted from 0, but it appends s_{m+1} = 1 for the
last map's extra box, which the paper leaves undefined; here the ``scales`` passed to it
continue the paper's formula to k = m + 1 (s_{m+1} = s_max + (s_max - s_min) / (m - 1)), as
the SSD300 Caffe model does (its last map's max_size is 315 px = 1.05 x 300, one step of
0.17 past s_max = 0.88).

**Matching** (section 2.2, "Matching strategy"; ``match``): first each ground truth takes
its best default box, even when their IoU is below 0.5, greedily as the Caffe code's
bipartite step does (the overall best (ground truth, box) pair is matched, both leave the
pool, repeat), so two objects never share one box; then every other default box with IoU
>= 0.5 with some ground truth takes the one it overlaps most (IoU exactly 0.5 counts, as in
Caffe's ``MatchBBox`` and torchvision's ``Matcher``; the paper says "higher than 0.5"; ties
go to the first ground truth). Boxes left unmatched are background (label 0). torchvision's
``SSDMatcher`` forces each ground truth's argmax box too, but lets a later object take a box
two objects share; the greedy order cannot lose an object that way.

**Encoding** (``encode_targets``; the paper's equation 2 with the Caffe code's variances
(0.1, 0.2), i.e. ``ops.BoxCoder`` with weights (1/0.1, 1/0.1, 1/0.2, 1/0.2) = (10, 10, 5, 5),
as torchvision's SSD): for a default box d (centre, width, height in pixels) and its ground
truth g::

    l_cx = (g_cx - d_cx) / (0.1 d_w)    l_cy = (g_cy - d_cy) / (0.1 d_h)
    l_w  = log(g_w / d_w) / 0.2         l_h  = log(g_h / d_h) / 0.2

and ``decode`` inverts it (``BoxCoder.decode_single``, which clamps l_w, l_h at
log(1000 / 16) so that ``exp`` cannot overflow).

**The loss** (equations 1 and 3; ``ssd_loss``), with N the number of matched (positive)
default boxes of the batch::

    L = (1 / N) [ sum_{d in Pos} sum_{t in cx,cy,w,h} smooth_L1(l^t_d - g^t_d)     loss_box_reg
                + sum_{d in Pos} -log softmax(c_d)_{label d}
                + sum_{d in Neg} -log softmax(c_d)_0 ]                        loss_classifier

(alpha = 1; smooth L1 with beta = 1, Fast R-CNN's) and L = 0 when N = 0, as the paper
says. **Hard negative mining** (section 2.2; ``hard_negative_mining``) chooses Neg: of an
image's background boxes, those with the largest confidence loss -log softmax(c)_0 (the
cross-entropy each would contribute), at most 3 per positive *of that image*; all of them
when the image has fewer. Ranking uses the detached scores (a choice, not a path for
gradients), ties broken by the lower box index, so the choice is a function of the batch.

**Test time** (section 3.7, "Inference time": a confidence threshold of 0.01, NMS at
jaccard overlap 0.45 per class, the top 200 detections an image; ``postprocess``): softmax
over the C + 1 scores of every box; per class, the 400 best boxes (the Caffe code's
``nms_top_k``, torchvision's ``topk_candidates``; it bounds the cost of NMS while the model
is still untrained) go to ``select_detections`` with the boxes decoded and scaled to the
image's pixels: score > 0.01, per-class NMS at IoU 0.45, the top 200.

**Scaled for Shapes** (128 px images, objects 10-89 px, ``sqrt(w h)`` of their boxes, median
36; 1-4 objects; box aspect ratios w/h between 0.64 and 1.56 for 98 % of them):

- **Six maps, 32 x 32 down to 1 x 1** (strides 4, 8, 16, 32, 64, 128). The paper's first map
  (38 x 38 of 300 px, stride 8) has 30 px boxes for VOC's large objects; Shapes has many
  small ones (16 % of its boxes are under 20 px), and at stride 8 a 12.8 px default box can
  sit 4 px off a 10 px object's centre, where their IoU falls to 0.26. Measured on the
  5,084 boxes of the 2,000 training images (each box's best IoU with any default box):
  starting at 16 x 16 (five maps, s_min = 0.1, s_max = 0.9) 95.7 % of the boxes have a
  default box with IoU > 0.5, but only 80 % of those under 20 px; starting at 32 x 32 (six
  maps, the scales below) **99.9 %** of all boxes do, and 99.5 % of those under 20 px. The
  finer map costs 14 % more multiply-adds (198 M an image against 174 M: the 32 x 32 map's
  predictors) and 4,608 more default boxes. A ground truth still gets a default box through
  the first matching step when no IoU reaches 0.5; a median object gets 14 positive boxes.
- **s_min = 0.1, s_max = 0.9**: the smallest boxes are 12.8 px (the smallest objects are
  10-15 px: 1st to 5th percentile 11.5-14.9); the scales are 12.8, 33.3, 53.8, 74.2, 94.7,
  115.2 px (the extra boxes 20.6, 42.3, 63.2, 83.9, 104.5, 125.0 px). Measured fractions
  of boxes with IoU > 0.5 at six maps: s_min 0.07 -> 99.8 %, 0.1 -> 99.9 %, 0.15 ->
  96.1 %, 0.2 -> 87.4 %; s_max 0.75 or 0.9 changes that by under 0.1 %, but the zoom-in
  crops of the augmentation make objects larger than any in the data (6.8 % of the
  augmented training boxes are over 89 px, up to the whole image): s_max = 0.9 gives all
  of those a default box with IoU > 0.5, 0.75 misses 2 % of them. s_max stays below 1 so
  that the 1 x 1 map's boxes are not all the whole image.
- **No L2Norm** on the first source map. The paper rescales conv4_3 (L2 normalisation with
  a learnable per-channel scale, initialised to 20; section 3.1, after ParseNet) because in
  VGG-16, which has no batch norm, its features have a different scale from the deeper
  layers'. Here every conv is followed by batch norm, which normalises each channel and
  learns its scale (gamma): every source map already comes at a controlled, learnable
  scale, which is what the L2Norm layer adds.
- **Backbone** ``small``: widths (16, 32, 64, 128, 128), depths (1, 1, 2, 2, 2) (the stages
  of YOLO v1's small backbone plus a fifth at 8 x 8 in the role of fc6/fc7), extras
  (64 -> 128) three times; batch norm after every conv lets Adam train it from scratch
  (no pretrained weights here). ``large`` doubles the widths (and has two convs in stage 2),
  ``tiny`` (32 px input, four maps 16 x 16 .. 2 x 2, a few channels) is for tests.
- Inputs are normalised as for every model here (``data/normalization.py``); training uses
  the paper's data augmentation (``data/augment.py``, ``train-det --augment ssd``).
"""
from __future__ import annotations

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd import Tensor, cat, no_grad
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.nets.detection.images import resize_images
from scratchvision.nets.detection.postprocess import select_detections
from scratchvision.nets.detection.targets import check_targets
from scratchvision.ops import BoxCoder, DefaultBoxGenerator, box_iou
from scratchvision.validation import to_numpy

__all__ = ["SIZES", "SSD", "decode", "default_aspect_ratios", "default_box_scales",
           "encode", "encode_targets", "hard_negative_mining", "match", "ssd_loss"]

SIZES = {
    "small": {"widths": (16, 32, 64, 128, 128), "depths": (1, 1, 2, 2, 2), "sources": 3,
              "extras": ((64, 128), (64, 128), (64, 128)), "input_size": 128},
    "large": {"widths": (32, 64, 128, 256, 256), "depths": (1, 2, 2, 2, 2), "sources": 3,
              "extras": ((128, 256), (128, 256), (128, 256)), "input_size": 128},
    "tiny": {"widths": (4, 8, 8), "depths": (1, 1, 1), "sources": 2,
             "extras": ((4, 8), (4, 8)), "input_size": 32},
}

VARIANCES = (0.1, 0.2)                       # the Caffe code's prior variances (centre, size)
CODER = BoxCoder((1 / VARIANCES[0], 1 / VARIANCES[0], 1 / VARIANCES[1], 1 / VARIANCES[1]))


# ----------------------------------------------------------------------------- default boxes
def default_box_scales(num_maps: int, s_min: float, s_max: float) -> list[float]:
    """s_1 .. s_{m+1}: ``s_k = s_min + (s_max - s_min)(k - 1)/(m - 1)``, continued to
    k = m + 1 for the last map's extra box (one map: [s_min, s_max])."""
    if num_maps < 1 or not 0 < s_min < s_max:
        raise ValueError(f"need num_maps >= 1 and 0 < s_min < s_max, got {num_maps}, "
                         f"{s_min}, {s_max}")
    if num_maps == 1:
        return [float(s_min), float(s_max)]
    step = (s_max - s_min) / (num_maps - 1)
    return [s_min + step * (k - 1) for k in range(1, num_maps + 2)]


def default_aspect_ratios(num_maps: int) -> list[list[int]]:
    """The extra ratios r of each map (each gives r and 1/r): [2] on the first map and the
    last two (SSD300's 4 boxes a cell), [2, 3] on the others (6 boxes)."""
    return [[2] if k == 0 or k >= num_maps - 2 else [2, 3] for k in range(num_maps)]


# ----------------------------------------------------------------------------- targets
def match(gt_boxes: np.ndarray, default_boxes: np.ndarray, iou_threshold: float = 0.5
          ) -> np.ndarray:
    """The ground truth each default box is matched to (section 2.2; module docstring).

    Parameters
    ----------
    gt_boxes : (G, 4) x1y1x2y2 ground truths; default_boxes : (D, 4) x1y1x2y2, same pixels.
    iou_threshold : a default box with IoU >= this with some ground truth is matched to it.

    Returns
    -------
    (D,) int64: the index of the matched ground truth, -1 for background.
    """
    g = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    d = np.asarray(default_boxes, np.float64)
    matches = np.full(len(d), -1, np.int64)
    if len(g) == 0:
        return matches
    iou = np.asarray(box_iou(g, d))                                     # (G, D)
    # step 1: each ground truth takes its best box, the overall best pair first
    free = iou.copy()
    for _ in range(len(g)):
        gi, di = np.unravel_index(int(np.argmax(free)), free.shape)
        if free[gi, di] <= 0:                   # no box overlaps the objects left
            break
        matches[di] = gi
        free[gi, :] = -1.0                      # this ground truth is matched,
        free[:, di] = -1.0                      # and this default box is taken
    # step 2: every other box with IoU >= threshold takes its best ground truth
    best_gt, best_iou = iou.argmax(axis=0), iou.max(axis=0)             # (D,), first on ties
    rest = (matches < 0) & (best_iou >= iou_threshold)
    matches[rest] = best_gt[rest]
    return matches


def encode(gt_boxes: np.ndarray, default_boxes: np.ndarray) -> np.ndarray:
    """(K, 4) ground truths against their (K, 4) default boxes -> (K, 4) offsets
    (l_cx, l_cy, l_w, l_h) with variances (0.1, 0.2) (module docstring)."""
    return np.asarray(CODER.encode_single(np.asarray(gt_boxes, np.float64),
                                          np.asarray(default_boxes, np.float64)))


def decode(offsets: np.ndarray, default_boxes: np.ndarray) -> np.ndarray:
    """(D, 4) offsets and (D, 4) x1y1x2y2 default boxes -> (D, 4) x1y1x2y2 boxes."""
    return np.asarray(CODER.decode_single(np.asarray(offsets, np.float64),
                                          np.asarray(default_boxes, np.float64)))


def encode_targets(targets: list, default_boxes: np.ndarray, iou_threshold: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per default box, the class and the offsets to learn.

    Parameters
    ----------
    targets : validated per-image dicts (``check_targets``): ``boxes`` (K, 4) x1y1x2y2 in
        the default boxes' pixels (the network's input), ``labels`` (K,) in 1..C.
    default_boxes : (D, 4) x1y1x2y2.

    Returns
    -------
    labels (N, D) int64 (0: background) and offsets (N, D, 4) float64 (0 for background).
    """
    d = np.asarray(default_boxes, np.float64)
    labels = np.zeros((len(targets), len(d)), np.int64)
    offsets = np.zeros((len(targets), len(d), 4))
    for n, t in enumerate(targets):
        boxes = np.asarray(t["boxes"], np.float64).reshape(-1, 4)
        matches = match(boxes, d, iou_threshold)                        # (D,)
        pos = np.flatnonzero(matches >= 0)
        labels[n, pos] = np.asarray(t["labels"]).reshape(-1)[matches[pos]]
        offsets[n, pos] = encode(boxes[matches[pos]], d[pos])
    return labels, offsets


def background_loss(cls_logits) -> np.ndarray:
    """(N, D, K) scores -> (N, D) confidence loss of background, -log softmax(c)_0, on
    the host (no graph: it only ranks the negatives)."""
    c = to_numpy(cls_logits).astype(np.float64)
    top = c.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(c - top).sum(axis=-1)) + top[..., 0]        # logsumexp
    return log_sum - c[..., 0]


def hard_negative_mining(neg_loss: np.ndarray, labels: np.ndarray, neg_pos_ratio: int = 3
                         ) -> np.ndarray:
    """The negatives that enter the loss (section 2.2, "Hard negative mining").

    Parameters
    ----------
    neg_loss : (N, D) each box's background confidence loss (``background_loss``).
    labels : (N, D) matched labels (0: background).
    neg_pos_ratio : negatives kept per positive of the same image (the paper: 3).

    Returns
    -------
    (N, D) bool: of each image's background boxes, the ``min(ratio * positives, negatives)``
    with the largest loss (equal losses: the lower box index first).
    """
    neg_loss, labels = np.asarray(neg_loss), np.asarray(labels)
    if neg_loss.shape != labels.shape or labels.ndim != 2:
        raise ValueError(f"neg_loss {neg_loss.shape} and labels {labels.shape} must both be "
                         "(N, D)")
    chosen = np.zeros(labels.shape, bool)
    for n in range(len(labels)):
        negatives = np.flatnonzero(labels[n] == 0)
        k = min(neg_pos_ratio * int((labels[n] > 0).sum()), len(negatives))
        order = np.argsort(-neg_loss[n, negatives], kind="stable")      # hardest first
        chosen[n, negatives[order[:k]]] = True
    return chosen


# ----------------------------------------------------------------------------- the loss
def ssd_loss(cls_logits, bbox_regression, labels: np.ndarray, offsets: np.ndarray,
             negatives: np.ndarray) -> dict:
    """Equation 1 with the mined negatives (see the module docstring).

    Parameters
    ----------
    cls_logits : (N, D, K) Tensor of class scores (K = C + 1, 0 the background).
    bbox_regression : (N, D, 4) Tensor of predicted offsets.
    labels, offsets : ``encode_targets``'s (N, D) and (N, D, 4) arrays.
    negatives : (N, D) bool, ``hard_negative_mining``'s choice (a constant).

    Returns
    -------
    ``{'loss_box_reg', 'loss_classifier'}``: scalar Tensors, each summed over its boxes and
    divided by the number of positives N (both 0 when N = 0).
    """
    if cls_logits.ndim != 3 or bbox_regression.shape != (*cls_logits.shape[:2], 4):
        raise ValueError(f"cls_logits must be (N, D, K) and bbox_regression (N, D, 4), got "
                         f"{tuple(cls_logits.shape)} and {tuple(bbox_regression.shape)}")
    n, d, k = cls_logits.shape
    if np.shape(labels) != (n, d) or np.shape(negatives) != (n, d) \
            or np.shape(offsets) != (n, d, 4):
        raise ValueError(f"labels, negatives (N, D) and offsets (N, D, 4) must match the "
                         f"scores' (N, D) = ({n}, {d}), got {np.shape(labels)}, "
                         f"{np.shape(negatives)} and {np.shape(offsets)}")
    labels = np.asarray(labels).reshape(-1)
    negatives = np.asarray(negatives).reshape(-1)
    pos = np.flatnonzero(labels > 0)                                    # rows of (N D)
    if len(pos) == 0:                                                   # N = 0: L = 0
        zero = cls_logits.sum() * 0.0 + bbox_regression.sum() * 0.0
        return {"loss_box_reg": zero, "loss_classifier": zero}
    chosen = np.flatnonzero((labels > 0) | negatives)                   # Pos and Neg
    cls = F.cross_entropy(cls_logits.reshape(n * d, k)[chosen], labels[chosen],
                          reduction="sum")
    box = F.smooth_l1_loss(bbox_regression.reshape(n * d, 4)[pos],
                           np.asarray(offsets).reshape(-1, 4)[pos], reduction="sum", beta=1.0)
    return {"loss_box_reg": box / len(pos), "loss_classifier": cls / len(pos)}


@register_gradcheck("ssd_loss")
def _loss_case(rng):
    # two images, 8 default boxes (a 2 x 2 map with 2 boxes a cell) on a 20 x 20 input, 3
    # classes with background; the first image has two objects, the second one. The
    # matching and the mined negatives are computed once from the first scores and held
    # fixed while gradcheck perturbs them (the mining is a choice, not differentiated)
    centres = np.array([[5, 5], [15, 5], [5, 15], [15, 15]], np.float64).repeat(2, axis=0)
    half = np.tile([[4.0, 4.0], [6.0, 3.0]], (4, 1))
    default = np.concatenate([centres - half, centres + half], axis=1)  # (8, 4)
    targets = [{"boxes": np.array([[1.0, 2.0, 9.0, 9.0], [10.0, 11.0, 19.0, 18.0]]),
                "labels": np.array([1, 2])},
               {"boxes": np.array([[9.0, 1.0, 20.0, 8.0]]), "labels": np.array([2])}]
    labels, offsets = encode_targets(targets, default)
    cls = rng.standard_normal((2, 8, 3))
    reg = rng.standard_normal((2, 8, 4)) * 0.5
    negatives = hard_negative_mining(background_loss(cls), labels)

    def fn(cls, reg):
        return tuple(ssd_loss(cls, reg, labels, offsets, negatives).values())
    return fn, [cls, reg]


# ----------------------------------------------------------------------------- the model
def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """conv (no bias) -> batch norm -> ReLU, 'same' padding (f -> ceil(f / stride))."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2,
                                   bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class SSD(nn.Module):
    """SSD: class scores and box offsets for every default box of several feature maps
    (see the module docstring).

    Parameters
    ----------
    num_classes : classes including background (Shapes: 4).
    widths, depths : channels and number of 3x3 convs of each backbone stage; a 2x2 max pool
        precedes every stage but the first, so stage s (from 0) has stride 2 ** s.
    sources : the last ``sources`` backbone stages are source maps.
    extras : (mid, out) channels of each extra layer (1x1 conv to mid, 3x3 stride-2 conv to
        out); each is a source map.
    input_size : images are resized to this square size (the paper: 300).
    s_min, s_max : the smallest and largest default box scale (fractions of the image).
    iou_threshold : matching threshold (the paper: 0.5); neg_pos_ratio : 3 in the paper.
    score_thresh, nms_thresh, detections_per_img, topk_candidates : test time (the paper:
        0.01, 0.45, 200; the Caffe code: 400 boxes a class before NMS).
    """

    uses_proposals = False

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128, 128), depths=(1, 1, 2, 2, 2),
                 sources: int = 3, extras=((64, 128), (64, 128), (64, 128)),
                 input_size: int = 128, s_min: float = 0.1, s_max: float = 0.9,
                 iou_threshold: float = 0.5, neg_pos_ratio: int = 3,
                 score_thresh: float = 0.01, nms_thresh: float = 0.45,
                 detections_per_img: int = 200, topk_candidates: int = 400) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got "
                             f"{num_classes}")
        if len(widths) != len(depths) or not widths or min(depths) < 1:
            raise ValueError(f"widths {widths} and depths {depths} need one entry (>= 1 conv) "
                             "per stage")
        if not 1 <= sources <= len(widths):
            raise ValueError(f"sources must be in 1..{len(widths)} (the backbone's stages), "
                             f"got {sources}")
        if any(len(e) != 2 or min(e) < 1 for e in extras):
            raise ValueError(f"extras must be (mid, out) channel pairs, got {extras}")
        stride = 2 ** (len(widths) - 1)
        if input_size < stride or input_size % stride:
            raise ValueError(f"input_size must be a multiple of the backbone's stride {stride} "
                             f"(2 ** (len(widths) - 1)), got {input_size}")
        self.num_classes, self.input_size = int(num_classes), int(input_size)
        self.iou_threshold, self.neg_pos_ratio = float(iou_threshold), int(neg_pos_ratio)
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img, self.topk_candidates = detections_per_img, topk_candidates
        self.first_source = len(widths) - sources
        self.stages = nn.ModuleList()
        c, channels, sizes = 3, [], []
        for s, (width, depth) in enumerate(zip(widths, depths)):
            layers = [nn.MaxPool2d(2, 2)] if s > 0 else []
            for _ in range(depth):
                layers.append(conv_bn_relu(c, width, 3))
                c = width
            self.stages.append(nn.Sequential(*layers))
            if s >= self.first_source:
                channels.append(c)
                sizes.append(self.input_size // 2 ** s)
        self.extras = nn.ModuleList()
        for mid, out in extras:
            self.extras.append(nn.Sequential(conv_bn_relu(c, mid, 1),
                                             conv_bn_relu(mid, out, 3, stride=2)))
            c = out
            channels.append(c)
            sizes.append(-(-sizes[-1] // 2))                   # 3x3 stride 2 pad 1: ceil
        self.feature_sizes = sizes
        m = len(sizes)
        self.anchor_generator = DefaultBoxGenerator(
            default_aspect_ratios(m), scales=default_box_scales(m, s_min, s_max))
        self.boxes_per_cell = self.anchor_generator.num_anchors_per_location()
        self.cls_heads = nn.ModuleList([nn.Conv2d(ch, a * num_classes, 3, padding=1)
                                        for ch, a in zip(channels, self.boxes_per_cell)])
        self.box_heads = nn.ModuleList([nn.Conv2d(ch, a * 4, 3, padding=1)
                                        for ch, a in zip(channels, self.boxes_per_cell)])
        # (D, 4) x1y1x2y2 in the input's pixels, in the layout of the module docstring
        square = np.zeros((1, 3, self.input_size, self.input_size), np.float32)
        maps = [np.zeros((1, 1, f, f), np.float32) for f in sizes]
        self.default_boxes = np.asarray(self.anchor_generator(square, maps)[0], np.float64)

    def _sources(self, x) -> list:
        """The source maps, finest first."""
        out = []
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s >= self.first_source:
                out.append(x)
        for extra in self.extras:
            x = extra(x)
            out.append(x)
        return out

    def forward(self, x) -> tuple[Tensor, Tensor]:
        """(N, 3, input_size, input_size) -> scores (N, D, K) and offsets (N, D, 4)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"x must be (N, 3, {self.input_size}, {self.input_size}), got "
                             f"{tuple(x.shape)}")
        n, scores, offsets = x.shape[0], [], []
        for f, cls_head, box_head in zip(self._sources(x), self.cls_heads, self.box_heads):
            # (N, A K, f, f) -> (N, A, K, f, f) -> (N, f, f, A, K) -> (N, f f A, K)
            c = cls_head(f)
            scores.append(c.reshape(n, -1, self.num_classes, *c.shape[2:])
                          .permute(0, 3, 4, 1, 2).reshape(n, -1, self.num_classes))
            b = box_head(f)
            offsets.append(b.reshape(n, -1, 4, *b.shape[2:]).permute(0, 3, 4, 1, 2)
                           .reshape(n, -1, 4))
        return cat(scores, dim=1), cat(offsets, dim=1)

    def inputs(self, images) -> tuple[Tensor, list]:
        """The images resized to the network's square input (bilinear), and each image's
        true (h, w)."""
        return resize_images(images, self.input_size)

    @staticmethod
    def _to_input_pixels(targets: list, sizes: list, size: int) -> list:
        """Ground-truth boxes scaled from each image's pixels to the square input's."""
        out = []
        for t, (h, w) in zip(targets, sizes):
            scale = np.array([size / w, size / h, size / w, size / h])
            out.append(dict(t, boxes=np.asarray(t["boxes"], np.float64) * scale))
        return out

    def loss(self, images, targets) -> dict:
        """``{'loss_box_reg', 'loss_classifier'}`` (equation 1, hard negatives at 3:1)."""
        x, sizes = self.inputs(images)
        targets = check_targets(targets, sizes, self.num_classes)
        cls_logits, bbox_regression = self(x)
        labels, offsets = encode_targets(
            self._to_input_pixels(targets, sizes, self.input_size), self.default_boxes,
            self.iou_threshold)
        negatives = hard_negative_mining(background_loss(cls_logits), labels,
                                         self.neg_pos_ratio)
        return ssd_loss(cls_logits, bbox_regression, labels, offsets, negatives)

    def postprocess(self, cls_logits, bbox_regression, image_sizes: list) -> list:
        """Scores (N, D, K) and offsets (N, D, 4) -> per image ``{'boxes', 'scores',
        'labels'}``: softmax, boxes decoded and scaled to the image's pixels, each class's
        ``topk_candidates`` best boxes, then ``select_detections``."""
        c = to_numpy(cls_logits).astype(np.float64)
        probs = np.exp(c - c.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)                      # (N, D, K)
        reg = to_numpy(bbox_regression).astype(np.float64)
        results = []
        for k, (h, w) in enumerate(image_sizes):
            scale = np.array([w, h, w, h]) / self.input_size
            boxes = decode(reg[k], self.default_boxes) * scale               # (D, 4)
            scores = probs[k, :, 1:].copy()                                  # (D, C)
            for j in range(scores.shape[1]):                   # per class: the best k only
                order = np.argsort(-scores[:, j], kind="stable")
                scores[order[self.topk_candidates:], j] = 0.0
            results.append(select_detections(boxes, scores, (h, w), self.score_thresh,
                                             self.nms_thresh, self.detections_per_img))
        return results

    def predict(self, images) -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` Tensors, boxes in input-image pixels."""
        with no_grad():
            x, sizes = self.inputs(images)
            return self.postprocess(*self(x), sizes)
