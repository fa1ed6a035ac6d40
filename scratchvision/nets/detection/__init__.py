"""Parts every detector shares, one idea per file:

- ``images.py``: normalisation, and batching of images of different sizes (``ImageList``);
- ``targets.py``: validation of ground-truth dicts (clear errors, boxes clipped);
- ``heads.py``: Fast R-CNN's two-FC box head and its sibling predictors;
- ``losses.py``: Fast R-CNN's multi-task loss (cross-entropy + smooth L1);
- ``roi_heads.py``: RoI sampling and target assignment, pooling, head, post-processing;
- ``masks.py``: Mask R-CNN's mask branch: mask targets, loss, heads, paste-back;
- ``postprocess.py``: clip, score threshold, per-class NMS, top-k (``select_detections``);
- ``proposal_cache.py``: Selective Search proposals of a split, computed once, on disk.

The model contract (``../shared/DESIGN.md``, "Models"): ``model.loss(images, targets,
**extras) -> dict[str, Tensor]`` and ``model.predict(images, **extras) -> list[dict]`` with
``boxes`` (K, 4) x1y1x2y2 in input-image pixels, ``scores`` (K,), ``labels`` (K,) int64
(and ``masks`` (K, H, W) uint8 for Mask R-CNN, whose targets carry ``masks`` too).
Models that read precomputed proposals (R-CNN, Fast R-CNN) take ``proposals=`` (a list
of (P_i, 4) arrays, one per image) and set ``uses_proposals = True``.
"""
from scratchvision.nets.detection.heads import FastRCNNPredictor, TwoMLPHead
from scratchvision.nets.detection.images import ImageList, batch_images, denormalise, normalise
from scratchvision.nets.detection.losses import fast_rcnn_loss
from scratchvision.nets.detection.postprocess import empty_detections, select_detections
from scratchvision.nets.detection.roi_heads import RoIHeads, assign_targets
from scratchvision.nets.detection.targets import check_proposals, check_targets

__all__ = ["FastRCNNPredictor", "ImageList", "RoIHeads", "TwoMLPHead", "assign_targets",
           "batch_images", "check_proposals", "check_targets", "denormalise", "empty_detections",
           "fast_rcnn_loss", "normalise", "select_detections"]
