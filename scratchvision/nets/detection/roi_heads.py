"""The RoI head of Fast R-CNN (shared with Faster and Mask R-CNN): from region proposals
and a feature map to a loss, or to detections.

Training, for each image (Fast R-CNN section 2.3, "Mini-batch sampling")::

    proposals (P, 4) + ground-truth boxes (they are proposals too, as in the paper's code)
      -> IoU with every ground truth (G, P); best gt of each proposal
      -> label: the gt's class if IoU >= fg_iou_thresh (0.5)           foreground
                0 (background) if bg_iou_thresh[0] <= IoU < bg_iou_thresh[1] ([0.1, 0.5))
                ignored otherwise (IoU < 0.1: easy background, the paper's heuristic)
      -> sample batch_size_per_image RoIs (64), at most positive_fraction (25 %) foreground
      -> regression target of each foreground RoI: BoxCoder(weights).encode(gt, RoI)

An image without objects has no ground truth to be near: all its proposals are
background candidates. Then for the whole batch::

    RoI pooling of the sampled RoIs on the feature map (spatial_scale = 1 / stride)
      -> box_head (two FC layers) -> box_predictor (class logits, per-class offsets)
      -> fast_rcnn_loss (cross-entropy + smooth L1)

Testing: every proposal is pooled, classified and regressed; softmax scores and the boxes
decoded per class go through ``select_detections`` (clip, score threshold, per-class NMS,
top-k). Random sampling draws from scratchvision's default generator, so a seeded run (and
its resume) repeats exactly.
"""
from __future__ import annotations

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd.factories import default_generator
from scratchvision.backend import get_array_module
from scratchvision.nets.detection.losses import fast_rcnn_loss
from scratchvision.nets.detection.postprocess import select_detections
from scratchvision.ops import BalancedPositiveNegativeSampler, BoxCoder, RoIAlign, RoIPool, box_iou

POOLERS = ("roi_pool", "roi_align", "roi_align_unaligned")


def build_pooler(name: str, output_size: int, spatial_scale: float, sampling_ratio: int = 2):
    """The RoI pooling layer by name: ``roi_pool`` (Fast R-CNN's max pooling over quantised
    bins), ``roi_align`` (Mask R-CNN's bilinear sampling, ``aligned=True``: the half-pixel
    offset of torchvision's ``aligned`` option) or ``roi_align_unaligned`` (the same without
    the half-pixel offset, as the Mask R-CNN paper's own RoIAlign)."""
    if name == "roi_pool":
        return RoIPool(output_size, spatial_scale)
    if name in ("roi_align", "roi_align_unaligned"):
        return RoIAlign(output_size, spatial_scale, sampling_ratio=sampling_ratio,
                        aligned=name == "roi_align")
    raise ValueError(f"pooler must be one of {POOLERS}, got {name!r}")


def assign_targets(proposals: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                   fg_iou_thresh: float, bg_iou_thresh: tuple) -> tuple:
    """Labels (P,) int64 (class, 0 background, -1 ignored) and matched gt index (P,)."""
    p = len(proposals)
    if len(gt_boxes) == 0:
        return np.zeros(p, np.int64), np.full(p, -1, np.int64)
    iou = np.asarray(box_iou(gt_boxes, proposals))                   # (G, P)
    matched = iou.argmax(axis=0)                                     # first best gt
    best = iou[matched, np.arange(p)]
    labels = np.full(p, -1, np.int64)
    labels[best >= fg_iou_thresh] = gt_labels[matched[best >= fg_iou_thresh]]
    lo, hi = bg_iou_thresh
    labels[(best >= lo) & (best < hi) & (best < fg_iou_thresh)] = 0
    return labels, matched


class RoIHeads(nn.Module):
    """Pooler + two-FC head + predictor, with the training-time sampling and the test-time
    post-processing of Fast R-CNN (see the module docstring).

    Parameters
    ----------
    box_roi_pool : a module ``(features, list of (K_i, 4) boxes) -> (sum K_i, C, P, P)``
        (``ops.RoIPool`` or ``ops.RoIAlign`` with its ``spatial_scale``).
    box_head : (R, C, P, P) -> (R, D), e.g. ``TwoMLPHead``.
    box_predictor : (R, D) -> (logits (R, K+1), offsets (R, 4 (K+1))).
    num_classes : K + 1, background included.
    """

    def __init__(self, box_roi_pool, box_head, box_predictor, num_classes: int,
                 fg_iou_thresh: float = 0.5, bg_iou_thresh: tuple = (0.1, 0.5),
                 batch_size_per_image: int = 64, positive_fraction: float = 0.25,
                 bbox_reg_weights=(10.0, 10.0, 5.0, 5.0), score_thresh: float = 0.05,
                 nms_thresh: float = 0.3, detections_per_img: int = 100,
                 add_gt_as_proposals: bool = True, smooth_l1_beta: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= bg_iou_thresh[0] <= bg_iou_thresh[1] <= fg_iou_thresh <= 1.0:
            raise ValueError(f"need 0 <= bg_iou_thresh[0] <= bg_iou_thresh[1] <= fg_iou_thresh "
                             f"<= 1, got bg {bg_iou_thresh}, fg {fg_iou_thresh}")
        self.box_roi_pool, self.box_head, self.box_predictor = box_roi_pool, box_head, \
            box_predictor
        self.num_classes = num_classes
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, tuple(bg_iou_thresh)
        self.batch_size_per_image, self.positive_fraction = batch_size_per_image, \
            positive_fraction
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        self.add_gt_as_proposals = add_gt_as_proposals
        self.smooth_l1_beta = smooth_l1_beta

    # ------------------------------------------------------------------ training
    def select_training_samples(self, proposals: list, targets: list) -> tuple:
        """Sampled RoIs per image, and their labels (R,) and regression targets (R, 4)."""
        rois, labels, reg, _ = self.sample_rois(proposals, targets)
        return rois, np.concatenate(labels), np.concatenate(reg)

    def sample_rois(self, proposals: list, targets: list) -> tuple:
        """Per image: sampled RoIs (R_i, 4), labels (R_i,), regression targets (R_i, 4) and
        the index of each RoI's matched ground truth (R_i,) (-1 without one; Mask R-CNN
        reads the masks of its foreground RoIs' matches)."""
        sampler = BalancedPositiveNegativeSampler(self.batch_size_per_image,
                                                  self.positive_fraction,
                                                  rng=default_generator())
        rois, labels, reg, matches = [], [], [], []
        for props, t in zip(proposals, targets):
            props = np.asarray(props, np.float32).reshape(-1, 4)
            gt, gl = t["boxes"], t["labels"]
            if self.add_gt_as_proposals and len(gt):
                props = np.concatenate([props, gt.astype(np.float32)])
            lab, matched = assign_targets(props, gt, gl, self.fg_iou_thresh, self.bg_iou_thresh)
            pos, neg = sampler([lab])
            keep = np.flatnonzero(pos[0] | neg[0])
            props, lab, matched = props[keep], lab[keep], matched[keep]
            codes = np.zeros((len(keep), 4), np.float32)
            fg = lab > 0
            if fg.any():
                codes[fg] = self.box_coder.encode_single(gt[matched[fg]], props[fg])
            rois.append(props)
            labels.append(lab)
            reg.append(codes)
            matches.append(np.where(fg, matched, -1))
        return rois, labels, reg, matches

    def _features(self, features, boxes: list):
        xp = get_array_module(features.data)
        boxes = [xp.asarray(b, dtype=features.dtype) for b in boxes]
        return self.box_predictor(self.box_head(self.box_roi_pool(features, boxes)))

    def loss(self, features, proposals: list, targets: list, samples: tuple | None = None
             ) -> dict:
        """``{'loss_classifier', 'loss_box_reg'}`` for validated targets (host arrays);
        ``samples`` is ``sample_rois``' result when the caller drew it already."""
        rois, labels, reg, _ = samples or self.sample_rois(proposals, targets)
        class_logits, box_regression = self._features(features, rois)
        xp = get_array_module(features.data)
        cls_loss, box_loss = fast_rcnn_loss(class_logits, box_regression,
                                            np.concatenate(labels),
                                            xp.asarray(np.concatenate(reg)),
                                            beta=self.smooth_l1_beta)
        return {"loss_classifier": cls_loss, "loss_box_reg": box_loss}

    # ------------------------------------------------------------------- testing
    def predict(self, features, proposals: list, image_sizes: list) -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` (see ``select_detections``)."""
        counts = [len(p) for p in proposals]
        proposals = [np.asarray(p, np.float32).reshape(-1, 4) for p in proposals]
        class_logits, box_regression = self._features(features, proposals)
        scores = F.softmax(class_logits, dim=1).numpy()
        deltas = box_regression.numpy()
        out, start = [], 0
        for props, n, size in zip(proposals, counts, image_sizes):
            s, d = scores[start:start + n], deltas[start:start + n]
            start += n
            boxes = np.asarray(self.box_coder.decode_single(d, props)).reshape(n, -1, 4)
            out.append(select_detections(boxes[:, 1:], s[:, 1:], size, self.score_thresh,
                                         self.nms_thresh, self.detections_per_img))
        return out
