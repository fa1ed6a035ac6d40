"""The sliding-window detector (Sermanet et al., "OverFeat: Integrated Recognition,
Localization and Detection using Convolutional Networks", ICLR 2014).

Before proposals, a detector was a classifier run on every window of an image pyramid.
OverFeat's point is that a ConvNet classifier does not have to be *run* once per window:
written as convolutions, its fully connected layers slide over a larger image by
themselves, and one forward pass scores every window at the network's stride, sharing the
convolutions of overlapping windows (section 3.5, figure 5)::

    image (3, H, W) -> pyramid: resize by s_l = max_scale * scale_step**-l, l = 0 .. L-1
        level l (3, H_l, W_l) -> zero-pad by P -> conv trunk (valid convs, 2x2 pools)
        -> fc6 as a k x k conv -> fc7 as a 1x1 conv -> cls_score (K+1) and bbox_pred 4 (K+1),
           1x1 convs: one (class scores, box offsets) pair per output cell = per window
    every cell: softmax scores, its box decoded against the cell's window, mapped back to
    image pixels (divide by the level's scale) -> all levels -> per-class NMS

Training is the classifier's: crops, not images. From each batch image we sample windows
(``sample_windows``), crop and resize them to the network's input size with RoI Align, and
train the K+1-way classifier and the per-class box regressor on them with Fast R-CNN's
multi-task loss (``nets/detection/losses.py``; OverFeat trained its regressor after the
classifier, on the frozen features; here both heads learn together).

Windows, reference boxes and context
------------------------------------
Each cell is responsible for a square *reference box* of ``box_size`` = R pixels (at its
level) and sees a larger *input window* of ``window_size`` = W pixels centred on it: the
reference box plus ``P = (W - R) / 2`` pixels of context on every side (R-CNN adds 16
pixels of context to each warped proposal for the same reason: the edges of the object
must be visible for the regressor to place them). The small preset has R = 16, W = 30,
P = 7. Labels and regression targets refer to the reference box, and the crop is the
reference box scaled by W / R about its centre.

Training windows (``sample_windows``), per image, ``windows_per_image`` of them:

- *around each ground truth* g (side ``sqrt(w h)``): reference boxes with side
  ``sqrt(w h) * exp(u)``, ``u ~ U(-0.35, 0.35)`` (the test pyramid is within a factor
  ``scale_step ** 0.5 = 1.19`` of every object; 0.35 is a factor 1.42) and centre moved by
  ``U(-0.25, 0.25)`` of the side in x and y (the test stride is 1/4 of R, so the nearest
  cell is within 1/8), shifted inside the image as the test windows are;
- *near misses*: the same with wide jitter (``u ~ U(-1, 1)``, centre ``U(-0.8, 0.8)``):
  parts of objects, windows far too large or too small for them;
- *random*: side log-uniform over the pyramid's range of reference sizes in image pixels,
  anywhere inside the image.

Every candidate is labelled by its largest IoU with a ground truth: >= ``fg_iou_thresh``
(0.5) is that ground truth's class, < ``bg_iou_thresh`` background, and a band in between
(if any) is ignored. The default ``bg_iou_thresh = 0.5`` has no band: the *hard
negatives* with IoU in [0.3, 0.5) (a window on half an object, or at twice its size) are
background, as in Fast R-CNN (background [0.1, 0.5)). R-CNN's SVMs ignored [0.3, 0.5)
instead; tried here (``bg_iou_thresh = 0.3``), it let the classifier fire on those
misaligned windows, whose regressed boxes then survive NMS as false positives: 6 minutes
of training on 2,000 Shapes images gave box mAP@0.5 0.825 ignoring the band against 0.849
with it as background. Up to ``positive_fraction`` (1/4) of the windows are positives,
the rest negatives, half near misses and half random. An image without objects gets only
random negatives.
Randomness is drawn from ``scratchvision.autograd.factories.default_generator()`` at the
call, so a seeded run (and its exact resume) repeats.

Regression targets: the matched ground truth encoded against the reference box with the
box coder's weights (10, 10, 5, 5) (Fast R-CNN's), one set of four per class.

Convolutionalisation: which window each output cell sees
--------------------------------------------------------
The trunk has only *valid* 3x3 convolutions (no padding: a padded conv would see zeros at
a crop's border but real pixels inside the image, and the two passes would differ) and
2x2 max pools of stride 2. Walking up the layers, a cell of a map with cumulative stride S
and receptive field r becomes, after a k x k conv of stride 1, r + (k - 1) S wide, and after
a 2x2 pool r + S wide with stride 2 S. For the small preset::

    layer             stride S   field r   map of one 30x30 crop
    input                 1         1         30
    conv3 (16)            1         3         28
    pool 2                2         4         14
    conv3 (32)            2         8         12
    conv3 (32)            2        12         10
    pool 2                4        14          5
    fc6 = conv 5x5        4        30          1      -> window_size W = 30, stride 4

So on a padded level image, output cell (i, j) sees exactly the pixels
``[4 j, 4 j + 30) x [4 i, 4 i + 30)`` of the padded image, i.e. ``[4 j - 7, 4 j + 23)`` of
the level, and its reference box is ``[4 j, 4 j + 16)`` (likewise in y). Because every
window starts at a multiple of the stride, the 2x2 pools of a window and of the whole image
pair the same pixels, and the output at (i, j) *equals* the classifier applied to that
crop. There are ``floor((W_l - R) / 4) + 1`` columns of cells, the windows of
``proposals.sliding_windows(H_l, W_l, R, stride=4)`` exactly; in image pixels the
reference box is divided by the level's scale ``(W_l / W, H_l / H)``.

fc6 is stored as ``Linear(C k k, F)`` (``TwoMLPHead``) and used on crops as a fully
connected layer; the image pass uses the *same* weight reshaped to ``(F, C, k, k)`` as a
convolution (the flatten order ``(c, y, x)`` of a ``(C, k, k)`` feature is the conv weight's
layout); fc7, cls_score and bbox_pred become 1x1 convolutions the same way. This view is
always on (``score_map``): there is no separate convolutionalised copy to keep in sync.

Scales for Shapes
-----------------
Shapes objects are 10-89 pixels (``sqrt(w h)`` of their boxes at 128 px; 1 % below 12,
1 % above 78; box aspect ratios 0.6-1 for 99 % of them). A level of scale s makes an object
of side g into ``s g`` pixels, so the best level is ``s = R / g``: 1.54 down to 0.18. The
pyramid ``max_scale = sqrt(2)``, ``scale_step = sqrt(2)``, 7 levels gives s = 1.41, 1, 0.71,
0.5, 0.35, 0.25, 0.18: a 128 px image becomes 181, 128, 90, 64, 45, 32, 23 px with 1764,
841, 361, 169, 64, 25, 4 windows (3,228 in all), and the reference boxes are 11.3 .. 90.5
image pixels, so every object has a level within a factor ``2 ** 0.25 = 1.19`` of its size,
which the training scale jitter covers. Why these numbers: R = 16 keeps the smallest
objects at 16 level pixels (enough to tell a circle from a triangle) at the price of
enlarging the image 1.41x for them; a step of sqrt(2) rather than 2 keeps the scale
mismatch small enough for square windows to reach IoU 0.5; the stride of 4 is a quarter of
R, so the nearest cell is within R / 8 of every object. The levels cost ``sum s**2 = 4``
times the original image (half of it the enlarged top level). The level sizes come from
``proposals.pyramid_sizes`` started at ``round(H max_scale)``. Levels are made by RoI
Align over the whole image with ``aligned=True`` and an adaptive sampling ratio, the same
resampling that cuts the training crops (``ceil(1 / s)`` samples per pixel when
shrinking, bilinear when enlarging), so a window looks the same to the classifier in
training and at test time.

Measured with the CLI (``python docs/make_det_results.py``; table in
docs/DETECTION_RESULTS.md): the small preset (136 k parameters), batches of 8 images with
flips, Adam at lr 3e-3 with warm-up and cosine, 10 epochs on 2,000 Shapes images in 12.3
minutes on the 2-core CPU: box mAP@0.5 (VOC area) 0.947 on 200 validation images (AP
circle 0.987, rectangle 0.945, triangle 0.909), COCO AP 0.764, 60 ms per 128 px image in
``predict``.

Weak points, written down: square windows only (one aspect ratio; Shapes boxes are 0.6-1
in aspect, so a square reaches IoU 0.5 with all of them, but elongated objects in other
data would want a second window shape), and the stride of 4 level pixels is a quarter of
the reference box, so localisation leans on the regressor (OverFeat's offset max pooling
would refine the stride; not done here).
"""
from __future__ import annotations

import math

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd import Tensor, no_grad
from scratchvision.autograd.factories import default_generator
from scratchvision.backend import get_array_module
from scratchvision.nets.detection.heads import FastRCNNPredictor, TwoMLPHead
from scratchvision.nets.detection.images import ImageList, batch_images
from scratchvision.nets.detection.losses import fast_rcnn_loss
from scratchvision.nets.detection.postprocess import empty_detections, select_detections
from scratchvision.nets.detection.targets import check_targets
from scratchvision.nets.vgg import conv_bn_relu
from scratchvision.ops import BoxCoder, box_iou, roi_align
from scratchvision.proposals.sliding_window import pyramid_sizes, sliding_windows
from scratchvision.validation import to_numpy

__all__ = ["SIZES", "SlidingWindowDetector", "sample_windows"]

SIZES = {
    "small": dict(widths=(16, 32), depths=(1, 2), fc_kernel=5, representation_size=128),
    "tiny": dict(widths=(8, 8), depths=(1, 1), fc_kernel=6, representation_size=32),
}

# positives: scale jitter (log) and centre jitter (fraction of the side) around a ground truth
POS_LOG_SCALE, POS_SHIFT = 0.35, 0.25
# near-miss negatives: the same, wide
NEAR_LOG_SCALE, NEAR_SHIFT = 1.0, 0.8
CANDIDATES_PER_OBJECT = 24


def _inside(cx, cy, side, h: int, w: int) -> np.ndarray:
    """Square boxes (side, centre) moved (not shrunk) to lie inside the image where they fit."""
    half = side / 2
    cx = np.where(side <= w, np.clip(cx, half, w - half), w / 2)
    cy = np.where(side <= h, np.clip(cy, half, h - half), h / 2)
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def _jittered(rng, gt: np.ndarray, n: int, log_scale: float, shift: float, h: int, w: int):
    """n square boxes per ground truth, side sqrt(w h) exp(U(-log_scale, log_scale)), the
    centre moved by U(-shift, shift) sides."""
    if len(gt) == 0:
        return np.zeros((0, 4))
    g = np.repeat(gt.astype(np.float64), n, axis=0)                  # (G n, 4)
    side = np.sqrt((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]))
    side = side * np.exp(rng.uniform(-log_scale, log_scale, len(g)))
    cx = (g[:, 0] + g[:, 2]) / 2 + rng.uniform(-shift, shift, len(g)) * side
    cy = (g[:, 1] + g[:, 3]) / 2 + rng.uniform(-shift, shift, len(g)) * side
    return _inside(cx, cy, side, h, w)


def sample_windows(rng: np.random.Generator, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                   image_size: tuple[int, int], num_windows: int, side_range: tuple[float, float],
                   positive_fraction: float = 0.25, fg_iou_thresh: float = 0.5,
                   bg_iou_thresh: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's training reference boxes (see the module docstring, "Training windows").

    Parameters
    ----------
    rng : the generator to draw from.
    gt_boxes : (G, 4) float x1y1x2y2 pixel-edge boxes; gt_labels : (G,) int in 1..C.
    image_size : (h, w).
    num_windows : how many windows to return.
    side_range : (smallest, largest) side of a random window in image pixels (the pyramid's).

    Returns
    -------
    boxes (num_windows, 4) float32 square reference boxes, labels (num_windows,) int64 (0 is
    background), matched (num_windows, 4) float32: the ground truth of each positive (zeros
    for the negatives).
    """
    h, w = image_size
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    n_rand = max(num_windows, 2 * CANDIDATES_PER_OBJECT)
    lo = math.log(min(side_range[0], min(h, w)))
    hi = math.log(min(side_range[1], min(h, w)))
    side = np.exp(rng.uniform(lo, hi, n_rand))
    random = _inside(rng.uniform(0, w, n_rand), rng.uniform(0, h, n_rand), side, h, w)
    near = _jittered(rng, gt, CANDIDATES_PER_OBJECT, POS_LOG_SCALE, POS_SHIFT, h, w)
    far = _jittered(rng, gt, CANDIDATES_PER_OBJECT, NEAR_LOG_SCALE, NEAR_SHIFT, h, w)

    def label(boxes):
        if len(gt) == 0 or len(boxes) == 0:
            return np.zeros(len(boxes)), np.zeros(len(boxes), np.int64)
        iou = np.asarray(box_iou(boxes, gt))                         # (B, G)
        return iou.max(axis=1), iou.argmax(axis=1)

    (iou_n, arg_n), (iou_f, arg_f), (iou_r, _) = label(near), label(far), label(random)
    pos_boxes = np.concatenate([near[iou_n >= fg_iou_thresh], far[iou_f >= fg_iou_thresh]])
    pos_arg = np.concatenate([arg_n[iou_n >= fg_iou_thresh], arg_f[iou_f >= fg_iou_thresh]])
    hard = far[iou_f < bg_iou_thresh]
    easy = random[iou_r < bg_iou_thresh]

    n_pos = min(len(pos_boxes), int(round(positive_fraction * num_windows)))
    pick = rng.permutation(len(pos_boxes))[:n_pos]
    pos_boxes, pos_arg = pos_boxes[pick], pos_arg[pick]
    n_neg = num_windows - n_pos
    n_hard = min(len(hard), n_neg // 2)
    hard = hard[rng.permutation(len(hard))[:n_hard]]
    # random negatives fill the rest (drawn with replacement in the rare case of too few)
    n_easy = n_neg - n_hard
    easy = easy[rng.choice(len(easy), n_easy, replace=len(easy) < n_easy)] if len(easy) \
        else random[:0]
    boxes = np.concatenate([pos_boxes, hard, easy]).astype(np.float32)
    labels = np.zeros(len(boxes), np.int64)
    matched = np.zeros((len(boxes), 4), np.float32)
    labels[:n_pos] = np.asarray(gt_labels, np.int64)[pos_arg]
    matched[:n_pos] = gt[pos_arg]
    return boxes, labels, matched


def _window_geometry(widths, depths, fc_kernel: int) -> tuple[int, int]:
    """(receptive field, stride) of one output cell: stages of valid 3x3 convs + 2x2 pool,
    then fc6 as a fc_kernel x fc_kernel conv (see the module docstring's table)."""
    r, s = 1, 1
    for depth in depths:
        r += 2 * s * depth          # each valid 3x3 conv widens the field by (3 - 1) S
        r += s                      # a 2x2 pool by (2 - 1) S, and doubles the stride
        s *= 2
    return r + (fc_kernel - 1) * s, s


class SlidingWindowDetector(nn.Module):
    """OverFeat-style sliding-window detector: a window classifier + box regressor that is
    run convolutionally over an image pyramid (see the module docstring).

    Parameters
    ----------
    num_classes : classes including background (Shapes: 4).
    widths, depths : channels and number of valid 3x3 convs (+ BN + ReLU) of each trunk
        stage; every stage ends with a 2x2 max pool, so the stride is 2 ** len(widths).
    fc_kernel : fc6's spatial extent k over the trunk's map (the window's k x k cells).
    representation_size : width of fc6 and fc7.
    box_size : side R of each cell's reference box at its level (the input window is the
        network's receptive field W, with (W - R) / 2 pixels of context on each side).
    max_scale, scale_step, num_scales : the test pyramid: image scales max_scale *
        scale_step ** -l, l = 0 .. num_scales - 1 (also the range of random training windows).
    windows_per_image, positive_fraction, fg_iou_thresh, bg_iou_thresh : training windows
        (``sample_windows``).
    score_thresh, nms_thresh, detections_per_img : ``select_detections``.
    naive_batch_size : windows per classifier call in ``predict_naive``.
    """

    uses_proposals = False

    def __init__(self, num_classes: int, widths=(16, 32), depths=(1, 2), fc_kernel: int = 5,
                 representation_size: int = 128, box_size: int = 16,
                 max_scale: float = 2 ** 0.5, scale_step: float = 2 ** 0.5, num_scales: int = 7,
                 windows_per_image: int = 32, positive_fraction: float = 0.25,
                 fg_iou_thresh: float = 0.5, bg_iou_thresh: float = 0.5,
                 score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100, naive_batch_size: int = 512) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got "
                             f"{num_classes}")
        if len(widths) != len(depths) or not widths:
            raise ValueError(f"widths {widths} and depths {depths} need one entry per stage")
        if fc_kernel < 1:
            raise ValueError(f"fc_kernel must be >= 1, got {fc_kernel}")
        if not (max_scale > 0 and scale_step > 1 and num_scales >= 1):
            raise ValueError(f"need max_scale > 0, scale_step > 1, num_scales >= 1, got "
                             f"{max_scale}, {scale_step}, {num_scales}")
        if not 0 <= bg_iou_thresh <= fg_iou_thresh <= 1:
            raise ValueError(f"need 0 <= bg_iou_thresh <= fg_iou_thresh <= 1, got "
                             f"{bg_iou_thresh}, {fg_iou_thresh}")
        self.window_size, self.stride = _window_geometry(widths, depths, fc_kernel)
        if not 1 <= box_size <= self.window_size or (self.window_size - box_size) % 2:
            raise ValueError(f"box_size must be in 1..{self.window_size} (the window) with an "
                             f"even difference to it, got {box_size}")
        self.num_classes, self.box_size = num_classes, int(box_size)
        self.context = (self.window_size - self.box_size) // 2       # P
        self.fc_kernel = int(fc_kernel)
        self.max_scale, self.scale_step = float(max_scale), float(scale_step)
        self.num_scales = int(num_scales)
        self.windows_per_image, self.positive_fraction = windows_per_image, positive_fraction
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, bg_iou_thresh
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img, self.naive_batch_size = detections_per_img, naive_batch_size
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))

        layers, c = [], 3
        for width, depth in zip(widths, depths):
            for _ in range(depth):
                layers.append(conv_bn_relu(c, width, 3, padding=0))
                c = width
            layers.append(nn.MaxPool2d(2, 2))
        self.trunk = nn.Sequential(*layers)
        self.trunk_channels = c
        self.box_head = TwoMLPHead(c * fc_kernel * fc_kernel, representation_size)
        self.predictor = FastRCNNPredictor(representation_size, num_classes)

    # ------------------------------------------------------------------ the two networks
    def classify_windows(self, crops):
        """The per-window classifier: (B, 3, W, W) crops -> (B, K+1) logits, (B, 4 (K+1))
        box offsets, with fc6 .. bbox_pred as fully connected layers."""
        f = self.trunk(crops if isinstance(crops, Tensor) else Tensor(crops))
        k = self.fc_kernel
        if tuple(f.shape[1:]) != (self.trunk_channels, k, k):
            raise ValueError(f"crops must be (B, 3, {self.window_size}, {self.window_size}), "
                             f"got {tuple(crops.shape)}")
        return self.predictor(self.box_head(f))

    def score_map(self, images):
        """The convolutionalised classifier: (N, 3, H, W) -> (N, K+1, h, w) logits and
        (N, 4 (K+1), h, w) offsets; cell (i, j) scores the window at pixels
        ``[stride j, stride j + W) x [stride i, stride i + W)`` of the input."""
        f = self.trunk(images if isinstance(images, Tensor) else Tensor(images))
        head, pred = self.box_head, self.predictor
        c, k = self.trunk_channels, self.fc_kernel

        def as_conv(layer, in_channels, kernel):   # Linear (out, C k k) -> conv (out, C, k, k)
            return layer.weight.reshape(layer.out_features, in_channels, kernel, kernel)

        x = F.conv2d(f, as_conv(head.fc6, c, k), head.fc6.bias).relu()
        rep = head.fc7.in_features
        x = F.conv2d(x, as_conv(head.fc7, rep, 1), head.fc7.bias).relu()
        return (F.conv2d(x, as_conv(pred.cls_score, rep, 1), pred.cls_score.bias),
                F.conv2d(x, as_conv(pred.bbox_pred, rep, 1), pred.bbox_pred.bias))

    # ------------------------------------------------------------------------ training
    def side_range(self) -> tuple[float, float]:
        """Smallest and largest reference box side in image pixels over the pyramid."""
        smallest = self.max_scale * self.scale_step ** -(self.num_scales - 1)
        jitter = math.sqrt(self.scale_step)
        return self.box_size / self.max_scale / jitter, self.box_size / smallest * jitter

    def crop(self, batch: ImageList, rois: np.ndarray):
        """(T, 5) [image, reference box] -> (T, 3, W, W) crops of the windows around them.

        The window is the reference box scaled by W / R about its centre. The batch gets one
        pixel of zeros around it first, so that RoI Align reads zeros outside the image (its
        own rule repeats the edge pixel up to one pixel out), as the padded test levels do.
        """
        x = batch.tensors.data
        xp = get_array_module(x)
        padded = xp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        r = rois.astype(np.float64)
        ctr = (r[:, 1:3] + r[:, 3:5]) / 2
        half = (r[:, 3:5] - r[:, 1:3]) / 2 * (self.window_size / self.box_size)
        win = np.concatenate([r[:, :1], ctr - half + 1, ctr + half + 1], axis=1)
        crops = roi_align(padded, xp.asarray(win), self.window_size, 1.0, -1, aligned=True)
        return Tensor(crops)

    def loss(self, images, targets) -> dict:
        """``{'loss_classifier', 'loss_box_reg'}`` over windows sampled from the batch."""
        batch = batch_images(images)
        targets = check_targets(targets, batch.image_sizes, self.num_classes)
        rng = default_generator()
        rois, labels, reg = [], [], []
        for i, (t, size) in enumerate(zip(targets, batch.image_sizes)):
            boxes, lab, matched = sample_windows(
                rng, t["boxes"], t["labels"], size, self.windows_per_image, self.side_range(),
                self.positive_fraction, self.fg_iou_thresh, self.bg_iou_thresh)
            codes = np.zeros_like(boxes)
            pos = lab > 0
            if pos.any():
                codes[pos] = self.box_coder.encode_single(matched[pos], boxes[pos])
            rois.append(np.concatenate([np.full((len(boxes), 1), i, np.float32), boxes], 1))
            labels.append(lab)
            reg.append(codes)
        rois, labels, reg = np.concatenate(rois), np.concatenate(labels), np.concatenate(reg)
        logits, deltas = self.classify_windows(self.crop(batch, rois))
        xp = get_array_module(deltas.data)
        cls_loss, box_loss = fast_rcnn_loss(logits, deltas, labels, xp.asarray(reg))
        return {"loss_classifier": cls_loss, "loss_box_reg": box_loss}

    # ----------------------------------------------------------------------- inference
    def pyramid(self, h: int, w: int) -> list[tuple[int, int]]:
        """(H_l, W_l) of the levels of an h x w image that hold at least one window."""
        top = (max(1, round(h * self.max_scale)), max(1, round(w * self.max_scale)))
        sizes = pyramid_sizes(*top, self.box_size, self.box_size, self.scale_step,
                              self.num_scales)
        return [(hl, wl) for hl, wl in sizes if hl >= self.box_size and wl >= self.box_size]

    def level_images(self, batch: ImageList, index: list, level: tuple[int, int]):
        """Images ``index`` (all of one true size h x w) resized to ``level`` (H_l, W_l) by
        RoI Align over the whole image, zero-padded by P: (n, 3, H_l + 2P, W_l + 2P)."""
        x = batch.tensors.data
        xp = get_array_module(x)
        h, w = batch.image_sizes[index[0]]
        hl, wl = level
        # the true images only (not the batch's padding), with the one pixel of zeros
        # around them that the training crops get (``crop``), so that both read the same
        # values near the border
        region = xp.pad(x[index][:, :, :h, :w], ((0, 0), (0, 0), (1, 1), (1, 1)))
        rois = xp.asarray([[k, 1.0, 1.0, w + 1.0, h + 1.0] for k in range(len(index))])
        resized = roi_align(region, rois, (hl, wl), 1.0, -1, aligned=True)  # (n, 3, H_l, W_l)
        p = self.context
        out = xp.zeros((len(index), 3, hl + 2 * p, wl + 2 * p), x.dtype)
        out[:, :, p:p + hl, p:p + wl] = resized
        return out

    def cell_boxes(self, image_size: tuple[int, int], level: tuple[int, int]) -> np.ndarray:
        """(h_cells * w_cells, 4) reference boxes of a level's cells, row-major, in image
        pixels: cell (i, j) is ``[S j, S j + R) x [S i, S i + R)`` at the level."""
        (h, w), (hl, wl) = image_size, level
        s, r = self.stride, self.box_size
        ys = np.arange(0, hl - r + 1, s, dtype=np.float64)
        xs = np.arange(0, wl - r + 1, s, dtype=np.float64)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        boxes = np.stack([xx, yy, xx + r, yy + r], axis=-1).reshape(-1, 4)
        return boxes / np.array([wl / w, hl / h, wl / w, hl / h])

    def _detections(self, logits, deltas, boxes, image_size) -> dict:
        """(M, K+1) logits, (M, 4 (K+1)) offsets of M windows with (M, 4) reference boxes in
        image pixels -> the image's detections."""
        if len(boxes) == 0:
            return empty_detections()
        scores = to_numpy(F.softmax(Tensor(logits), dim=1))
        decoded = self.box_coder.decode_single(to_numpy(deltas).astype(np.float64), boxes)
        decoded = decoded.reshape(len(boxes), self.num_classes, 4)
        return select_detections(decoded[:, 1:], scores[:, 1:], image_size,
                                 self.score_thresh, self.nms_thresh, self.detections_per_img)

    def _run(self, images, score_windows) -> list:
        """Shared driver of predict/predict_naive: per group of equal-size images and per
        level, ``score_windows(levels, image_size, level) -> [(logits, deltas, boxes)]``."""
        with no_grad():
            batch = batch_images(images)
            groups: dict = {}
            for i, size in enumerate(batch.image_sizes):
                groups.setdefault(size, []).append(i)
            results = [None] * len(batch)
            for size, index in groups.items():
                parts = [[] for _ in index]
                for level in self.pyramid(*size):
                    levels = self.level_images(batch, index, level)
                    for part, out in zip(parts, score_windows(levels, size, level)):
                        part.append(out)
                for i, part in zip(index, parts):
                    if not part:
                        results[i] = empty_detections()
                        continue
                    logits, deltas, boxes = (np.concatenate(a) for a in zip(*part))
                    results[i] = self._detections(logits, deltas, boxes, size)
            return results

    def predict(self, images) -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` Tensors (boxes in input pixels): one
        convolutional pass per pyramid level scores all its windows at once."""
        def score(levels, size, level):
            logits, deltas = self.score_map(levels)         # (n, K+1, h, w), (n, 4(K+1), h, w)
            boxes = self.cell_boxes(size, level)
            n, c = logits.shape[:2]
            if logits.shape[2] * logits.shape[3] != len(boxes):
                raise AssertionError(f"score map {logits.shape} does not match "
                                     f"{len(boxes)} windows")
            lg = to_numpy(logits).reshape(n, c, -1).transpose(0, 2, 1)    # (n, cells, K+1)
            dl = to_numpy(deltas).reshape(n, 4 * c, -1).transpose(0, 2, 1)
            return [(lg[i], dl[i], boxes) for i in range(n)]
        return self._run(images, score)

    def predict_naive(self, images) -> list:
        """``predict`` by cropping every window and classifying the crops in batches: the
        same windows (``proposals.sliding_windows`` on each level) and the same results, at
        the cost of recomputing the convolutions of overlapping windows."""
        def score(levels, size, level):
            (h, w), (hl, wl) = size, level
            ref, _ = sliding_windows(hl, wl, self.box_size, (1.0,), self.stride, max_levels=1)
            win = self.window_size
            # the reference box [x, x + R) of the level is [x, x + W) of the padded level
            crops = [levels[:, :, int(y):int(y) + win, int(x):int(x) + win]
                     for x, y in ref[:, :2]]
            xp = get_array_module(levels)
            crops = xp.stack(crops, axis=1).reshape(-1, 3, win, win)   # (n * windows, ...)
            logits, deltas = [], []
            for start in range(0, len(crops), self.naive_batch_size):
                lg, dl = self.classify_windows(crops[start:start + self.naive_batch_size])
                logits.append(to_numpy(lg))
                deltas.append(to_numpy(dl))
            m = len(ref)
            lg, dl = np.concatenate(logits), np.concatenate(deltas)
            boxes = ref.astype(np.float64) / np.array([wl / w, hl / h, wl / w, hl / h])
            return [(lg[i * m:(i + 1) * m], dl[i * m:(i + 1) * m], boxes)
                    for i in range(levels.shape[0])]
        return self._run(images, score)
