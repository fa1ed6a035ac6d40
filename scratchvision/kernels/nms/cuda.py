"""NMS on the GPU (numba.cuda): the 64-box IoU bitmask, then a device-side sweep.

1. Sort by ``(-score, index)`` (a stable argsort of ``-scores``: CuPy's is Thrust's
   stable sort), and gather the boxes in that order.
2. ``_mask_kernel``: block ``(bx, by)`` compares the 64 boxes of row block ``by`` with the
   64 boxes of column block ``bx`` (staged in shared memory); thread t builds the 64-bit
   word ``mask[i, bx]`` whose bit j says "box i suppresses box ``64 bx + j``" (IoU > thr),
   only for ``j > i`` in score order. Blocks below the diagonal exit at once.
3. ``_sweep_kernel`` (one block): walk the boxes in score order, one word of 64 boxes at
   a time. Thread 0 decides the 64 boxes in order from ``removed[w]`` and the mask's
   diagonal word (staged in shared memory): box i is kept when its bit is clear, and its
   row then clears the later boxes of the word. Then every thread ORs the kept rows into
   one later word of ``removed`` each. Two ``syncthreads`` per word, not one per box
   (torchvision's loop, ``gather_keep_from_mask``, syncs once per box); the mask and the
   decisions never leave the device.

The IoU is the shared float64 helper (``kernels/boxes/scalar.py``), so the kept indices
equal the CPU's, ties included.

Soft-NMS is sequential (re-pick the best after every decay) and has no GPU version; the
dispatcher runs the CPU kernel on host copies and moves the result back.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float64, uint64

from scratchvision.backend import get_array_module
from scratchvision.kernels.boxes import scalar
from scratchvision.kernels.cuda_support import launch_grid

_iou = cuda.jit(device=True)(scalar.box_iou_scalar)

BLOCK = 64                     # boxes per mask word (bits of a uint64)
SWEEP_THREADS = 256


@cuda.jit
def _mask_kernel(boxes, iou_threshold, mask):
    n = boxes.shape[0]
    row_block = cuda.blockIdx.y
    col_block = cuda.blockIdx.x
    if row_block > col_block:                # only j > i matters: lower blocks stay 0
        return
    t = cuda.threadIdx.x
    row_size = min(n - row_block * BLOCK, BLOCK)
    col_size = min(n - col_block * BLOCK, BLOCK)
    cols = cuda.shared.array((BLOCK, 4), float64)   # the column block's boxes
    if t < col_size:
        for q in range(4):
            cols[t, q] = boxes[col_block * BLOCK + t, q]
    cuda.syncthreads()                       # the column boxes are staged
    if t < row_size:
        i = row_block * BLOCK + t
        word = uint64(0)
        start = t + 1 if row_block == col_block else 0
        for j in range(start, col_size):
            if _iou(boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3],
                    cols[j, 0], cols[j, 1], cols[j, 2], cols[j, 3]) > iou_threshold:
                word |= uint64(1) << uint64(j)   # '>' : IoU == threshold is kept
        mask[i, col_block] = word


@cuda.jit
def _sweep_kernel(mask, n, removed, keep):
    """One block walks the mask one word (64 boxes) at a time."""
    words = mask.shape[1]
    t = cuda.threadIdx.x
    diagonal = cuda.shared.array(BLOCK, uint64)      # rows of word w, at column w
    kept_here = cuda.shared.array(1, uint64)         # which boxes of word w are kept
    for w in range(words):
        base = w * BLOCK
        if t < BLOCK:
            diagonal[t] = mask[base + t, w]
        cuda.syncthreads()                   # staged; removed[w] has every earlier OR
        if t == 0:                           # the 64 decisions in order, in registers
            cur = removed[w]
            kept = uint64(0)
            for b in range(BLOCK):
                if base + b < n and (cur >> uint64(b)) & uint64(1) == uint64(0):
                    kept |= uint64(1) << uint64(b)
                    keep[base + b] = 1
                    cur |= diagonal[b]       # box b suppresses later boxes of word w
            kept_here[0] = kept
        cuda.syncthreads()
        kept = kept_here[0]
        # the kept rows suppress boxes of later words: one word per thread. All 64 rows
        # are read (the mask has zero rows past n), masked by their kept bit, so the
        # loads do not wait on one another.
        for v in range(w + 1 + t, words, cuda.blockDim.x):
            acc = removed[v]
            for b in range(BLOCK):
                acc |= mask[base + b, v] & (uint64(0) - ((kept >> uint64(b)) & uint64(1)))
            removed[v] = acc
        cuda.syncthreads()                   # before thread 0 reads removed[w + 1]


def nms(boxes, scores, iou_threshold):
    """(N, 4) float64 boxes, (N,) float64 scores -> int64 kept indices, best first."""
    xp = get_array_module(boxes)
    n = boxes.shape[0]
    order = xp.argsort(-scores, kind="stable")   # by -score, then index (stable sort)
    sorted_boxes = xp.ascontiguousarray(boxes[order])
    words = (n + BLOCK - 1) // BLOCK
    mask = xp.zeros((words * BLOCK, words), np.uint64)   # rows past n stay 0
    launch_grid(_mask_kernel, (words, words), BLOCK, sorted_boxes, float(iou_threshold), mask)
    removed = xp.zeros(words, np.uint64)
    keep = xp.zeros(n, np.uint8)
    launch_grid(_sweep_kernel, 1, SWEEP_THREADS, mask, n, removed, keep)
    return order[xp.nonzero(keep)[0]].astype(np.int64)


def soft_nms(boxes, scores, sigma, iou_threshold, score_threshold, method):
    """Soft-NMS: the CPU kernel on host copies (sequential by nature)."""
    from scratchvision.kernels.nms import cpu  # noqa: PLC0415
    xp = get_array_module(boxes)
    host = [a.get() if hasattr(a, "get") else a for a in (boxes, scores)]
    keep, new_scores = cpu.soft_nms(*host, sigma, iou_threshold, score_threshold, method)
    return xp.asarray(keep), xp.asarray(new_scores)
