"""``scratchvision.ops``: detection ops (boxes, NMS, RoI pooling and multi-scale RoI
Align, anchors, box coding, the sigmoid focal loss), named as in ``torchvision.ops``.
"""
from scratchvision.ops.boxes import (box_area, box_convert, box_iou, clip_boxes_to_image,
                                     generalized_box_iou, remove_small_boxes)
from scratchvision.ops.nms import batched_nms, nms, soft_nms
from scratchvision.ops.roi_align import RoIAlign, roi_align
from scratchvision.ops.roi_pool import RoIPool, roi_pool
from scratchvision.ops.poolers import MultiScaleRoIAlign
from scratchvision.ops.focal_loss import sigmoid_focal_loss
from scratchvision.ops.anchors import AnchorGenerator, DefaultBoxGenerator
from scratchvision.ops.box_coder import BoxCoder
from scratchvision.ops.matcher import Matcher
from scratchvision.ops.sampler import BalancedPositiveNegativeSampler
