"""R-CNN (Girshick, Donahue, Darrell & Malik, "Rich feature hierarchies for accurate object
detection and semantic segmentation", CVPR 2014).

R-CNN treats detection as classification of region proposals: every Selective Search
proposal is cut out of the image, warped to a fixed size and run through a CNN on its own
(Fast R-CNN, ``fast_rcnn.py``, later shares the convolutions between the proposals)::

    image --Selective Search 'fast'--> ~130 proposals (P, 4)                  (RCNN.propose)
      each proposal: dilate by p pixels of context, warp to S x S   (context_boxes, warp_regions)
      -> conv stages (conv/BN/ReLU/max-pool) -> pool5 -> fc6 -> fc7          (RCNN.features)
      training 1, fine-tuning: a (K+1)-way softmax on fc7, windows IoU >= 0.5
                 positives, the rest background, 32 + 96 per mini-batch   (RCNN.loss,
                                                                           sample_windows)
      training 2, after fine-tuning, on the whole training split     (RCNN.finish_training):
          fc7 and pool5 of every window, cached                        (RCNN.extract_features)
          one linear SVM per class on fc7, hard negative mining
                                       (train_linear_svm, hard_negative_mining; section 2.3)
          class-specific box regression on pool5       (bbox_regression_targets,
                                                        ridge_regression; appendix C)
      testing: SVM scores (or the softmax's), regressed boxes,
               per-class NMS at IoU 0.3                          (RCNN.predict, section 2.2)

The paper's stages and where they are computed:

- **Warping** (appendix A). The paper compares ways of turning a box into a 227 x 227
  input and keeps anisotropic warping with ``p = 16`` pixels of context: the box is
  enlarged about its centre so that, *after* warping, ``p`` pixels of image surround the
  original box, i.e. by ``s = S / (S - 2 p)`` in both directions (227 / 195 = 1.164).
  Parts of the enlarged box outside the image are filled with the mean, which is 0 after
  normalisation. ``context_boxes`` enlarges the boxes; ``warp_regions`` crops and warps
  all of a batch's windows in one ``ops.roi_align(aligned=True)`` call: bin (i, j) of the
  S x S output averages bilinear samples of its share of the enlarged box, so warping is
  an area-averaged (anti-aliased) bilinear resize like MATLAB's ``imresize``; samples
  beyond half a pixel outside the image read 0.
- **Fine-tuning** (section 2.3, "Domain-specific fine-tuning"). The classifier of the
  pre-trained net is replaced by a (K+1)-way softmax; a window is a positive of class c
  when its IoU with a ground truth of class c is >= 0.5 (the best ground truth decides),
  else background; ground-truth boxes are windows too. Each mini-batch draws 32 positive
  and 96 background windows uniformly over the windows of the batch's images (fewer
  positives when there are not enough). Here the network is trained from scratch (there
  is no ImageNet model), with the trainer's optimiser (Adam, warm-up + cosine).
- **SVMs** (section 2.3, "Object category classifiers"). For class c: positives are the
  ground-truth boxes of c only; negatives are the windows with IoU < 0.3 with every
  ground truth of c (windows in between are ignored: the paper's grid search over
  {0, ..., 0.5} chose 0.3). fc7 features are scaled by one constant so that their mean
  norm is 20 (``rcnn_scale_features`` in the paper's code). The SVM is liblinear's L1-loss
  (hinge) SVM, with the paper's C = 0.001, positives weighted 2 and a bias feature of 10
  (so the bias is lightly regularised, as in liblinear)::

      min_w  1/2 |w|^2 + sum_i C_i max(0, 1 - y_i (w . x_i + b))           (train_linear_svm)

  solved exactly in the dual by coordinate descent (Hsieh et al., ICML 2008; liblinear's
  solver): each step minimises over one alpha_i in [0, C_i] in closed form and keeps
  ``w = sum_i alpha_i y_i x_i`` up to date; inactive alphas are shrunk away, so a pass
  costs O(d) per support-vector candidate. It is plain NumPy: a Python loop over
  coordinates with one d-vector dot product each, fast enough for the ~10^4 examples of a
  cache (the dual, unlike Pegasos' primal sub-gradient, converges to the exact optimum,
  so the margins in the tests are exact). **Hard negative mining** (Felzenszwalb et al.):
  the negatives do not fit in one problem (~2.5 10^5 windows per class), so training
  starts from a random subset, scores every negative, adds those that violate the margin
  (score > -1) to the cache, evicts cached ones far beyond it (score < -1.2), retrains
  (warm-started from the previous alphas) and repeats until no (or few) new hard
  negatives appear (``hard_negative_mining``).
- **Box regression** (appendix C). For a proposal P and its ground truth G (IoU >= 0.6,
  the best one; class-specific), targets ``t_x = (G_x - P_x) / P_w``, ``t_y = (G_y -
  P_y) / P_h``, ``t_w = log(G_w / P_w)``, ``t_h = log(G_h / P_h)`` (centres and sizes;
  ``BoxCoder((1, 1, 1, 1))``), predicted linearly from pool5 features scaled to mean norm
  20, fitted by ridge regression with lambda = 1000 in closed form (targets centred, the
  bias column regularised like the weights, as the paper's code; its whitening of the
  targets is a no-op for ridge, whose solution is linear in the targets, so it is left
  out). At test time each class's regressor moves every proposal, then NMS runs.
- **Testing** (section 2.2). Every proposal is scored by every class's SVM (or, before
  ``finish_training`` or with ``scorer='softmax'``, by the fine-tuned softmax: the paper's
  appendix B compares both), boxes are regressed, and ``select_detections`` applies
  per-class greedy NMS at IoU 0.3 and keeps the best 100 per image. SVM scores are
  margins, not probabilities: no score threshold (-inf) by default, since any threshold
  only cuts the tail of the precision-recall curve (on Shapes, -1 cost 2 points of
  mAP); the cap of 100 detections per image bounds the output. Softmax scores use 0.01.

Scaled for Shapes (128 px images, objects 12-64 px, 3 classes) on a CPU, where the paper
warped to 227 px for an AlexNet: the warp size is S = 32 px (a 64 px object is halved, a
12 px one doubled; a circle, a rectangle and a triangle stay distinguishable at 32 px,
and every window costs 1/50 of a 227 px one), the context padding scales with it
(p = 16 * 32 / 227 = 2.26 px, the same relative context, s = 1.164), three conv stages of
16, 32, 64 channels with batch norm give a 4 x 4 x 64 pool5 (1024-d), and fc6/fc7 have 256
units. At test time and in ``finish_training`` each batch norm is folded into its conv
(``folded_backbone``), which halves the cost of a window: feature extraction runs at
~1500 windows/s on one core, so the ~2.8 10^5 windows of 2,000 training images take ~3
minutes, and the SVMs and regressors ~10 s more. The SVM, ridge and sampling constants
are the paper's.

Measured on Shapes (2,000 train / 200 val images, Adam 2e-3 with warm-up + cosine, 1,500
steps of 8 images, ~4.5 min on one core): box mAP@0.5 (VOC area) 0.956 with the
fine-tuned softmax, 0.959 with softmax + box regression, 0.956 with the SVMs + box
regression (so, unlike the paper's AlexNet on VOC, the SVMs add nothing over a softmax
trained from scratch on this data; Fast R-CNN made the same observation).
"""
from __future__ import annotations

import math
import time

import numpy as np

import scratchvision.functional as F
from scratchvision import nn
from scratchvision.autograd import Tensor, no_grad
from scratchvision.autograd.factories import default_generator
from scratchvision.backend import get_array_module
from scratchvision.nets.detection.heads import TwoMLPHead
from scratchvision.nets.detection.images import batch_images, denormalise
from scratchvision.nets.detection.postprocess import empty_detections, select_detections
from scratchvision.nets.detection.roi_heads import assign_targets
from scratchvision.nets.detection.targets import check_proposals, check_targets
from scratchvision.nets.vgg import VGGBackbone
from scratchvision.nn import init
from scratchvision.ops import BoxCoder, box_iou, roi_align

PAPER_WARP = 227                 # AlexNet's input
PAPER_PADDING = 16               # pixels of context at the 227 warp size (appendix A)

SIZES = {
    "small": dict(warp_size=32, widths=(16, 32, 64), depths=(1, 1, 1),
                  representation_size=256, dropout=0.0),
    # for tests: with the few positives of a handful of images the paper's C = 0.001 lets
    # the hinge terms weigh too little against |w|^2 and the SVMs collapse to w = 0
    "tiny": dict(warp_size=16, widths=(4, 8, 8), depths=(1, 1, 1), representation_size=32,
                 dropout=0.0, svm_C=0.1),
}

_BOX_CODER = BoxCoder((1.0, 1.0, 1.0, 1.0))      # R-CNN's targets, unweighted


# ---------------------------------------------------------------------------- warping
def context_boxes(boxes, warp_size: int, padding: float) -> np.ndarray:
    """Boxes enlarged about their centres so that ``padding`` pixels of context surround
    the original box once it is warped to ``warp_size`` (appendix A).

    Parameters
    ----------
    boxes : (P, 4) x1y1x2y2 pixel-edge boxes.
    warp_size : S, the side of the warped window.
    padding : p, context pixels on each side *in the warped window*, 0 <= p < S / 2.

    Returns
    -------
    (P, 4) float boxes of the same centres and ``S / (S - 2 p)`` times the width and height.
    """
    if not 0.0 <= padding < warp_size / 2:
        raise ValueError(f"context padding must be in [0, warp_size / 2) = [0, "
                         f"{warp_size / 2}), got {padding}")
    xp = get_array_module(boxes)
    b = xp.asarray(boxes)
    scale = warp_size / (warp_size - 2.0 * padding)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    hw, hh = (b[:, 2] - b[:, 0]) * (scale / 2), (b[:, 3] - b[:, 1]) * (scale / 2)
    return xp.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1)


def warp_regions(images, rois, warp_size: int, padding: float):
    """Crop and anisotropically warp windows, with context, out of a batch of images.

    Parameters
    ----------
    images : (N, 3, H, W) normalised array (NumPy or CuPy; the mean is 0).
    rois : (R, 5) rows ``[image index, x1, y1, x2, y2]`` (pixel-edge boxes).
    warp_size, padding : as ``context_boxes``.

    Returns
    -------
    (R, 3, S, S) array: window r is the box enlarged by ``context_boxes`` and resized to S x S
    (bilinear samples averaged over each output pixel's share of the box, ``roi_align``
    with ``aligned=True``); samples more than half a pixel outside the image are 0.
    """
    xp = get_array_module(images)
    rois = xp.asarray(rois, dtype=images.dtype).reshape(-1, 5)
    if len(rois) == 0:
        return xp.zeros((0, images.shape[1], warp_size, warp_size), images.dtype)
    big = xp.concatenate([rois[:, :1], context_boxes(rois[:, 1:], warp_size, padding)], 1)
    return roi_align(images, big, warp_size, 1.0, sampling_ratio=-1, aligned=True)


# ------------------------------------------------------------------------ fine-tuning
def sample_windows(labels: np.ndarray, num_pos: int, num_neg: int, rng) -> np.ndarray:
    """Indices of ``min(num_pos, #labels >= 1)`` random positives, then ``min(num_neg,
    #labels == 0)`` random background windows (uniform, without replacement)."""
    pos = np.flatnonzero(labels >= 1)
    neg = np.flatnonzero(labels == 0)
    pos = rng.choice(pos, min(num_pos, len(pos)), replace=False) if len(pos) else pos
    neg = rng.choice(neg, min(num_neg, len(neg)), replace=False) if len(neg) else neg
    return np.concatenate([pos, neg]).astype(np.int64)


# ------------------------------------------------------------------------------ SVMs
def train_linear_svm(X, y, C: float = 1e-3, pos_weight: float = 2.0, bias_mult: float = 10.0,
                     tol: float = 1e-3, max_epochs: int = 1000, alpha=None, rng=None
                     ) -> tuple:
    """A linear L1-loss SVM by dual coordinate descent (Hsieh et al. 2008, liblinear).

    Minimises ``1/2 (|w|^2 + w_b^2) + sum_i C_i max(0, 1 - y_i (w . x_i + b))`` with
    ``b = bias_mult * w_b`` (the bias is a constant feature ``bias_mult``, regularised like
    the weights, as liblinear's ``-B``), ``C_i = C * pos_weight`` for positives and ``C``
    for negatives. Its dual is ``min_a 1/2 a^T Q a - sum_i a_i``, ``0 <= a_i <= C_i``,
    ``Q_ij = y_i y_j x_i . x_j`` (x with the bias feature). A step solves the dual in one
    ``a_i`` exactly: the gradient is ``G = y_i w . x_i - 1`` and ``a_i <- clip(a_i - G /
    Q_ii, 0, C_i)``; ``w`` follows (``w = sum_i a_i y_i x_i``). A coordinate whose projected
    gradient shows it stays at a bound is shrunk out of the active set until the end.
    Stops when the projected gradients of all coordinates lie within ``tol`` of each other
    (liblinear's criterion; the duality gap then is O(tol)).

    Parameters
    ----------
    X : (n, d) features; y : (n,) labels in {-1, +1} (or {0, 1}: 0 is read as -1).
    C, pos_weight, bias_mult : as above (the paper: 0.001, 2, 10).
    tol, max_epochs : stopping rule.
    alpha : (n,) dual variables to start from (a warm start), clipped into [0, C_i].
    rng : NumPy Generator for the order of the coordinates (default: scratchvision's).

    Returns
    -------
    (w (d,), b float, alpha (n,)) with float64 arrays.
    """
    X = np.asarray(X, np.float64)
    y = np.where(np.asarray(y) > 0, 1.0, -1.0)
    if X.ndim != 2 or y.shape != (len(X),):
        raise ValueError(f"train_linear_svm: X must be (n, d) and y (n,), got {X.shape} and "
                         f"{np.shape(y)}")
    if C <= 0 or pos_weight <= 0 or bias_mult <= 0:
        raise ValueError(f"C, pos_weight and bias_mult must be > 0, got {C}, {pos_weight}, "
                         f"{bias_mult}")
    rng = default_generator() if rng is None else rng
    n, d = X.shape
    Xa = np.concatenate([X, np.full((n, 1), float(bias_mult))], axis=1)    # (n, d + 1)
    upper = np.where(y > 0, C * pos_weight, C)
    a = np.zeros(n) if alpha is None else np.clip(np.asarray(alpha, np.float64), 0, upper)
    w = (a * y) @ Xa
    rows = list(Xa)                                 # row views: cheap indexing in the loop
    qd = np.einsum("ij,ij->i", Xa, Xa).tolist()     # Q_ii
    al, up, yl = a.tolist(), upper.tolist(), y.tolist()
    active = np.arange(n)
    pg_max_old, pg_min_old = math.inf, -math.inf
    for _ in range(max_epochs):
        keep = np.ones(len(active), bool)
        pg_max, pg_min = -math.inf, math.inf
        for j in rng.permutation(len(active)).tolist():
            i = int(active[j])
            g = yl[i] * float(w @ rows[i]) - 1.0                 # dual gradient in a_i
            ai = al[i]
            if ai == 0.0:
                if g > pg_max_old:                               # stays at 0: shrink
                    keep[j] = False
                    continue
                pg = min(g, 0.0)
            elif ai == up[i]:
                if g < pg_min_old:                               # stays at C_i: shrink
                    keep[j] = False
                    continue
                pg = max(g, 0.0)
            else:
                pg = g
            pg_max, pg_min = max(pg_max, pg), min(pg_min, pg)
            if abs(pg) > 1e-12:
                new = min(max(ai - g / qd[i], 0.0), up[i])
                w += (new - ai) * yl[i] * rows[i]
                al[i] = new
        active = active[keep]
        if pg_max - pg_min <= tol or len(active) == 0:
            if len(active) == n:
                break
            active = np.arange(n)                                # re-check every coordinate
            pg_max_old, pg_min_old = math.inf, -math.inf
            continue
        pg_max_old = pg_max if pg_max > 0 else math.inf
        pg_min_old = pg_min if pg_min < 0 else -math.inf
    return w[:d].copy(), float(w[d] * bias_mult), np.asarray(al)


def hard_negative_mining(X, positives, negatives, init_negatives=2000, max_rounds: int = 8,
                         hard_thresh: float = -1.0, evict_thresh: float = -1.2,
                         min_new: int = 0, rng=None, **svm_kwargs) -> tuple:
    """A linear SVM trained with hard negative mining (R-CNN section 2.3).

    Start from a cache of negatives (a random subset); then each round: train the SVM on
    the positives and the cache, score *every* negative, add those that are not cached
    and violate the margin (score > ``hard_thresh`` = -1) to the cache, drop cached ones
    that score below ``evict_thresh``, and retrain (from the previous dual variables),
    until a round finds at most ``min_new`` new hard negatives or ``max_rounds`` rounds.

    Parameters
    ----------
    X : (n, d) features of every window (only the rows named below are used).
    positives, negatives : index arrays into X.
    init_negatives : size of the random starting cache, or an index array into
        ``negatives`` naming the starting cache.
    max_rounds, hard_thresh, evict_thresh, min_new : as above.
    rng : NumPy Generator (default: scratchvision's default generator, at call time).
    svm_kwargs : passed to ``train_linear_svm`` (C, pos_weight, bias_mult, tol ...).

    Returns
    -------
    (w (d,), b, info): ``info["mined"]`` is the list of index arrays (into X) added after
    each round, ``info["cache"]`` the final cache, ``info["rounds"]`` the rounds trained.
    """
    rng = default_generator() if rng is None else rng
    positives = np.asarray(positives, np.int64).reshape(-1)
    negatives = np.asarray(negatives, np.int64).reshape(-1)
    if np.ndim(init_negatives) == 0:
        k = min(int(init_negatives), len(negatives))
        cache = np.sort(rng.choice(negatives, k, replace=False)) if k else negatives[:0]
    else:
        cache = negatives[np.asarray(init_negatives, np.int64)]
    alpha_pos = np.zeros(len(positives))
    alpha_cache = np.zeros(len(cache))
    info = {"mined": [], "cache_sizes": [], "rounds": 0}
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(max_rounds):
        idx = np.concatenate([positives, cache])
        y = np.concatenate([np.ones(len(positives)), -np.ones(len(cache))])
        w, b, alpha = train_linear_svm(X[idx], y, alpha=np.concatenate([alpha_pos,
                                                                        alpha_cache]),
                                       rng=rng, **svm_kwargs)
        info["rounds"] += 1
        info["cache_sizes"].append(len(cache))
        alpha_pos, alpha_cache = alpha[:len(positives)], alpha[len(positives):]
        scores = _scores(X, negatives, w, b)                         # (len(negatives),)
        hard = negatives[scores > hard_thresh]
        new = np.setdiff1d(hard, cache)
        info["mined"].append(new)
        if len(new) <= min_new:
            break
        cached_scores = _scores(X, cache, w, b)
        keep = cached_scores >= evict_thresh
        cache = np.concatenate([cache[keep], new])
        alpha_cache = np.concatenate([alpha_cache[keep], np.zeros(len(new))])
    info["cache"] = cache
    return w, b, info


def _scores(X, idx, w, b, chunk: int = 65536) -> np.ndarray:
    """w . X[idx] + b in chunks (no copy of all the selected rows at once)."""
    out = np.empty(len(idx))
    w32 = w.astype(X.dtype)
    for s in range(0, len(idx), chunk):
        out[s:s + chunk] = X[idx[s:s + chunk]] @ w32 + b
    return out


# ---------------------------------------------------------------------- box regression
def bbox_regression_targets(proposals, gt_boxes) -> np.ndarray:
    """R-CNN's (t_x, t_y, t_w, t_h) of each ground truth G relative to its proposal P
    (appendix C), both (n, 4) x1y1x2y2; centres and widths of pixel-edge boxes."""
    return np.asarray(_BOX_CODER.encode_single(np.asarray(gt_boxes, np.float64),
                                               np.asarray(proposals, np.float64)))


def ridge_regression(X, Y, lam: float = 1000.0) -> np.ndarray:
    """Closed-form ridge regression ``[X 1] W ~ Y`` (appendix C: lambda = 1000).

    The targets are centred first and their mean added back to the bias row, and the bias
    column is regularised with the weights (the paper's ``[X 1]`` with ``lambda I``):
    ``W = ([X 1]^T [X 1] + lam I)^-1 [X 1]^T (Y - mean(Y))``, solved by Cholesky.

    Parameters
    ----------
    X : (n, d) features; Y : (n, k) targets; lam : >= 0.

    Returns
    -------
    (d + 1, k) float64: the weights, then the bias row; predict with ``X @ W[:-1] + W[-1]``.
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ValueError(f"ridge_regression: X (n, d) and Y (n, k) needed, got {X.shape}, "
                         f"{Y.shape}")
    if lam < 0:
        raise ValueError(f"ridge_regression: lam must be >= 0, got {lam}")
    if len(X) == 0:
        return np.zeros((X.shape[1] + 1, Y.shape[1]))
    mu = Y.mean(axis=0)
    A = np.concatenate([X, np.ones((len(X), 1))], axis=1)             # (n, d + 1)
    gram = A.T @ A + lam * np.eye(A.shape[1])
    rhs = A.T @ (Y - mu)
    try:
        L = np.linalg.cholesky(gram)
        W = np.linalg.solve(L.T, np.linalg.solve(L, rhs))
    except np.linalg.LinAlgError:                     # lam = 0 and rank-deficient X
        W = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    W[-1] += mu
    return W


# ----------------------------------------------------------------------------- model
class RCNN(nn.Module):
    """R-CNN: a CNN on every warped proposal, per-class SVMs and box regressors.

    Parameters
    ----------
    num_classes : classes including background (Shapes: 4).
    warp_size : S, the side of the warped windows.
    context_padding : p, context pixels around the box in the warped window (default
        ``16 * S / 227``, the paper's 16 at 227).
    widths, depths : the conv stages (each conv/BN/ReLU x depth, then 2x2 max pooling);
        pool5 is the last stage's output, ``widths[-1] x (S / 2^n)^2``.
    representation_size : width of fc6 and fc7.
    dropout : dropout after fc6 and fc7 while fine-tuning (the paper: 0.5).
    batch_positives, batch_negatives : windows per fine-tuning mini-batch (32 + 96).
    fg_iou_thresh : fine-tuning positives have IoU >= this (0.5).
    svm_neg_iou, svm_C, svm_pos_weight, svm_bias_mult : SVM negatives (IoU < 0.3), C,
        positive weight, bias feature (0.001, 2, 10: the paper's).
    feat_norm : features are scaled to this mean norm (20) for the SVMs and regressors.
    mining_init, mining_rounds, svm_tol : hard negative mining's starting cache, its
        rounds, and the SVM solver's tolerance.
    bbox_iou, bbox_lambda : box regression samples have IoU >= 0.6; ridge lambda 1000.
    nms_thresh, score_thresh, svm_score_thresh, detections_per_img : test-time
        post-processing (softmax probabilities, SVM margins).
    proposal_strategy : Selective Search strategy when ``predict`` gets no proposals.
    chunk : windows per forward pass at test time and in ``finish_training``.
    """

    uses_proposals = True

    def __init__(self, num_classes: int, warp_size: int = 32, context_padding=None,
                 widths=(16, 32, 64), depths=(1, 1, 1), representation_size: int = 256,
                 dropout: float = 0.0, batch_positives: int = 32, batch_negatives: int = 96,
                 fg_iou_thresh: float = 0.5, svm_neg_iou: float = 0.3, svm_C: float = 1e-3,
                 svm_pos_weight: float = 2.0, svm_bias_mult: float = 10.0,
                 feat_norm: float = 20.0, mining_init: int = 2000, mining_rounds: int = 8,
                 svm_tol: float = 1e-2, bbox_iou: float = 0.6, bbox_lambda: float = 1000.0,
                 nms_thresh: float = 0.3, score_thresh: float = 0.01,
                 svm_score_thresh: float = -math.inf, detections_per_img: int = 100,
                 proposal_strategy: str = "fast", chunk: int = 1024) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got "
                             f"{num_classes}")
        n = len(widths)
        if len(depths) != n or n < 1:
            raise ValueError(f"widths {widths} and depths {depths} need one entry per stage")
        if warp_size % (2 ** n):
            raise ValueError(f"warp_size {warp_size} must be divisible by 2^{n} (one 2x2 "
                             f"pooling per stage)")
        self.num_classes = num_classes
        self.warp_size = int(warp_size)
        self.context_padding = float(PAPER_PADDING * warp_size / PAPER_WARP
                                     if context_padding is None else context_padding)
        context_boxes(np.zeros((0, 4)), self.warp_size, self.context_padding)   # validates
        self.backbone = VGGBackbone(3, widths, depths, dilations=(1,) * n,
                                    pools=(True,) * n)
        side = warp_size // 2 ** n
        self.pool5_dim = widths[-1] * side * side
        self.head = TwoMLPHead(self.pool5_dim, representation_size, dropout)
        self.cls_score = nn.Linear(representation_size, num_classes)
        init.normal_(self.cls_score.weight, std=0.01)
        init.zeros_(self.cls_score.bias)
        self.batch_positives, self.batch_negatives = batch_positives, batch_negatives
        self.fg_iou_thresh = fg_iou_thresh
        self.svm_neg_iou, self.svm_C = svm_neg_iou, svm_C
        self.svm_pos_weight, self.svm_bias_mult = svm_pos_weight, svm_bias_mult
        self.feat_norm = feat_norm
        self.mining_init, self.mining_rounds, self.svm_tol = mining_init, mining_rounds, svm_tol
        self.bbox_iou, self.bbox_lambda = bbox_iou, bbox_lambda
        self.nms_thresh, self.score_thresh = nms_thresh, score_thresh
        self.svm_score_thresh, self.detections_per_img = svm_score_thresh, detections_per_img
        self.proposal_strategy, self.chunk = proposal_strategy, chunk
        k, d = num_classes - 1, representation_size
        # What finish_training learns; buffers, so state_dict / nn.save / nn.load keep them.
        self.register_buffer("svm_trained", np.zeros(1, np.float32))     # 1 once trained
        self.register_buffer("svm_feat_scale", np.ones(1, np.float32))   # fc7 -> norm 20
        self.register_buffer("svm_weight", np.zeros((k, d), np.float32))
        self.register_buffer("svm_bias", np.zeros(k, np.float32))
        self.register_buffer("bbox_trained", np.zeros(1, np.float32))
        self.register_buffer("bbox_feat_scale", np.ones(1, np.float32))  # pool5 -> norm 20
        self.register_buffer("bbox_weight", np.zeros((k, self.pool5_dim + 1, 4), np.float32))

    # ------------------------------------------------------------------ the network
    def features(self, windows) -> tuple:
        """(R, 3, S, S) warped windows -> (pool5 (R, C, s, s), fc7 (R, D)) Tensors."""
        pool5 = self.backbone(windows)[-1]
        return pool5, self.head(pool5)

    def forward(self, windows):
        """(R, 3, S, S) warped windows -> (R, num_classes) softmax logits."""
        return self.cls_score(self.features(windows)[1])

    def folded_backbone(self) -> list:
        """Per stage, ``(conv, weight, bias)`` of each conv with its batch norm folded in.

        At test time batch norm is a fixed affine map per channel, ``y = gamma (x - mu) /
        sigma + beta`` with the running statistics, so it merges into the conv before it:
        ``W' = W gamma / sigma``, ``b' = beta + (b - mu) gamma / sigma``. This halves the cost
        of a forward pass (the normalisation makes several passes over the largest
        activations), which is most of ``finish_training``'s time.
        """
        stages = []
        for stage in self.backbone.stages:
            convs = []
            for block in stage.children():              # Sequential(conv, [bn], ReLU)
                conv, *rest = block.children()
                w = conv.weight.data.astype(np.float64)
                xp = get_array_module(w)
                b = conv.bias.data.astype(np.float64) if conv.bias is not None \
                    else xp.zeros(w.shape[0])
                if rest and isinstance(rest[0], nn.BatchNorm2d):
                    bn = rest[0]
                    g = 1.0 / xp.sqrt(bn.running_var.data.astype(np.float64) + bn.eps)
                    g = g * bn.weight.data if bn.weight is not None else g     # gamma / sigma
                    b = (b - bn.running_mean.data) * g
                    b = b + bn.bias.data if bn.bias is not None else b
                    w = w * g[:, None, None, None]
                dtype = conv.weight.dtype
                convs.append((conv, Tensor(w.astype(dtype)), Tensor(b.astype(dtype))))
            stages.append(convs)
        return stages

    def _pool5_eval(self, x, folded):
        """The backbone's eval-mode forward with the folded convs (``folded_backbone``)."""
        for convs, pool in zip(folded, self.backbone.pools):
            for conv, w, b in convs:
                x = F.relu(F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation,
                                    conv.groups))
            if pool:
                x = self.backbone.pool(x)
        return x

    def _warp(self, images, rois):
        dtype = self.cls_score.weight.dtype
        return Tensor(warp_regions(images, rois, self.warp_size,
                                   self.context_padding).astype(dtype, copy=False))

    # ------------------------------------------------------------------ fine-tuning
    def loss(self, images, targets, proposals=None) -> dict:
        """``{'loss_classifier'}``: softmax cross-entropy of 32 positive and 96 background
        windows drawn over the batch's images (proposals and ground-truth boxes)."""
        batch = batch_images(images)
        targets = check_targets(targets, batch.image_sizes, self.num_classes)
        if proposals is None:
            proposals = self.propose(batch)
        proposals = check_proposals(proposals, len(batch))
        rois, labels = [], []
        for i, (props, t) in enumerate(zip(proposals, targets)):
            windows = np.concatenate([props, t["boxes"]]) if len(t["boxes"]) else props
            lab, _ = assign_targets(windows, t["boxes"], t["labels"], self.fg_iou_thresh,
                                    (0.0, self.fg_iou_thresh))
            rois.append(np.concatenate([np.full((len(windows), 1), i, np.float32),
                                        windows], axis=1))
            labels.append(lab)
        rois, labels = np.concatenate(rois), np.concatenate(labels)
        keep = sample_windows(labels, self.batch_positives, self.batch_negatives,
                              default_generator())
        data = batch.tensors.data
        if len(keep) == 0:                       # no window at all: a zero that has a graph
            zero = sum((p * 0).sum() for p in self.parameters())
            return {"loss_classifier": zero}
        xp = get_array_module(data)
        logits = self(self._warp(data, xp.asarray(rois[keep])))
        return {"loss_classifier": F.cross_entropy(logits, xp.asarray(labels[keep]))}

    # ------------------------------------------------------------------ features
    def extract_features(self, images, rois, progress: bool = False, desc: str = "") -> tuple:
        """pool5 (R, pool5_dim) and fc7 (R, D) float32 NumPy features of the windows
        ``rois`` (R, 5) of ``images`` (N, 3, H, W), in chunks, under no_grad, eval mode."""
        from tqdm import tqdm  # noqa: PLC0415
        data = images.data if isinstance(images, Tensor) else images
        was = self.training
        self.eval()
        pool5, fc7 = [], []
        try:
            with no_grad():
                folded = self.folded_backbone()
                for s in tqdm(range(0, len(rois), self.chunk), disable=not progress,
                              desc=desc, mininterval=1.0):
                    p5 = self._pool5_eval(self._warp(data, rois[s:s + self.chunk]), folded)
                    f7 = self.head(p5)
                    pool5.append(p5.numpy().reshape(len(p5.data), -1).astype(np.float32))
                    fc7.append(f7.numpy().astype(np.float32))
        finally:
            self.train(was)
        if not fc7:
            return (np.zeros((0, self.pool5_dim), np.float32),
                    np.zeros((0, self.cls_score.in_features), np.float32))
        return np.concatenate(pool5), np.concatenate(fc7)

    # ------------------------------------------------------------------ SVMs + regression
    def finish_training(self, images, targets, proposals, progress: bool = True) -> dict:
        """After fine-tuning: per-class SVMs (with hard negative mining) on fc7 and
        class-specific box regressors on pool5, from every window of the training split.

        Parameters
        ----------
        images : (N, 3, H, W) normalised float32 array (or Tensor), the whole split.
        targets : N dicts with ``boxes`` (K, 4) and ``labels`` (K,).
        proposals : N arrays (P_i, 4).
        progress : a tqdm bar over the images, and one line per class.

        Returns
        -------
        dict of statistics: windows, seconds, and per class the positives, negatives,
        mining rounds, hard negatives mined per round, final cache and regression samples.
        """
        t0 = time.perf_counter()
        cache = self.collect_windows(images, targets, proposals, progress)
        stats = {"windows": int(len(cache["fc7"])),
                 "seconds_features": time.perf_counter() - t0}
        stats["classes"] = self.fit_svms(cache, progress)
        for entry, samples in zip(stats["classes"], self.fit_bbox_regressors(cache)):
            entry["bbox_samples"] = samples
        stats["seconds"] = time.perf_counter() - t0
        return stats

    def collect_windows(self, images, targets, proposals, progress: bool = False) -> dict:
        """Features and labels of every window (proposals, then ground truths) of a split.

        Returns a dict: ``fc7`` (W, D) float32; ``overlap`` (W, K) the max IoU of each window
        with the ground truths of each class; ``gt_label`` (W,) the class of ground-truth
        windows (0 for proposals); ``pool5_norm`` the mean pool5 norm over all windows; and
        for the windows with IoU >= ``bbox_iou`` with a ground truth (the best one decides):
        ``reg_pool5`` (M, pool5_dim), ``reg_targets`` (M, 4), ``reg_class`` (M,).
        """
        from tqdm import tqdm  # noqa: PLC0415
        data = images.data if isinstance(images, Tensor) else images
        if data.ndim != 4 or data.shape[1] != 3:
            raise ValueError(f"finish_training: images must be (N, 3, H, W), got "
                             f"{tuple(data.shape)}")
        n_img, _, h, w = data.shape
        targets = check_targets(targets, [(h, w)] * n_img, self.num_classes)
        proposals = check_proposals(proposals, n_img)
        k = self.num_classes - 1
        windows = [np.concatenate([p, t["boxes"]]) for p, t in zip(proposals, targets)]
        total = sum(len(win) for win in windows)
        if total == 0:
            raise ValueError("finish_training: no windows (no proposals and no ground truth)")
        fc7 = np.empty((total, self.cls_score.in_features), np.float32)
        overlap = np.zeros((total, k), np.float32)
        gt_label = np.zeros(total, np.int64)
        reg_x, reg_t, reg_c = [], [], []
        norm_sum, start = 0.0, 0
        group = max(1, self.chunk // 140)                # images per forward pass
        for i0 in tqdm(range(0, n_img, group), disable=not progress, mininterval=1.0,
                       desc="R-CNN features"):
            idx = range(i0, min(i0 + group, n_img))
            rois = np.concatenate([np.concatenate([np.full((len(windows[i]), 1), i - i0,
                                                           np.float32), windows[i]], 1)
                                   for i in idx])
            p5, f7 = self.extract_features(data[i0:i0 + group], rois)
            fc7[start:start + len(f7)] = f7
            norm_sum += float(np.linalg.norm(p5, axis=1).sum())
            off = 0
            for i in idx:
                win, t = windows[i], targets[i]
                m, g, s = len(win), len(t["boxes"]), start + off
                if g:
                    iou = np.asarray(box_iou(t["boxes"], win))             # (G, m)
                    for c in range(k):
                        of_c = t["labels"] == c + 1
                        if of_c.any():
                            overlap[s:s + m, c] = iou[of_c].max(axis=0)
                    gt_label[s + m - g:s + m] = t["labels"]
                    best, arg = iou.max(axis=0), iou.argmax(axis=0)
                    sel = np.flatnonzero(best >= self.bbox_iou)
                    reg_x.append(p5[off + sel])
                    reg_t.append(bbox_regression_targets(win[sel], t["boxes"][arg[sel]]))
                    reg_c.append(t["labels"][arg[sel]])
                off += m
            start += len(f7)
        cat = (lambda parts, shape, dtype: np.concatenate(parts) if parts
               else np.zeros(shape, dtype))
        return {"fc7": fc7, "overlap": overlap, "gt_label": gt_label,
                "pool5_norm": norm_sum / total,
                "reg_pool5": cat(reg_x, (0, self.pool5_dim), np.float32),
                "reg_targets": cat(reg_t, (0, 4), np.float64),
                "reg_class": cat(reg_c, (0,), np.int64)}

    def fit_svms(self, cache: dict, progress: bool = False) -> list:
        """One SVM per class on the cached fc7 (scaled to mean norm ``feat_norm``), with hard
        negative mining; stores them in the buffers. Returns per-class statistics.

        Positives: the class's ground-truth windows; negatives: windows with IoU <
        ``svm_neg_iou`` with every ground truth of the class. A class without positives
        gets w = 0, b = -inf (never detected). ``cache['fc7']`` is scaled in place.
        """
        fc7 = cache["fc7"]
        scale = self.feat_norm / max(float(np.linalg.norm(fc7, axis=1).mean()), 1e-12)
        fc7 *= scale
        k = self.num_classes - 1
        weights, biases = np.zeros((k, fc7.shape[1]), np.float32), np.zeros(k, np.float32)
        rng = default_generator()
        stats = []
        for c in range(k):
            tc = time.perf_counter()
            pos = np.flatnonzero(cache["gt_label"] == c + 1)
            neg = np.flatnonzero(cache["overlap"][:, c] < self.svm_neg_iou)
            entry = {"class": c + 1, "positives": int(len(pos)), "negatives": int(len(neg))}
            if len(pos) == 0:
                biases[c] = -np.inf
            else:
                wc, bc, info = hard_negative_mining(
                    fc7, pos, neg, self.mining_init, self.mining_rounds, rng=rng,
                    C=self.svm_C, pos_weight=self.svm_pos_weight,
                    bias_mult=self.svm_bias_mult, tol=self.svm_tol)
                weights[c], biases[c] = wc, bc
                entry.update(rounds=info["rounds"], cache=int(len(info["cache"])),
                             mined=[int(len(m)) for m in info["mined"]])
            entry["seconds_svm"] = round(time.perf_counter() - tc, 3)
            stats.append(entry)
            if progress:
                print(f"R-CNN SVM {entry}", flush=True)
        xp = self.svm_weight.xp
        self.svm_feat_scale.data = xp.asarray([scale], self.svm_feat_scale.dtype)
        self.svm_weight.data = xp.asarray(weights, self.svm_weight.dtype)
        self.svm_bias.data = xp.asarray(biases, self.svm_bias.dtype)
        self.svm_trained.data = xp.ones(1, self.svm_trained.dtype)
        return stats

    def fit_bbox_regressors(self, cache: dict) -> list:
        """One ridge regressor per class from the cached pool5 (scaled to mean norm
        ``feat_norm``) to the targets (t_x, t_y, t_w, t_h); stores them in the buffers.
        Returns the number of samples of each class."""
        k = self.num_classes - 1
        scale = self.feat_norm / max(cache["pool5_norm"], 1e-12)
        bbox = np.zeros((k, self.pool5_dim + 1, 4), np.float32)
        counts = []
        for c in range(k):
            sel = cache["reg_class"] == c + 1
            bbox[c] = ridge_regression(cache["reg_pool5"][sel] * scale,
                                       cache["reg_targets"][sel], self.bbox_lambda)
            counts.append(int(sel.sum()))
        xp = self.bbox_weight.xp
        self.bbox_feat_scale.data = xp.asarray([scale], self.bbox_feat_scale.dtype)
        self.bbox_weight.data = xp.asarray(bbox, self.bbox_weight.dtype)
        self.bbox_trained.data = xp.ones(1, self.bbox_trained.dtype)
        return counts

    # ------------------------------------------------------------------ testing
    def predict(self, images, proposals=None, scorer: str = "auto") -> list:
        """Per image ``{'boxes', 'scores', 'labels'}`` Tensors.

        ``scorer``: 'svm' (the SVM margins; needs ``finish_training``), 'softmax' (the
        fine-tuned classifier's probabilities) or 'auto' (SVMs when trained). Boxes are
        regressed once the regressors are trained. Selective Search runs on the images
        themselves when ``proposals`` is None.
        """
        trained = bool(self.svm_trained.numpy()[0])
        if scorer == "auto":
            scorer = "svm" if trained else "softmax"
        if scorer not in ("svm", "softmax"):
            raise ValueError(f"scorer must be 'auto', 'svm' or 'softmax', got {scorer!r}")
        if scorer == "svm" and not trained:
            raise ValueError("scorer='svm' needs the SVMs: call finish_training first")
        batch = batch_images(images)
        if proposals is None:
            proposals = self.propose(batch)
        proposals = check_proposals(proposals, len(batch))
        counts = [len(p) for p in proposals]
        if sum(counts) == 0:
            return [empty_detections() for _ in proposals]
        rois = np.concatenate([np.concatenate([np.full((len(p), 1), i, np.float32), p], 1)
                               for i, p in enumerate(proposals)])
        pool5, fc7 = self.extract_features(batch.tensors, rois)
        if scorer == "svm":
            scale = float(self.svm_feat_scale.numpy()[0])
            scores = (fc7 * scale) @ self.svm_weight.numpy().T + self.svm_bias.numpy()
            thresh = self.svm_score_thresh
        else:
            with no_grad():
                logits = self.cls_score(Tensor(fc7.astype(self.cls_score.weight.dtype)))
                scores = F.softmax(logits, dim=1).numpy()[:, 1:]
            thresh = self.score_thresh
        boxes = np.broadcast_to(rois[:, None, 1:], (len(rois), self.num_classes - 1, 4))
        if bool(self.bbox_trained.numpy()[0]):
            x = pool5.astype(np.float64) * float(self.bbox_feat_scale.numpy()[0])
            W = self.bbox_weight.numpy().astype(np.float64)          # (K, D + 1, 4)
            t = np.einsum("rd,kdj->rkj", x, W[:, :-1]) + W[:, -1]    # (R, K, 4)
            boxes = np.asarray(_BOX_CODER.decode_single(
                t.reshape(len(rois), -1), rois[:, 1:].astype(np.float64))).reshape(boxes.shape)
        out, s = [], 0
        for n, size in zip(counts, batch.image_sizes):
            out.append(select_detections(boxes[s:s + n], scores[s:s + n], size, thresh,
                                         self.nms_thresh, self.detections_per_img))
            s += n
        return out

    def propose(self, batch) -> list:
        """Selective Search on each image of a batch (un-normalised back to uint8 RGB)."""
        from scratchvision.proposals.selective_search import SelectiveSearch  # noqa: PLC0415
        ss = SelectiveSearch(self.proposal_strategy)
        pixels = denormalise(batch.tensors)
        return [ss(np.ascontiguousarray(pixels[i, :h, :w]))
                for i, (h, w) in enumerate(batch.image_sizes)]
