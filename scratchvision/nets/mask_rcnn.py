"""Mask R-CNN (He, Gkioxari, Dollár, Girshick, ICCV 2017): Faster R-CNN plus a mask branch.

Everything of ``faster_rcnn.py`` stays (backbone, RPN, the box head); a third head, in
parallel with classification and box regression, predicts a binary mask for each RoI::

    features (C, H/8, W/8) --+-- RoIAlign 7 x 7  -> fc6 -> fc7 -> classes, boxes (Fast R-CNN)
                             |
                             +-- RoIAlign 14 x 14 (sampling_ratio 2, aligned=True)
                                 -> 4 x (conv3x3 + ReLU)                 (MaskRCNNHeads)
                                 -> deconv 2x2 stride 2 + ReLU -> conv1x1 (MaskRCNNPredictor)
                                 -> K mask logits of 28 x 28 per RoI, one per class

**Training** (section 3, "Training"): the RoI head samples its RoIs once
(``RoIHeads.sample_rois``); the box losses read all of them, the mask loss only the
positives. ``L = L_cls + L_box + L_mask`` (plus the RPN's two terms), with ``L_mask`` the
mean per-pixel sigmoid binary cross-entropy of the RoI's *own class's* 28 x 28 channel
against its target: the matched ground-truth mask cut out by the RoI and resized to 28 x 28
with RoIAlign (``detection/masks.py``: ``project_masks_on_boxes``, ``maskrcnn_loss``).

**Testing** (section 3, "Inference"): the box branch runs first (its detections after NMS);
the mask branch then runs on the detected boxes only, the channel of each detection's
class is taken, and its sigmoid probabilities are pasted back into the image
(``paste_masks_in_image``: torchvision's exact arithmetic) and thresholded at 0.5:
``masks`` (D, h, w) uint8 beside ``boxes``, ``scores`` and ``labels``.

**The pooler** (the paper's Table 2c ablation): ``pooler`` chooses the RoI layer of *both*
branches, ``'roi_align'`` (default, ``aligned=True``), ``'roi_align_unaligned'`` (without
the half-pixel offset) or ``'roi_pool'`` (Fast R-CNN's quantised max pooling).

Scaled for Shapes at 128 px on a CPU: the small backbone of Faster R-CNN here, a mask
head of 4 x 32 channels (the paper: 256) with a 32-channel deconvolution, and 32 sampled
RoIs per image (``SIZES`` says why).
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd import no_grad
from scratchvision.backend import get_array_module
from scratchvision.nets.detection.masks import (
    MaskRCNNHeads,
    MaskRCNNPredictor,
    maskrcnn_loss,
    paste_masks_in_image,
)
from scratchvision.nets.detection.roi_heads import build_pooler
from scratchvision.nets.faster_rcnn import SIZES as FASTER_SIZES
from scratchvision.nets.faster_rcnn import FasterRCNN
from scratchvision.validation import to_numpy

# the mask head's widths, and RoIs sampled per image for the box head (whose positives
# the mask head reads): the small preset halves Faster R-CNN's 64 and uses 32-channel mask
# convolutions, so a step of 4 images takes 0.31 s on one core (64 RoIs and 64 channels:
# 0.57 s; 64 RoIs, 32 channels: 0.41 s; Faster R-CNN alone 0.26 s)
_MASK = {"small": {"mask_layers": (32, 32, 32, 32), "box_batch_size_per_image": 32},
         "tiny": {"mask_layers": (16, 16)},
         "large": {"mask_layers": (256, 256, 256, 256)}}
SIZES = {k: dict(v, **_MASK[k]) for k, v in FASTER_SIZES.items()}


class MaskRCNN(FasterRCNN):
    """Faster R-CNN with the mask branch (see the module docstring).

    Parameters
    ----------
    num_classes, widths, depths, representation_size, ... : as ``FasterRCNN``.
    pooler : RoI layer of both branches (default ``'roi_align'``).
    mask_layers : channels of the mask head's 3x3 convolutions.
    mask_pool_size : RoI features of the mask branch (14; masks come out at twice that).
    mask_thresh : probability above which a pasted pixel belongs to the mask.
    """

    uses_masks = True

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128), depths=(1, 2, 2, 2),
                 representation_size: int = 256, pooler: str = "roi_align",
                 mask_layers=(32, 32, 32, 32), mask_pool_size: int = 14,
                 mask_thresh: float = 0.5, **kwargs) -> None:
        super().__init__(num_classes, widths, depths, representation_size, pooler=pooler,
                         **kwargs)
        if not mask_layers:
            raise ValueError("mask_layers must name at least one conv layer's channels")
        if not 0.0 <= mask_thresh <= 1.0:
            raise ValueError(f"mask_thresh must be in [0, 1], got {mask_thresh}")
        self.mask_roi_pool = build_pooler(pooler, mask_pool_size, 1.0 / self.stride)
        self.mask_head = MaskRCNNHeads(widths[-1], tuple(mask_layers))
        self.mask_predictor = MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes)
        self.mask_thresh = mask_thresh

    def mask_logits(self, features, boxes: list):
        """(sum_i K_i, num_classes, 28, 28) logits for per-image (K_i, 4) boxes."""
        xp = get_array_module(features.data)
        boxes = [xp.asarray(b, dtype=features.dtype) for b in boxes]
        return self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes)))

    def detector_loss(self, features, proposals: list, targets: list) -> dict:
        """The box head's two terms and ``loss_mask`` on the same sampled RoIs."""
        for i, t in enumerate(targets):
            if "masks" not in t:
                raise ValueError(f"targets[{i}] has no 'masks': Mask R-CNN trains on "
                                 "instance masks (K, H, W)")
        samples = self.roi_heads.sample_rois(proposals, targets)
        losses = self.roi_heads.loss(features, proposals, targets, samples=samples)
        rois, labels, _, matches = samples
        pos_rois = [r[lab > 0] for r, lab in zip(rois, labels)]
        pos_matches = [m[lab > 0] for m, lab in zip(matches, labels)]
        if sum(len(r) for r in pos_rois) == 0:
            losses["loss_mask"] = features.sum() * 0.0
            return losses
        masks = [to_numpy(t["masks"]) for t in targets]
        for i, (m, t) in enumerate(zip(masks, targets)):
            if m.ndim != 3 or len(m) != len(t["boxes"]):
                raise ValueError(f"targets[{i}]['masks'] must be ({len(t['boxes'])}, H, W), "
                                 f"got {m.shape}")
        losses["loss_mask"] = maskrcnn_loss(self.mask_logits(features, pos_rois), pos_rois,
                                            masks, [t["labels"] for t in targets],
                                            pos_matches)
        return losses

    def predict(self, images, proposer=None) -> list:
        """Per image ``{'boxes', 'scores', 'labels', 'masks'}``; ``masks`` (D, h, w) uint8.
        ``proposer``: as ``FasterRCNN.predict``."""
        from scratchvision.autograd import Tensor  # noqa: PLC0415
        with no_grad():
            batch, feats = self.features(images)
            proposals = self._proposals(batch, feats, images, proposer)
            dets = self.roi_heads.predict(feats, proposals, batch.image_sizes)
            boxes = [d["boxes"].numpy() for d in dets]
            if sum(len(b) for b in boxes):
                probs = self.mask_logits(feats, boxes).sigmoid().numpy()
            start = 0
            for d, b, (h, w) in zip(dets, boxes, batch.image_sizes):
                n = len(b)
                if n == 0:
                    d["masks"] = Tensor(np.zeros((0, h, w), np.uint8))
                    continue
                labels = d["labels"].numpy()
                own = probs[start + np.arange(n), labels]                # (n, 28, 28)
                start += n
                pasted = paste_masks_in_image(own, b, (h, w))
                d["masks"] = Tensor((pasted >= self.mask_thresh).astype(np.uint8))
            return dets
