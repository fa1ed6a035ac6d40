"""Fast R-CNN (Girshick, "Fast R-CNN", ICCV 2015).

R-CNN ran a CNN on every warped proposal; Fast R-CNN runs the convolutional layers **once
per image** and cuts each proposal's features out of the shared feature map::

    image (3, H, W) ------------------------> conv layers (VGG-style, stride 8) -> (C, H/8, W/8)
    Selective Search proposals (P, 4) --+                                             |
                                        +--> RoI pooling (7 x 7 bins, scale 1/8) <---+
                                               -> fc6 -> fc7                      (TwoMLPHead)
                                               -> softmax over K + 1 classes      (cls_score)
                                               -> per-class box offsets (4 (K+1)) (bbox_pred)

Training (section 2.3): mini-batches of N = 2 images and R = 128 RoIs (64 per image),
25 % of them foreground (IoU >= 0.5 with a ground truth), the rest background with IoU in
[0.1, 0.5); horizontal flips; the multi-task loss ``L = L_cls + lambda [u >= 1] L_loc``
(eq. 1, ``nets/detection/losses.py``), lambda = 1, with regression targets encoded by the
box coder with weights (10, 10, 5, 5) (the paper normalises targets to unit variance; the
weights are that normalisation, fixed, as its released code and torchvision do).
Sampling, targets and the head are ``nets/detection/roi_heads.py``, shared with Faster and
Mask R-CNN.

Testing (section 3): every proposal is scored; boxes decoded per class, clipped, per-class
NMS at IoU 0.3. Section 3.1, truncated SVD: a fully connected layer ``y = W x + b`` with
``W (u, v) ~ U_t S_t V_t^T`` (the top t singular values) becomes two layers without a
non-linearity between them, ``S_t V_t^T`` (t x v, no bias) and ``U_t`` (u x t, bias b):
``t (u + v)`` multiplications instead of ``u v``. ``compress_fc(t6, t7)`` does it.

Scaled for Shapes at 128 px on a CPU (written down, since the paper used VGG-16 at 600 px):
backbone widths (16, 32, 64, 128) with batch norm and stride 8, so a 128-pixel image gives
a 16 x 16 map and the smallest objects (12 px) still span more than a cell; fc layers of
256 units instead of 4096.
"""
from __future__ import annotations

import numpy as np

from scratchvision import nn
from scratchvision.nets.detection.heads import FastRCNNPredictor, TwoMLPHead
from scratchvision.nets.detection.images import batch_images, denormalise
from scratchvision.nets.detection.roi_heads import RoIHeads, build_pooler
from scratchvision.nets.detection.targets import check_proposals, check_targets
from scratchvision.nets.vgg import VGGBackbone

SIZES = {
    "small": dict(widths=(16, 32, 64, 128), depths=(1, 2, 2, 2), representation_size=256),
    "tiny": dict(widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), representation_size=64),
}


def truncated_svd_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Two Linear layers whose product is the best rank-``rank`` approximation of ``layer``."""
    w = layer.weight.numpy().astype(np.float64)               # (u, v)
    if not 1 <= rank <= min(w.shape):
        raise ValueError(f"rank must be in 1..{min(w.shape)} for a {w.shape} layer, got {rank}")
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    first = nn.Linear(w.shape[1], rank, bias=False)
    second = nn.Linear(rank, w.shape[0])
    dtype = layer.weight.dtype
    first.weight.data = (s[:rank, None] * vt[:rank]).astype(dtype)   # S_t V_t^T (t, v)
    second.weight.data = u[:, :rank].astype(dtype)                    # U_t (u, t)
    second.bias.data = layer.bias.data.copy()
    return nn.Sequential(first, second)


class FastRCNN(nn.Module):
    """Fast R-CNN over precomputed (or on-the-fly) Selective Search proposals.

    Parameters
    ----------
    num_classes : classes including background.
    widths, depths : the VGG-style backbone's stages (the last one does not pool).
    representation_size : width of fc6 and fc7.
    pooler : 'roi_pool' (the paper), 'roi_align' or 'roi_align_unaligned' (for comparison,
        ``roi_heads.build_pooler``).
    pool_size : RoI pooling output (7 in the paper).
    batch_size_per_image, positive_fraction, nms_thresh, score_thresh : see ``RoIHeads``.
    proposal_strategy : Selective Search strategy used when ``predict`` gets no proposals.
    """

    uses_proposals = True

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128), depths=(1, 2, 2, 2),
                 representation_size: int = 256, pooler: str = "roi_pool", pool_size: int = 7,
                 batch_size_per_image: int = 64, positive_fraction: float = 0.25,
                 nms_thresh: float = 0.3, score_thresh: float = 0.05,
                 detections_per_img: int = 100, proposal_strategy: str = "fast",
                 dropout: float = 0.0) -> None:
        super().__init__()
        n = len(widths)
        self.backbone = VGGBackbone(3, widths, depths, dilations=(1,) * n,
                                    pools=(True,) * (n - 1) + (False,))
        self.stride = 2 ** (n - 1)
        scale = 1.0 / self.stride
        pool = build_pooler(pooler, pool_size, scale)
        self.num_classes = num_classes
        self.proposal_strategy = proposal_strategy
        self.roi_heads = RoIHeads(
            pool, TwoMLPHead(widths[-1] * pool_size * pool_size, representation_size, dropout),
            FastRCNNPredictor(representation_size, num_classes), num_classes,
            batch_size_per_image=batch_size_per_image, positive_fraction=positive_fraction,
            nms_thresh=nms_thresh, score_thresh=score_thresh,
            detections_per_img=detections_per_img)

    def features(self, images):
        """Batch the images (padded to the stride) and run the conv layers once."""
        batch = batch_images(images, self.stride)
        return batch, self.backbone(batch.tensors)[-1]

    def loss(self, images, targets, proposals=None) -> dict:
        """``{'loss_classifier', 'loss_box_reg'}`` for a batch (the trainer sums them)."""
        batch, feats = self.features(images)
        targets = check_targets(targets, batch.image_sizes, self.num_classes)
        if proposals is None:
            proposals = self.propose(batch)
        return self.roi_heads.loss(feats, check_proposals(proposals, len(batch)), targets)

    def predict(self, images, proposals=None) -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` Tensors; Selective Search runs on the
        images themselves when ``proposals`` is None."""
        from scratchvision.autograd import no_grad  # noqa: PLC0415
        with no_grad():
            batch, feats = self.features(images)
            if proposals is None:
                proposals = self.propose(batch)
            proposals = check_proposals(proposals, len(batch))
            return self.roi_heads.predict(feats, proposals, batch.image_sizes)

    def propose(self, batch) -> list:
        """Selective Search on each image of a batch (un-normalised back to uint8 RGB)."""
        from scratchvision.proposals.selective_search import SelectiveSearch  # noqa: PLC0415
        ss = SelectiveSearch(self.proposal_strategy)
        pixels = denormalise(batch.tensors)
        return [ss(np.ascontiguousarray(pixels[i, :h, :w]))
                for i, (h, w) in enumerate(batch.image_sizes)]

    def compress_fc(self, rank6: int, rank7: int) -> None:
        """Replace fc6 and fc7 by their truncated SVDs (section 3.1), in place."""
        head = self.roi_heads.box_head
        head.fc6 = truncated_svd_linear(head.fc6, rank6)
        head.fc7 = truncated_svd_linear(head.fc7, rank7)

