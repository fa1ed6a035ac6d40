"""Faster R-CNN (Ren, He, Girshick, Sun, "Faster R-CNN: Towards Real-Time Object Detection
with Region Proposal Networks", NIPS 2015).

Fast R-CNN still took its proposals from Selective Search, seconds per image on a CPU.
Faster R-CNN computes them from the same feature map the detector reads, with a small
fully convolutional **Region Proposal Network** (RPN), so proposals cost almost nothing::

    image (3, H, W) -> conv layers (VGG-style, BN, stride 8) -> features (C, H/8, W/8)
                                                               |             |
      RPN (section 3.1):  3x3 conv + ReLU  <-------------------+             |
        -> 1x1 conv: A objectness logits per position  (cls_logits)          |
        -> 1x1 conv: 4 A box deltas per position       (bbox_pred)           |
        anchors: A = 3 sizes x 3 aspect ratios at every position             |
        -> decode deltas on the anchors, clip, drop tiny boxes,              |
           top pre_nms_top_n by objectness, NMS 0.7, top post_nms_top_n      |
        = proposals (P, 4) ----------------> RoI pooling (7 x 7) <-----------+
                                             -> fc6 -> fc7 -> class scores, box offsets
                                                (Fast R-CNN's head, reused as it is)

**Anchors.** ``ops.AnchorGenerator``: at feature cell (i, j) the anchors are centred on
pixel (8 j, 8 i) (torchvision's convention), ``sizes x ratios`` = {16, 32, 64} px x
{1:2, 1:1, 2:1}, A = 9, 16 x 16 x 9 = 2,304 anchors on a 128-pixel image. The sizes were
measured on the 5,084 boxes of Shapes' training split (box sides sqrt(w h): 5 % under
15 px, median 36, 95 % under 64): with {16, 32, 64}, 96.9 % of the ground truths have an
anchor with IoU >= 0.5 and 36.2 % one with IoU >= 0.7 ({12, 24, 48}: 92.5 / 37.7 %;
{20, 40, 80}: 94.8 / 35.3 %; {24, 48, 96}: 90.5 / 37.3 %). The 0.7 threshold alone would
leave most objects without a positive anchor; the paper's second rule below covers them.

**Anchor targets** (section 3.1.2), per image, by ``ops.Matcher(0.7, 0.3,
allow_low_quality_matches=True)``: an anchor is positive when its IoU with some ground
truth is >= 0.7, or when it is (one of the tied) best anchor(s) of a ground truth whatever
the IoU; negative when its best IoU is < 0.3; ignored otherwise. An image without objects
has only negatives. 256 anchors are sampled per image, up to half of them positive (the
rest negatives). Cross-boundary anchors are kept (torchvision's choice; the paper ignores
them in training, which on 128-pixel images would drop every large anchor near a border).

**RPN loss** (eq. 1): ``L = 1/N_cls sum_i L_cls(p_i, p*_i) + lambda 1/N_reg sum_i p*_i
L_reg(t_i, t*_i)``: binary cross-entropy of the sampled anchors' objectness, averaged
over the N_cls = 256 sampled anchors; smooth L1 (beta 1/9, as the released code) of the
positives' deltas against ``BoxCoder((1, 1, 1, 1)).encode(gt, anchor)``, summed and divided
by the number of sampled anchors (torchvision's normalisation; the paper's lambda = 10 with
N_reg ~ 2,400 anchor positions weighs the two terms about the same).

**Proposals** (section 3.3), with no gradient: deltas decoded on the anchors, the
``pre_nms_top_n`` best by objectness kept, clipped to the image, boxes under ``min_size``
pixels dropped, NMS at 0.7, the ``post_nms_top_n`` best kept; separate numbers for training
and testing (the paper: 2,000 / 300 after NMS at 600 px; here 300 / 100 on 128-pixel images
with at most a handful of objects).

**Training.** ``loss`` is *approximate joint training* (section 3.2): the four terms (RPN
objectness and boxes, detector classes and boxes) summed and minimised together, the
proposals treated as constants (no gradient through their coordinates). The paper's
**4-step alternating training** is ``training_stage(k)``: (1) backbone + RPN on the RPN
loss; (2) a fresh backbone + the detector head on proposals of the frozen step-1 network;
(3) the step-2 backbone frozen, a fresh RPN head trained on it; (4) backbone and RPN frozen,
the detector head fine-tuned on the step-3 proposals. After step 4 both share one backbone.
``train-det --schedule alternating`` runs the four.

Scaled for Shapes at 128 px on a CPU, as Fast R-CNN here: widths (16, 32, 64, 128) with
batch norm, stride 8, fc layers of 256 ('small'); 'large' for a GPU.
"""
from __future__ import annotations

import copy

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd import no_grad
from scratchvision.autograd.factories import default_generator
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.nets.detection.heads import FastRCNNPredictor, TwoMLPHead
from scratchvision.nets.detection.images import batch_images
from scratchvision.nets.detection.roi_heads import RoIHeads, build_pooler
from scratchvision.nets.detection.targets import check_targets
from scratchvision.nets.vgg import VGGBackbone
from scratchvision.nn import init
from scratchvision.ops import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    box_iou,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
)

SIZES = {
    "small": {"widths": (16, 32, 64, 128), "depths": (1, 2, 2, 2), "representation_size": 256},
    "tiny": {"widths": (8, 16, 16, 32), "depths": (1, 1, 1, 1), "representation_size": 64},
    "large": {"widths": (32, 64, 128, 256), "depths": (2, 2, 3, 3),
              "representation_size": 1024},
}


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then sibling 1x1 convs: (N, C, h, w) -> objectness (N, A, h, w) and
    deltas (N, 4 A, h, w). Weights from N(0, 0.01²), biases 0 (the paper's init)."""

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            init.normal_(layer.weight, std=0.01)
            init.zeros_(layer.bias)

    def forward(self, x):
        t = self.conv(x).relu()
        return self.cls_logits(t), self.bbox_pred(t)


def flatten_rpn_outputs(objectness, deltas) -> tuple:
    """(N, A, h, w) and (N, 4A, h, w) -> (N, h w A) and (N, h w A, 4), in the anchors'
    order (grid row, grid column, cell anchor: ``AnchorGenerator``'s)."""
    n, a, h, w = objectness.shape
    obj = objectness.permute(0, 2, 3, 1).reshape(n, h * w * a)
    d = deltas.reshape(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, 4)
    return obj, d


class RegionProposalNetwork(nn.Module):
    """Anchors, the RPN head, anchor targets and loss, and proposal selection (see the
    module docstring).

    Parameters
    ----------
    in_channels : channels of the feature map.
    anchor_sizes, aspect_ratios : the anchors at each position (ratio = height / width).
    fg_iou_thresh, bg_iou_thresh : anchor labelling (0.7 positive, < 0.3 negative).
    batch_size_per_image, positive_fraction : anchors sampled per image for the loss.
    pre_nms_top_n, post_nms_top_n : dicts ``{"training": n, "testing": n}``.
    nms_thresh : NMS IoU among proposals. min_size : smallest proposal side (pixels).
    """

    def __init__(self, in_channels: int, anchor_sizes=(16, 32, 64),
                 aspect_ratios=(0.5, 1.0, 2.0), fg_iou_thresh: float = 0.7,
                 bg_iou_thresh: float = 0.3, batch_size_per_image: int = 256,
                 positive_fraction: float = 0.5, pre_nms_top_n=None, post_nms_top_n=None,
                 nms_thresh: float = 0.7, min_size: float = 1.0) -> None:
        super().__init__()
        self.anchor_generator = AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),))
        self.num_anchors = len(anchor_sizes) * len(aspect_ratios)
        self.head = RPNHead(in_channels, self.num_anchors)
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.batch_size_per_image, self.positive_fraction = batch_size_per_image, \
            positive_fraction
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.pre_nms_top_n = dict({"training": 1000, "testing": 500}, **(pre_nms_top_n or {}))
        self.post_nms_top_n = dict({"training": 300, "testing": 100}, **(post_nms_top_n or {}))
        if not 0.0 <= nms_thresh <= 1.0:
            raise ValueError(f"nms_thresh must be in [0, 1], got {nms_thresh}")
        self.nms_thresh, self.min_size = nms_thresh, min_size

    def anchors(self, batch, features) -> np.ndarray:
        """(h w A, 4) float32 anchors of the padded batch (the same for every image)."""
        return np.asarray(self.anchor_generator.grid_anchors(
            [tuple(features.shape[-2:])],
            [(batch.tensors.shape[-2] // features.shape[-2],
              batch.tensors.shape[-1] // features.shape[-1])])[0], np.float32)

    # ------------------------------------------------------------------ training
    def assign_targets(self, anchors: np.ndarray, targets: list) -> tuple:
        """Per image: labels (M,) float32 (1 positive, 0 negative, -1 ignored) and the
        regression targets (M, 4) of the anchors (zeros where not positive)."""
        labels, codes = [], []
        for t in targets:
            gt = t["boxes"]
            lab = np.zeros(len(anchors), np.float32)
            reg = np.zeros((len(anchors), 4), np.float32)
            if len(gt):
                matched = np.asarray(self.matcher(np.asarray(box_iou(gt, anchors))))
                lab[matched >= 0] = 1.0
                lab[matched == Matcher.BETWEEN_THRESHOLDS] = -1.0
                pos = matched >= 0
                reg[pos] = self.box_coder.encode_single(gt[matched[pos]], anchors[pos])
            labels.append(lab)
            codes.append(reg)
        return labels, codes

    def loss(self, objectness, deltas, anchors: np.ndarray, targets: list) -> dict:
        """``{'loss_objectness', 'loss_rpn_box_reg'}`` from flattened head outputs."""
        labels, codes = self.assign_targets(anchors, targets)
        sampler = BalancedPositiveNegativeSampler(self.batch_size_per_image,
                                                  self.positive_fraction,
                                                  rng=default_generator())
        pos, neg = sampler(labels)
        m = len(anchors)
        pos_idx = np.concatenate([np.flatnonzero(p) + i * m for i, p in enumerate(pos)])
        neg_idx = np.concatenate([np.flatnonzero(q) + i * m for i, q in enumerate(neg)])
        sampled = np.concatenate([pos_idx, neg_idx]).astype(np.int64)
        obj = objectness.reshape(-1)
        xp = obj.xp
        if sampled.size == 0:
            zero = obj.sum() * 0.0
            return {"loss_objectness": zero, "loss_rpn_box_reg": deltas.sum() * 0.0}
        target = xp.asarray(np.concatenate(labels)[sampled], dtype=obj.dtype)
        loss_obj = F.binary_cross_entropy_with_logits(obj[sampled], target)
        if pos_idx.size == 0:
            loss_box = deltas.sum() * 0.0
        else:
            d = deltas.reshape(-1, 4)[pos_idx.astype(np.int64)]
            tgt = xp.asarray(np.concatenate(codes)[pos_idx], dtype=d.dtype)
            loss_box = F.smooth_l1_loss(d, tgt, reduction="sum", beta=1.0 / 9) \
                * (1.0 / sampled.size)
        return {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box}

    # ---------------------------------------------------------------- proposals
    def select_proposals(self, objectness: np.ndarray, deltas: np.ndarray,
                         anchors: np.ndarray, image_sizes: list, training: bool) -> tuple:
        """Per image proposals (P_i, 4) float32 and their objectness logits (P_i,), host
        arrays (see the module docstring for the steps)."""
        mode = "training" if training else "testing"
        pre, post = self.pre_nms_top_n[mode], self.post_nms_top_n[mode]
        boxes_out, scores_out = [], []
        for obj, d, size in zip(objectness, deltas, image_sizes):
            top = np.argsort(-obj, kind="stable")[:pre]
            boxes = np.asarray(self.box_coder.decode_single(d[top], anchors[top]),
                               np.float32).reshape(-1, 4)
            scores = obj[top].astype(np.float32)
            boxes = np.asarray(clip_boxes_to_image(boxes, size))
            keep = np.asarray(remove_small_boxes(boxes, self.min_size))
            keep = keep[np.isfinite(scores[keep])]
            boxes, scores = boxes[keep], scores[keep]
            keep = np.asarray(nms(boxes, scores, self.nms_thresh))[:post]
            boxes_out.append(np.ascontiguousarray(boxes[keep]))
            scores_out.append(np.ascontiguousarray(scores[keep]))
        return boxes_out, scores_out

    def forward(self, batch, features, targets: list | None = None) -> tuple:
        """Proposals (a list of (P_i, 4) host arrays) and, with ``targets``, the RPN losses
        (``{}`` without). Training-time proposal numbers while the module trains."""
        objectness, deltas = flatten_rpn_outputs(*self.head(features))
        anchors = self.anchors(batch, features)
        proposals, _ = self.select_proposals(objectness.numpy(), deltas.numpy(), anchors,
                                             batch.image_sizes, self.training)
        losses = {} if targets is None else self.loss(objectness, deltas, anchors, targets)
        return proposals, losses


class FasterRCNN(nn.Module):
    """Backbone, RPN and Fast R-CNN's RoI head (see the module docstring).

    Parameters
    ----------
    num_classes : classes including background.
    widths, depths : the VGG-style backbone's stages (the last one does not pool).
    representation_size : width of fc6 and fc7.
    pooler : ``'roi_pool'`` (the paper), ``'roi_align'`` or ``'roi_align_unaligned'``.
    pool_size : RoI pooling output (7).
    anchor_sizes, aspect_ratios, rpn_* : see ``RegionProposalNetwork``.
    box_* : the RoI head's sampling and test-time settings (``RoIHeads``): 64 RoIs per image,
        25 % foreground at IoU >= 0.5, background [0, 0.5) (the released code's), NMS 0.3.
    """

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128), depths=(1, 2, 2, 2),
                 representation_size: int = 256, pooler: str = "roi_pool", pool_size: int = 7,
                 anchor_sizes=(16, 32, 64), aspect_ratios=(0.5, 1.0, 2.0),
                 rpn_pre_nms_top_n=None, rpn_post_nms_top_n=None, rpn_nms_thresh: float = 0.7,
                 rpn_batch_size_per_image: int = 256, rpn_positive_fraction: float = 0.5,
                 box_batch_size_per_image: int = 64, box_positive_fraction: float = 0.25,
                 box_bg_iou_thresh=(0.0, 0.5), box_nms_thresh: float = 0.3,
                 box_score_thresh: float = 0.05, detections_per_img: int = 100) -> None:
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2 (background included), "
                             f"got {num_classes!r}")
        if len(widths) != len(depths) or len(widths) < 1:
            raise ValueError(f"widths {widths} and depths {depths} need one entry per stage")
        n = len(widths)
        self.num_classes = int(num_classes)
        self.backbone_config = {"widths": tuple(widths), "depths": tuple(depths)}
        self.backbone = self._new_backbone()
        self.stride = 2 ** (n - 1)
        self.rpn_config = {"in_channels": widths[-1], "anchor_sizes": tuple(anchor_sizes),
                           "aspect_ratios": tuple(aspect_ratios),
                           "pre_nms_top_n": rpn_pre_nms_top_n,
                           "post_nms_top_n": rpn_post_nms_top_n, "nms_thresh": rpn_nms_thresh,
                           "batch_size_per_image": rpn_batch_size_per_image,
                           "positive_fraction": rpn_positive_fraction}
        self.rpn = RegionProposalNetwork(**self.rpn_config)
        self.pooler = pooler
        self.roi_heads = RoIHeads(
            build_pooler(pooler, pool_size, 1.0 / self.stride),
            TwoMLPHead(widths[-1] * pool_size * pool_size, representation_size),
            FastRCNNPredictor(representation_size, num_classes), num_classes,
            bg_iou_thresh=box_bg_iou_thresh, batch_size_per_image=box_batch_size_per_image,
            positive_fraction=box_positive_fraction, nms_thresh=box_nms_thresh,
            score_thresh=box_score_thresh, detections_per_img=detections_per_img)

    def _new_backbone(self) -> VGGBackbone:
        n = len(self.backbone_config["widths"])
        return VGGBackbone(3, self.backbone_config["widths"], self.backbone_config["depths"],
                           dilations=(1,) * n, pools=(True,) * (n - 1) + (False,))

    def features(self, images, backbone=None):
        """Batch the images (padded to the stride) and run the conv layers once."""
        batch = batch_images(images, self.stride)
        return batch, (backbone or self.backbone)(batch.tensors)[-1]

    def loss(self, images, targets) -> dict:
        """Approximate joint training: the RPN's and the detector's losses of a batch."""
        batch, feats = self.features(images)
        targets = check_targets(targets, batch.image_sizes, self.num_classes)
        proposals, rpn_losses = self.rpn(batch, feats, targets)
        return {**rpn_losses, **self.detector_loss(feats, proposals, targets)}

    def detector_loss(self, features, proposals: list, targets: list) -> dict:
        """The RoI head's losses on given proposals (Mask R-CNN adds its mask term)."""
        return self.roi_heads.loss(features, proposals, targets)

    def propose(self, images) -> list:
        """The RPN's proposals (test-time numbers in eval mode), no gradient."""
        with no_grad():
            batch, feats = self.features(images)
            return self.rpn(batch, feats)[0]

    def predict(self, images, proposer: FasterRCNN | None = None) -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` Tensors in input-image pixels.

        ``proposer``: another network whose RPN proposes (step 2 of the alternating
        training, where the detector is evaluated on the step-1 network's proposals)."""
        with no_grad():
            batch, feats = self.features(images)
            proposals = self._proposals(batch, feats, images, proposer)
            return self.roi_heads.predict(feats, proposals, batch.image_sizes)

    def _proposals(self, batch, feats, images, proposer) -> list:
        return self.rpn(batch, feats)[0] if proposer is None else proposer.propose(images)

    def training_stage(self, step: int) -> AlternatingStep:
        """Step ``step`` (1-4) of the 4-step alternating training, as a module the trainer
        can fit (its parameters are the ones that step trains)."""
        return AlternatingStep(self, step)


class AlternatingStep(nn.Module):
    """One step of the paper's 4-step alternating training (section 3.2), wrapping the
    model: ``loss`` computes the terms this step trains, the other parts are frozen
    (``requires_grad`` off, and batch norm kept in eval mode so its statistics stay too).

    1. the RPN on the backbone: ``{objectness, rpn box}``; backbone and RPN train.
    2. a *fresh* backbone and the detector head on the proposals of a frozen copy of the
       step-1 network: ``{classifier, box}``.
    3. the step-2 backbone frozen; a fresh RPN head trained on it (as the released code,
       which starts step 3's RPN layers from scratch): ``{objectness, rpn box}``.
    4. backbone and RPN frozen; the detector head fine-tuned on the step-3 proposals.

    Building step 2 or 3 re-initialises the part it starts afresh, so build the steps in
    order, each after the previous one has trained.
    """

    def __init__(self, model: FasterRCNN, step: int) -> None:
        super().__init__()
        if step not in (1, 2, 3, 4):
            raise ValueError(f"step must be 1, 2, 3 or 4, got {step!r}")
        self.step = step
        self.model = model
        # step 2: the step-1 network, frozen, proposes (kept in a tuple, so it is not a
        # submodule: neither trained nor saved); the detector gets a fresh backbone
        self._proposer = ()
        if step == 2:
            self._proposer = (copy.deepcopy(model).eval().requires_grad_(False),)
            model.backbone = model._new_backbone().to(_device_of(model))
        if step == 3:
            model.rpn = RegionProposalNetwork(**model.rpn_config).to(_device_of(model))
        trains = {1: ("backbone", "rpn"), 2: ("backbone", "roi_heads"), 3: ("rpn",),
                  4: ("roi_heads",)}[step]
        self.frozen = [n for n in ("backbone", "rpn", "roi_heads") if n not in trains]
        for name in ("backbone", "rpn", "roi_heads"):
            getattr(model, name).requires_grad_(name in trains)

    def predict(self, images) -> list:
        """The model's detections; in step 2 on the frozen step-1 network's proposals (the
        step-1 RPN head does not fit the fresh backbone until step 3 retrains it)."""
        return self.model.predict(images, proposer=self._proposer[0] if self._proposer
                                  else None)

    def train(self, mode: bool = True) -> AlternatingStep:
        super().train(mode)
        for name in self.frozen:
            getattr(self.model, name).eval()
        return self

    def loss(self, images, targets) -> dict:
        m = self.model
        if self.step in (1, 3):
            batch, feats = m.features(images)
            targets = check_targets(targets, batch.image_sizes, m.num_classes)
            return m.rpn(batch, feats, targets)[1]
        proposer = self._proposer[0] if self.step == 2 else m
        with no_grad():
            was = proposer.rpn.training
            proposer.rpn.train(True)                 # training-time proposal numbers
            b, f = proposer.features(images)
            proposals = proposer.rpn(b, f)[0]
            proposer.rpn.train(was)
        batch, feats = m.features(images)
        targets = check_targets(targets, batch.image_sizes, m.num_classes)
        return m.detector_loss(feats, proposals, targets)

    def finish(self) -> FasterRCNN:
        """Unfreeze every part (after the step has trained) and return the model."""
        for name in ("backbone", "rpn", "roi_heads"):
            getattr(self.model, name).requires_grad_(True)
        return self.model


def _device_of(module: nn.Module) -> str:
    return str(next(iter(module.parameters())).device)


def proposal_recall(model: FasterRCNN, images: np.ndarray, targets: list, iou: float = 0.5,
                    batch_size: int = 8, device: str = "cpu") -> float:
    """Fraction of ground-truth boxes covered (IoU >= ``iou``) by the model's test-time
    proposals: the RPN's own metric during the RPN-only steps of alternating training."""
    import scratchvision as sv  # noqa: PLC0415
    found = total = 0
    was = model.training
    model.eval()
    for i in range(0, len(images), batch_size):
        x = sv.tensor(images[i:i + batch_size], device=device)
        for props, t in zip(model.propose(x), targets[i:i + batch_size]):
            gt = np.asarray(t["boxes"]).reshape(-1, 4)
            total += len(gt)
            if len(gt) and len(props):
                found += int((np.asarray(box_iou(gt, props)).max(axis=1) >= iou).sum())
    model.train(was)
    return found / max(total, 1)


@register_gradcheck("rpn_loss")
def _rpn_loss_case(rng):
    # 16 anchors (a 4 x 4 grid of 16-pixel squares on a 32 x 32 image) and one object: fewer
    # labelled anchors than the 256 sampled, so every one of them is in the loss and the
    # sample cannot change while gradcheck perturbs the inputs
    rpn = RegionProposalNetwork(4, anchor_sizes=(16,), aspect_ratios=(1.0,))
    anchors = np.asarray(rpn.anchor_generator.grid_anchors([(4, 4)], [(8, 8)])[0])
    targets = [{"boxes": np.array([[2.0, 1.0, 18.0, 14.0]], np.float32),
                "labels": np.array([1])}]
    objectness = rng.standard_normal((1, 16))
    deltas = rng.standard_normal((1, 16, 4)) * 0.3

    def fn(objectness, deltas):
        return tuple(rpn.loss(objectness, deltas, anchors, targets).values())
    return fn, [objectness, deltas]
