"""torchvision's own detection models configured to do the work of scratchvision's small
Faster R-CNN and SSD, for the training-step benchmark (``benchmarks/train_step.py``).

``torch_faster_rcnn(torch, torchvision, m, image_size)`` builds torchvision's ``FasterRCNN``
and ``torch_ssd(torch, torchvision, m)`` builds ``torchvision.models.detection.SSD`` from a
scratchvision model ``m`` (``build_detector('faster_rcnn' | 'ssd', 4, size)``):

- **the backbone layer for layer** from ``m``'s module tree (conv, batch norm, ReLU, max
  pooling, in the same order, ``_convert``), with ``m``'s weights, batch-norm affine
  parameters, running statistics, eps and momentum copied in; the SSD backbone returns the
  same source maps (the last ``sources`` stages and every extra layer) as an OrderedDict;
- **the heads** from torchvision's own classes (``RPNHead``, ``TwoMLPHead``,
  ``FastRCNNPredictor``, ``SSDHead``), of ``m``'s widths, with ``m``'s weights copied in
  (their layouts are the same: torchvision's anchor order, per-anchor channel order, and
  the flattening of the pooled RoIs);
- **every setting** (anchors, sampling, thresholds, top-n, pooling) read from ``m``'s
  attributes, never retyped, so a change to a preset reaches both sides. The table below
  lists them for the ``small`` presets.

Both models start from the same weights, so one forward gives the same backbone features
(``check`` measures it: at most ~2.5e-5 apart on features up to ~10, float32 rounding)
and exactly the same anchors / default boxes; a training step then does the same work on
both sides, up to the random samples (RPN anchors and RoIs are drawn
by each library's own generator: the same numbers of them, not the same ones) and the
differences marked (*) below, which torchvision's classes do not expose. The parameter
counts are equal (``num_parameters``; the benchmark prints both): batch-norm running
statistics are buffers on both sides.

Faster R-CNN (``nets/faster_rcnn.py``, ``nets/detection/roi_heads.py``), small preset::

    setting                       scratchvision (small)          torchvision argument
    ----------------------------  -----------------------------  -------------------------------
    input                         4 x 3 x 128 x 128, normalised  same tensors, list of (3,128,128)
    resize / normalise            none (batch_images pads to 8)  GeneralizedRCNNTransform:
                                                                 min_size=max_size=128,
                                                                 image_mean 0, image_std 1,
                                                                 _skip_resize=True (training)
    backbone                      VGG 16,32,64,128 x 1,2,2,2     nn.Sequential built from it,
                                  conv3x3(no bias)+BN+ReLU,      weights copied; out_channels=128
                                  2x2 max pool after 3 stages
    feature stride                8 (one map, 16 x 16)           AnchorGenerator stride =
                                                                 image // grid = 8
    anchor sizes / ratios (h/w)   (16, 32, 64) x (0.5, 1, 2)     AnchorGenerator(((16,32,64),),
                                  A = 9                          ((0.5,1.0,2.0),))
    RPN head                      3x3 conv 128 + ReLU, 1x1 -> 9,  RPNHead(128, 9), weights copied
                                  1x1 -> 36
    RPN matcher                   Matcher(0.7, 0.3, low-quality) rpn_fg_iou_thresh=0.7,
                                                                 rpn_bg_iou_thresh=0.3
    RPN sampled anchors / image   256, positive fraction 0.5     rpn_batch_size_per_image=256,
                                                                 rpn_positive_fraction=0.5
    RPN box coder                 weights (1, 1, 1, 1)           (torchvision's RPN: the same)
    RPN losses                    BCE mean; smooth L1 beta 1/9,  (torchvision's RPN: the same)
                                  sum / sampled anchors
    pre-NMS top-n train / test    1000 / 500                     rpn_pre_nms_top_n_train/_test
    post-NMS top-n train / test   300 / 100                      rpn_post_nms_top_n_train/_test
    RPN NMS IoU                   0.7                            rpn_nms_thresh=0.7
    RPN score threshold           none                           rpn_score_thresh=0.0 (keeps all)
    smallest proposal side        1.0 px                         rpn.min_size = 1.0 (set after
                                                                 construction; default 1e-3)
    RoI fg IoU                    >= 0.5                         box_fg_iou_thresh=0.5
    RoI bg IoU                    [0.0, 0.5)                     box_bg_iou_thresh=0.5 (lower
                                                                 bound is always 0 there)
    gt boxes added as proposals   yes                            (torchvision: always)
    sampled RoIs / image          64, positive fraction 0.25     box_batch_size_per_image=64,
                                                                 box_positive_fraction=0.25
    RoI box coder                 weights (10, 10, 5, 5)         bbox_reg_weights=(10,10,5,5)
    RoI pooling                   RoIPool 7 x 7, scale 1/8       roi_heads.box_roi_pool =
                                  (default 'roi_pool')           torchvision.ops.RoIPool(7, 1/8)
                                                                 in a one-level wrapper (the
                                                                 constructor only takes a
                                                                 MultiScaleRoIAlign); RoIAlign
                                                                 for 'roi_align*' poolers
    box head                      fc6 6272 -> 256, fc7 256 ->    TwoMLPHead(128*7*7, 256),
                                  256, ReLU, no dropout          weights copied
    box predictor                 cls 256 -> 4, box 256 -> 16    FastRCNNPredictor(256, 4), copied
    RoI losses                    CE mean; smooth L1 of the true (torchvision's fastrcnn_loss)
                                  class's offsets, sum / RoIs
    (*) RoI smooth L1 beta        1.0 (Fast R-CNN paper)         1/9, hard-coded in fastrcnn_loss:
                                                                 same work, a different loss value
    test-time score / NMS / top   0.05 / 0.3 / 100               box_score_thresh, box_nms_thresh,
                                                                 box_detections_per_img (unused
                                                                 in a training step)

SSD (``nets/ssd.py``), small preset::

    setting                       scratchvision (small)          torchvision argument
    ----------------------------  -----------------------------  -------------------------------
    input                         16 x 3 x 128 x 128, normalised same tensors, list of (3,128,128)
    resize / normalise            none (resize_images: already   SSD(size=(128, 128), image_mean 0,
                                  128 x 128)                     image_std 1, _skip_resize=True)
    backbone                      stages 16,32,64,128,128 x      nn.Module built from it layer for
                                  1,1,2,2,2 (max pool before     layer, weights copied, returning
                                  stages 2..5), extras 3 x       the same six maps (OrderedDict)
                                  (1x1 -> 64, 3x3 s2 -> 128)
    source maps                   32,16,8,4,2,1 px grids;        the same (the last 3 stages and
                                  channels 64,128,128,128,128,   the 3 extras)
                                  128
    default boxes per location    4, 6, 6, 6, 4, 4 (D = 6132)    DefaultBoxGenerator(
                                  ratios [2],[2,3],[2,3],[2,3],  aspect_ratios=the same,
                                  [2],[2]                        scales=m's 7 scales, clip=True,
                                  scales 0.1 .. 0.9 (+1.06)      steps=None)
    head                          3x3 conv -> A (C+1) and -> 4A  SSDHead(channels, A, 4), copied
                                  per map
    box coder                     weights (10, 10, 5, 5)         (torchvision's SSD: the same)
    matching IoU                  0.5 (>=)                       iou_thresh=0.5
    hard negative mining          3 negatives per positive, per  positive_fraction=0.25:
                                  image, by background CE        neg_to_pos_ratio = 0.75/0.25 = 3
    losses                        smooth L1 beta 1 sum / N;      (torchvision's SSD: the same,
                                  CE of pos + mined neg / N      N = max(1, positives))
    (*) matching rule             each gt's best box greedily    SSDMatcher: each gt's argmax box
                                  (overall best pair first),     forced, a later gt may take a
                                  then IoU >= 0.5                shared box; same cost, the same
                                                                 matches unless two objects share
                                                                 their best default box
    (*) negative ranking          background CE on the host      CE of all N x D boxes in the
                                  (detached), CE in the graph    graph (forward and backward),
                                  only for Pos + Neg             two sorts, then the sums
    test-time score / NMS / top   0.01 / 0.45 / 200, 400 per     score_thresh, nms_thresh,
                                  class                          detections_per_img,
                                                                 topk_candidates (unused here)

Left on the torchvision side, with no switch to remove them: ``GeneralizedRCNNTransform``
still runs its normalisation as arithmetic ((x - 0) / 1) and copies the images into a new
batch tensor (``batch_images``; 128 is already a multiple of its ``size_divisible`` 32, so
nothing is padded); anchors / default boxes are regenerated on every forward (scratchvision
regenerates the RPN anchors too, and precomputes SSD's default boxes); the RPN decodes the
deltas of all anchors before taking the top-n (scratchvision decodes only the top-n: the
same proposals). Each is well under a millisecond of a step.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

__all__ = ["check", "num_parameters", "torch_faster_rcnn", "torch_ssd", "torch_targets"]


# ----------------------------------------------------------------------------- layers
def _param(torch, t):
    """A scratchvision Tensor / Parameter (or array) as a contiguous torch tensor."""
    arr = t.numpy() if hasattr(t, "numpy") else np.asarray(t)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _copy(torch, t_layer, sv_layer) -> None:
    """Weight and bias of a conv / linear layer."""
    with torch.no_grad():
        t_layer.weight.copy_(_param(torch, sv_layer.weight))
        if sv_layer.bias is not None:
            t_layer.bias.copy_(_param(torch, sv_layer.bias))


def _convert(torch, layer):
    """The torch layer doing what the scratchvision ``layer`` does, its weights copied."""
    tnn = torch.nn
    name = type(layer).__name__
    if name == "Sequential":
        return tnn.Sequential(*[_convert(torch, sub) for sub in layer])
    if name == "Conv2d":
        c = tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                       stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                       groups=layer.groups, bias=layer.bias is not None)
        _copy(torch, c, layer)
        return c
    if name == "BatchNorm2d":
        bn = tnn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                             affine=layer.affine,
                             track_running_stats=layer.track_running_stats)
        with torch.no_grad():
            if layer.affine:
                bn.weight.copy_(_param(torch, layer.weight))
                bn.bias.copy_(_param(torch, layer.bias))
            if layer.track_running_stats:
                bn.running_mean.copy_(_param(torch, layer.running_mean))
                bn.running_var.copy_(_param(torch, layer.running_var))
        return bn
    if name == "ReLU":
        return tnn.ReLU()
    if name == "MaxPool2d":
        if layer.return_indices:
            raise ValueError("a max pool returning indices has no place in these backbones")
        return tnn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                             ceil_mode=layer.ceil_mode)
    if name == "Linear":
        fc = tnn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        _copy(torch, fc, layer)
        return fc
    raise TypeError(f"no torch layer for scratchvision's {name}")


def _pooler(torch, torchvision, pool):
    """torchvision's RoIPool / RoIAlign of the same settings, as the one-level module that
    torchvision's RoIHeads calls as ``box_roi_pool(features, proposals, image_shapes)``."""
    ops = torchvision.ops
    if type(pool).__name__ == "RoIPool":
        layer = ops.RoIPool(pool.output_size, pool.spatial_scale)
    elif type(pool).__name__ == "RoIAlign":
        layer = ops.RoIAlign(pool.output_size, pool.spatial_scale, pool.sampling_ratio,
                             aligned=pool.aligned)
    else:
        raise TypeError(f"no torchvision pooler for {type(pool).__name__}")

    class OneLevelPooler(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = layer

        def forward(self, features, proposals, image_shapes):
            return self.pool(features["0"], proposals)
    return OneLevelPooler()


def num_parameters(model) -> int:
    """Learnable scalars of a torch module (scratchvision's ``num_parameters``)."""
    return sum(p.numel() for p in model.parameters())


def torch_targets(torch, targets: list) -> list:
    """scratchvision targets (numpy x1y1x2y2 boxes, labels in 1..C) as torchvision's:
    float32 box tensors and int64 label tensors."""
    return [{"boxes": torch.as_tensor(np.asarray(t["boxes"], np.float32).reshape(-1, 4)),
             "labels": torch.as_tensor(np.asarray(t["labels"], np.int64))} for t in targets]


# ----------------------------------------------------------------------------- Faster R-CNN
def torch_faster_rcnn(torch, torchvision, m, image_size: int):
    """torchvision's FasterRCNN doing the work of scratchvision's FasterRCNN ``m`` on
    ``image_size`` x ``image_size`` inputs (see the module docstring), weights copied."""
    det = torchvision.models.detection
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.rpn import RPNHead
    rpn, rh = m.rpn, m.roi_heads
    if rh.bg_iou_thresh[0] != 0.0:
        raise ValueError(f"torchvision's RoIHeads labels every RoI under bg_iou_thresh as "
                         f"background: no lower bound like {rh.bg_iou_thresh[0]}")
    if not rh.add_gt_as_proposals:
        raise ValueError("torchvision's RoIHeads always adds the ground truths as proposals")
    if rh.box_head.dropout:
        raise ValueError("torchvision's TwoMLPHead has no dropout")

    bb = m.backbone
    layers = []
    for stage, pool in zip(bb.stages, bb.pools):
        layers.append(_convert(torch, stage))
        if pool:
            layers.append(_convert(torch, bb.pool))
    backbone = torch.nn.Sequential(*layers)
    backbone.out_channels = bb.widths[-1]

    anchors = det.anchor_utils.AnchorGenerator(
        tuple(tuple(s) for s in rpn.anchor_generator.sizes),
        tuple(tuple(a) for a in rpn.anchor_generator.aspect_ratios))
    rpn_head = RPNHead(backbone.out_channels, rpn.num_anchors)
    _copy(torch, rpn_head.conv[0][0], rpn.head.conv)
    _copy(torch, rpn_head.cls_logits, rpn.head.cls_logits)
    _copy(torch, rpn_head.bbox_pred, rpn.head.bbox_pred)

    fc6, fc7 = rh.box_head.fc6, rh.box_head.fc7
    box_head = TwoMLPHead(fc6.in_features, fc6.out_features)
    _copy(torch, box_head.fc6, fc6)
    _copy(torch, box_head.fc7, fc7)
    pred = rh.box_predictor
    box_predictor = FastRCNNPredictor(pred.cls_score.in_features, pred.cls_score.out_features)
    _copy(torch, box_predictor.cls_score, pred.cls_score)
    _copy(torch, box_predictor.bbox_pred, pred.bbox_pred)

    model = det.FasterRCNN(
        backbone, num_classes=None,
        min_size=image_size, max_size=image_size, image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0], _skip_resize=True,
        rpn_anchor_generator=anchors, rpn_head=rpn_head,
        rpn_pre_nms_top_n_train=rpn.pre_nms_top_n["training"],
        rpn_pre_nms_top_n_test=rpn.pre_nms_top_n["testing"],
        rpn_post_nms_top_n_train=rpn.post_nms_top_n["training"],
        rpn_post_nms_top_n_test=rpn.post_nms_top_n["testing"],
        rpn_nms_thresh=rpn.nms_thresh,
        rpn_fg_iou_thresh=rpn.matcher.high_threshold,
        rpn_bg_iou_thresh=rpn.matcher.low_threshold,
        rpn_batch_size_per_image=rpn.batch_size_per_image,
        rpn_positive_fraction=rpn.positive_fraction,
        rpn_score_thresh=0.0,
        box_head=box_head, box_predictor=box_predictor,
        box_score_thresh=rh.score_thresh, box_nms_thresh=rh.nms_thresh,
        box_detections_per_img=rh.detections_per_img,
        box_fg_iou_thresh=rh.fg_iou_thresh, box_bg_iou_thresh=rh.bg_iou_thresh[1],
        box_batch_size_per_image=rh.batch_size_per_image,
        box_positive_fraction=rh.positive_fraction,
        bbox_reg_weights=rh.box_coder.weights)
    model.rpn.min_size = rpn.min_size                  # torchvision hard-codes 1e-3
    model.roi_heads.box_roi_pool = _pooler(torch, torchvision, rh.box_roi_pool)
    return model


# ----------------------------------------------------------------------------- SSD
def torch_ssd(torch, torchvision, m):
    """torchvision's SSD doing the work of scratchvision's SSD ``m`` (see the module
    docstring), weights copied."""
    det = torchvision.models.detection
    from torchvision.models.detection.ssd import SSD, SSDHead
    tnn = torch.nn

    class SSDBackbone(tnn.Module):
        """m's stages and extra layers; returns the source maps, finest first."""

        def __init__(self):
            super().__init__()
            self.stages = tnn.ModuleList([_convert(torch, s) for s in m.stages])
            self.extras = tnn.ModuleList([_convert(torch, e) for e in m.extras])
            self.first_source = m.first_source

        def forward(self, x):
            out = OrderedDict()
            for s, stage in enumerate(self.stages):
                x = stage(x)
                if s >= self.first_source:
                    out[str(len(out))] = x
            for extra in self.extras:
                x = extra(x)
                out[str(len(out))] = x
            return out

    gen = m.anchor_generator
    anchors = det.anchor_utils.DefaultBoxGenerator(
        [list(r) for r in gen.aspect_ratios], scales=list(gen.scales), steps=gen.steps,
        clip=gen.clip)
    head = SSDHead([h.in_channels for h in m.cls_heads], list(m.boxes_per_cell),
                   m.num_classes)
    for t, s in zip(head.classification_head.module_list, m.cls_heads):
        _copy(torch, t, s)
    for t, s in zip(head.regression_head.module_list, m.box_heads):
        _copy(torch, t, s)
    size = (m.input_size, m.input_size)
    return SSD(SSDBackbone(), anchors, size, m.num_classes,
                   image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0], head=head,
                   score_thresh=m.score_thresh, nms_thresh=m.nms_thresh,
                   detections_per_img=m.detections_per_img, iou_thresh=m.iou_threshold,
                   topk_candidates=m.topk_candidates,
                   positive_fraction=1.0 / (1 + m.neg_pos_ratio), _skip_resize=True)


# ----------------------------------------------------------------------------- checks
def check(torch, sv_model, torch_model, x: np.ndarray) -> dict:
    """Largest |difference| between the two models' backbone outputs (training mode: batch
    statistics, on copies, so neither model's running statistics move) and between their
    anchors / default boxes, on the batch ``x`` (N, 3, H, W)."""
    import scratchvision as sv  # noqa: PLC0415
    sm, tm = copy.deepcopy(sv_model).train(), copy.deepcopy(torch_model).train()
    xt = torch.from_numpy(np.ascontiguousarray(x))
    with torch.no_grad():
        if hasattr(sm, "rpn"):
            ours = [sm.backbone(sv.tensor(x))[-1]]
            theirs = [tm.backbone(xt)]
            a_ours = sm.rpn.anchors(sm.features(sv.tensor(x))[0], ours[0])
            a_theirs = tm.rpn.anchor_generator(_image_list(xt), theirs)[0]
        else:
            ours = sm._sources(sv.tensor(x))
            theirs = list(tm.backbone(xt).values())
            a_ours = sm.default_boxes
            a_theirs = tm.anchor_generator(_image_list(xt), theirs)[0]
    feats = max(float(np.abs(o.numpy() - t.numpy()).max()) for o, t in zip(ours, theirs))
    scale = max(float(np.abs(o.numpy()).max()) for o in ours)
    a_theirs = a_theirs.numpy()
    boxes = float(np.abs(np.asarray(a_ours, np.float64) - a_theirs).max()) \
        if np.shape(a_ours) == a_theirs.shape else float("inf")
    return {"features": feats, "feature_scale": scale, "anchors": boxes,
            "num_anchors": (len(a_ours), len(a_theirs))}


def _image_list(x):
    """An ImageList of the batch as it is (torchvision's anchor generators read it)."""
    from torchvision.models.detection.image_list import ImageList  # noqa: PLC0415
    return ImageList(x, [tuple(x.shape[-2:])] * len(x))
