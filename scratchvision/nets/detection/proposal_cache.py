"""Precomputed region proposals (Selective Search) for a whole dataset split, on disk.

R-CNN and Fast R-CNN train on the same proposals epoch after epoch, and Selective Search
costs far more per image than a training step of a small network, so the proposals of a
split are computed once and stored, as the papers' code did:

- **Key.** Everything the boxes depend on: the dataset and its parameters (name, split,
  number of images, image size, seed) and the proposal method's (strategy, its seed, the
  cap on boxes per image). The file name is the SHA-1 of that key as canonical JSON, and
  the key is stored inside the file and checked on load, so a changed parameter can never
  read stale boxes.
- **Work.** Image i is regenerated from its index inside a worker process (Shapes images
  are a pure function of (seed, split, index)), so nothing large is sent between
  processes; ``workers`` processes each run Selective Search single-threaded on their
  share, with a tqdm bar in the parent.
- **Format.** One ``.npz``: ``boxes`` (sum K_i, 4) float32 concatenated, ``offsets``
  (N + 1,) int64 (image i owns ``boxes[offsets[i]:offsets[i + 1]]``), ``key`` (the JSON),
  ``seconds`` (the compute time). Written to a temporary file and renamed, so an
  interrupted run never leaves a half-written cache.

The cache folder is ``$SCRATCHVISION_CACHE/proposals`` (default ``~/.cache/scratchvision``).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

from scratchvision import distributed


def cache_dir() -> Path:
    root = os.environ.get("SCRATCHVISION_CACHE") or Path.home() / ".cache" / "scratchvision"
    return Path(root) / "proposals"


def cache_key(split: str, num_images: int, image_size: int, seed: int, strategy: str = "fast",
              ss_seed: int = 0, max_proposals: int = 2000, dataset: str = "shapes") -> dict:
    """The dict that names a proposal file (see the module docstring)."""
    return {"dataset": dataset, "split": split, "num_images": int(num_images),
            "image_size": int(image_size), "seed": int(seed), "method": "selective_search",
            "strategy": strategy, "ss_seed": int(ss_seed), "max_proposals": int(max_proposals)}


def cache_path(key: dict, root: Path | None = None) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root or cache_dir()) / f"{key['dataset']}-{key['split']}-{digest}.npz"


_JOB: dict = {}


def _init(key: dict) -> None:
    from scratchvision.proposals.selective_search import SelectiveSearch  # noqa: PLC0415
    _JOB["key"] = key
    _JOB["ss"] = SelectiveSearch(key["strategy"], seed=key["ss_seed"], num_threads=1)


def _image(key: dict, index: int) -> np.ndarray:
    if key["dataset"] != "shapes":
        raise ValueError(f"proposal cache: unknown dataset {key['dataset']!r}")
    from scratchvision.data.shapes import generate  # noqa: PLC0415
    return generate(key["seed"], key["split"], index, key["image_size"])["image"]


def _one(index: int) -> np.ndarray:
    key = _JOB["key"]
    boxes = _JOB["ss"](_image(key, index))
    return boxes[:key["max_proposals"]].astype(np.float32)


def compute(key: dict, workers: int | None = None, progress: bool = True) -> list:
    """Selective Search boxes of every image of the split described by ``key``."""
    from tqdm import tqdm  # noqa: PLC0415
    n = key["num_images"]
    workers = max(1, min(workers or os.cpu_count() or 1, n or 1))
    bar = dict(total=n, desc=f"selective search ({key['split']}, {workers} workers)",
               disable=not progress, mininterval=1.0)
    if workers == 1:
        _init(key)
        return [_one(i) for i in tqdm(range(n), **bar)]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    if distributed.is_active() and method == "fork":
        # an MPI rank has started Numba's OpenMP threads (distributed.init sizes them),
        # and GNU OpenMP kills a forked child: the workers come from a fresh server
        method = "forkserver"
    ctx = mp.get_context(method)
    with ctx.Pool(workers, initializer=_init, initargs=(key,)) as pool:
        return list(tqdm(pool.imap(_one, range(n), chunksize=8), **bar))


def load_or_compute(key: dict, workers: int | None = None, progress: bool = True,
                    root: Path | None = None) -> tuple[list, float]:
    """Proposals of the split (a list of (K_i, 4) float32 arrays) and the seconds that
    computing them took (when read from the cache: as recorded when they were computed)."""
    path = cache_path(key, root)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                if json.loads(str(f["key"])) != key:
                    raise ValueError("key mismatch")
                boxes, offsets = f["boxes"], f["offsets"]
                seconds = float(f["seconds"])
            if len(offsets) == key["num_images"] + 1:
                return [boxes[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)], \
                    max(seconds, 0.0)
        except (OSError, ValueError, KeyError) as e:
            print(f"proposal cache {path} unreadable ({e}); recomputing", flush=True)
    t0 = time.perf_counter()
    props = compute(key, workers, progress)
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in props])]).astype(np.int64)
    boxes = np.concatenate(props) if props else np.zeros((0, 4), np.float32)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, boxes=boxes, offsets=offsets, key=np.array(json.dumps(key)),
                 seconds=np.array(seconds))
    tmp.replace(path)
    return props, seconds
