"""The mask branch of Mask R-CNN (He et al., ICCV 2017), with torchvision's semantics.

Training, on the sampled *positive* RoIs only (each with its matched ground truth g_p and
class k_p)::

    target t_p = RoIAlign(gt_mask[g_p], RoI_p) -> (M, M) in [0, 1]   project_masks_on_boxes
    pooled RoI features (P, C, 14, 14)
      -> 4 x (conv3x3 + ReLU), C -> 256                                MaskRCNNHeads
      -> deconv 2x2 stride 2 + ReLU -> conv1x1 to K channels           MaskRCNNPredictor
      -> logits (P, K, 28, 28)
    L_mask = mean_{p, i, j} BCE(sigmoid(logits[p, k_p, i, j]), t_p[i, j])  maskrcnn_loss

Only the channel of the RoI's own class is trained (the paper's decoupling of mask and
class: no competition between classes, unlike a per-pixel softmax). The target crop is
RoIAlign on the (G, 1, H, W) stack of ground-truth masks seen as a batch of G images: the
RoI row ``[g_p, x1, y1, x2, y2]`` names its mask by the batch index; spatial_scale 1,
``sampling_ratio=-1`` (``ceil(bin size)`` samples a bin) and ``aligned=False``, as
torchvision: sample points at ``x1 + (pw + (ix + 0.5) / grid) * (x2 - x1) / M`` with pixel
``i``'s value at coordinate ``i`` (not ``i + 0.5``), so a box drawn on pixel edges reads
half a pixel to the right and below of what it covers (see the test's worked example).

Testing, ``paste_masks_in_image`` (torchvision's ``expand_masks`` + ``expand_boxes`` +
``paste_mask_in_image``): the M x M probabilities are padded by ``padding`` zeros to
(M + 2 padding)² and the box scaled about its centre by (M + 2 padding) / M, so the zero
border lands just outside the box and the resize fades to 0 there instead of stretching
the edge values. The box is truncated toward zero to integers (torch's ``.to(int64)``)
and read as inclusive pixel indices: ``w = max(x2 - x1 + 1, 1)``, ``h`` likewise. The mask
is resized to (h, w) (bilinear, ``align_corners=False``) and image pixel (y, x) takes
``resized[y - y1, x - x1]`` for ``max(y1, 0) <= y < min(y2 + 1, H)`` (x likewise); pixels
outside the box are 0. Threshold at 0.5 for a binary mask.
"""
from __future__ import annotations

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.backend import get_array_module
from scratchvision.kernels import interpolate as _interp
from scratchvision.nn import init
from scratchvision.ops.roi_align import roi_align
from scratchvision.validation import to_numpy

__all__ = ["MaskRCNNHeads", "MaskRCNNPredictor", "expand_boxes", "expand_masks",
           "maskrcnn_loss", "paste_mask_in_image", "paste_masks_in_image",
           "project_masks_on_boxes"]


# ------------------------------------------------------------------------ training
def project_masks_on_boxes(gt_masks, boxes, matched_idxs, M: int):
    """Mask targets: (G, H, W) masks, (P, 4) boxes, (P,) gt indices -> (P, M, M) float32.

    Each box's matched mask is cut out and resized by RoIAlign (module docstring). Arrays
    stay on their device (NumPy or CuPy, taken from ``boxes``).
    """
    xp = get_array_module(boxes)
    boxes = xp.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    matched = to_numpy(matched_idxs).astype(np.int64).reshape(-1)
    if len(matched) != len(boxes):
        raise ValueError(f"matched_idxs ({len(matched)},) must match boxes {boxes.shape}")
    gt_masks = xp.asarray(gt_masks)
    if gt_masks.ndim != 3:
        raise ValueError(f"gt_masks must be (G, H, W), got shape {gt_masks.shape}")
    if len(boxes) == 0:
        return xp.zeros((0, M, M), np.float32)
    if matched.min() < 0 or matched.max() >= len(gt_masks):
        raise ValueError(f"matched_idxs must lie in [0, {len(gt_masks)}), got "
                         f"[{matched.min()}, {matched.max()}]")
    # only the masks in use are converted to float: batch index = position among them
    used, batch = np.unique(matched, return_inverse=True)
    masks = gt_masks[xp.asarray(used)].astype(np.float32)[:, None]      # (U, 1, H, W)
    rois = xp.concatenate([xp.asarray(batch, dtype=np.float32)[:, None], boxes], axis=1)
    return roi_align(masks, rois, (M, M), 1.0, -1, False)[:, 0]


def maskrcnn_loss(mask_logits, proposals: list, gt_masks: list, gt_labels: list,
                  mask_matched_idxs: list):
    """Binary cross-entropy of each positive RoI's own-class mask channel (mean).

    Parameters (lists hold one entry per image; positives only)
    ----------
    mask_logits : (P, K, M, M) Tensor, P = total positives over the images.
    proposals : (P_i, 4) boxes of the positive RoIs.
    gt_masks : (G_i, H_i, W_i) uint8 / bool masks of the ground truths.
    gt_labels : (G_i,) classes of the ground truths (1..K-1; 0 is background).
    mask_matched_idxs : (P_i,) index of each positive RoI's ground truth.

    Returns a scalar Tensor; ``0 * mask_logits.sum()`` when there is no positive (so the
    graph and the device stay those of the logits).
    """
    m = mask_logits.shape[-1]
    labels = [to_numpy(lab).astype(np.int64).reshape(-1)[to_numpy(i).astype(np.int64).reshape(-1)]
              for lab, i in zip(gt_labels, mask_matched_idxs)]
    targets = [to_numpy(project_masks_on_boxes(g, to_numpy(p), i, m))
               for g, p, i in zip(gt_masks, proposals, mask_matched_idxs)]
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    p = len(labels)
    if mask_logits.shape[0] != p:
        raise ValueError(f"mask_logits has {mask_logits.shape[0]} RoIs, the targets {p}")
    if p == 0:
        return mask_logits.sum() * 0.0
    if labels.min() < 0 or labels.max() >= mask_logits.shape[1]:
        raise ValueError(f"labels must lie in [0, {mask_logits.shape[1]}), got "
                         f"[{labels.min()}, {labels.max()}]")
    targets = mask_logits.xp.asarray(np.concatenate(targets), dtype=mask_logits.dtype)
    own = mask_logits[np.arange(p), labels]                              # (P, M, M)
    return F.binary_cross_entropy_with_logits(own, targets)


# ---------------------------------------------------------------------------- heads
class MaskRCNNHeads(nn.Sequential):
    """The mask FCN: per layer conv3x3 (``dilation``, same size) + ReLU.

    Blocks are ``Sequential(conv, relu)`` so parameter names (``0.0.weight``, ...) equal
    torchvision's (``Conv2dNormActivation`` without a norm layer). Weights kaiming-normal
    (fan_out, relu), biases 0, as torchvision.
    """

    def __init__(self, in_channels: int, layers=(256, 256, 256, 256), dilation: int = 1):
        blocks, c = [], in_channels
        for width in layers:
            blocks.append(nn.Sequential(nn.Conv2d(c, width, 3, padding=dilation,
                                                  dilation=dilation), nn.ReLU()))
            c = width
        super().__init__(*blocks)
        for block in blocks:
            conv = block[0]
            init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            init.zeros_(conv.bias)


class MaskRCNNPredictor(nn.Sequential):
    """``conv5_mask`` (ConvTranspose2d 2x2 stride 2, x2 upsampling) + ReLU +
    ``mask_fcn_logits`` (1x1 conv): (R, C, S, S) -> (R, num_classes, 2S, 2S) logits.

    Weights kaiming-normal (fan_out, relu); biases keep the layers' default init, as in
    torchvision (whose zeroing of them is commented out).
    """

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__({
            "conv5_mask": nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0),
            "relu": nn.ReLU(),
            "mask_fcn_logits": nn.Conv2d(dim_reduced, num_classes, 1, 1, 0),
        })
        for name, param in self.named_parameters():
            if "weight" in name:
                init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


# -------------------------------------------------------------------------- testing
def expand_boxes(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Scale (N, 4) x1y1x2y2 boxes about their centres (in the boxes' float dtype)."""
    boxes = np.asarray(boxes)
    if boxes.dtype.kind != "f":
        boxes = boxes.astype(np.float32)
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * boxes.dtype.type(scale)
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * boxes.dtype.type(scale)
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)


def expand_masks(masks: np.ndarray, padding: int) -> tuple:
    """Zero-pad the last two axes by ``padding``; returns (padded, (M + 2 padding) / M)."""
    m = masks.shape[-1]
    pad = [(0, 0)] * (masks.ndim - 2) + [(padding, padding)] * 2
    return np.pad(masks, pad), float(m + 2 * padding) / m


def paste_mask_in_image(mask: np.ndarray, box, im_h: int, im_w: int) -> np.ndarray:
    """One (m, m) float mask into an (im_h, im_w) image at integer box ``box``.

    A box partly or wholly outside the image is cropped (wholly: all zeros).
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    im_mask = np.zeros((im_h, im_w), np.float32)
    x_0, x_1 = max(x1, 0), min(x2 + 1, im_w)
    y_0, y_1 = max(y1, 0), min(y2 + 1, im_h)
    if x_0 >= x_1 or y_0 >= y_1:
        return im_mask          # nothing visible (torchvision may raise here): no resize
    resized = _interp.bilinear_forward(np.ascontiguousarray(mask, np.float32)[None, None],
                                       (h, w), False)[0, 0]
    im_mask[y_0:y_1, x_0:x_1] = resized[y_0 - y1:y_1 - y1, x_0 - x1:x_1 - x1]
    return im_mask


def paste_masks_in_image(masks, boxes, img_shape, padding: int = 1) -> np.ndarray:
    """(N, 1, M, M) or (N, M, M) probabilities + (N, 4) boxes -> (N, H, W) float32.

    ``img_shape`` is (H, W). Host NumPy (CuPy input is copied to the host).
    """
    masks, boxes = to_numpy(masks), to_numpy(boxes)
    if masks.ndim == 4:
        if masks.shape[1] != 1:
            raise ValueError(f"masks must be (N, 1, M, M) or (N, M, M), got {masks.shape}")
        masks = masks[:, 0]
    if masks.ndim != 3 or masks.shape[-1] != masks.shape[-2]:
        raise ValueError(f"masks must be (N, 1, M, M) or (N, M, M), got {masks.shape}")
    boxes = boxes.reshape(-1, 4)
    if len(boxes) != len(masks):
        raise ValueError(f"{len(masks)} masks but {len(boxes)} boxes")
    im_h, im_w = (int(s) for s in img_shape)
    if len(masks) == 0:
        return np.zeros((0, im_h, im_w), np.float32)
    masks, scale = expand_masks(masks.astype(np.float32, copy=False), padding)
    boxes = expand_boxes(boxes, scale).astype(np.int64)   # truncation toward 0, as torch
    return np.stack([paste_mask_in_image(m, b, im_h, im_w) for m, b in zip(masks, boxes)])


# ------------------------------------------------------------------------ gradcheck
@register_gradcheck("maskrcnn_loss")
def _loss_case(rng):
    # two images: the first with two ground truths (classes 2 and 1) and three positive
    # RoIs, the second with one ground truth and one RoI; 3 classes, 4 x 4 logits
    masks = [(rng.random((2, 10, 12)) > 0.5).astype(np.uint8),
             (rng.random((1, 9, 9)) > 0.3).astype(np.uint8)]
    labels = [np.array([2, 1]), np.array([1])]
    props = [np.array([[0.5, 1.0, 8.0, 7.5], [2.0, 0.0, 11.0, 9.0], [3.3, 2.2, 6.1, 8.8]]),
             np.array([[1.0, 1.5, 7.0, 6.0]])]
    idxs = [np.array([0, 1, 0]), np.array([0])]
    logits = rng.standard_normal((4, 3, 4, 4)) * 2
    return [(lambda x: maskrcnn_loss(x, props, masks, labels, idxs), [logits])]
