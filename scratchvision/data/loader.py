"""DataLoader: batches of (images, per-image targets), with seeded shuffling and workers.

``DataLoader(dataset, batch_size, shuffle, seed, drop_last, num_workers, collate_fn)``
follows ``torch.utils.data.DataLoader``'s meaning of these arguments. Detection targets
have a different number of boxes per image, so the default ``collate`` stacks only the
images and keeps the targets as a list of dicts (as torchvision's detection references
do). The arguments are checked when the loader is built: ``batch_size`` an int >= 1,
``num_workers`` an int >= 0, ``shuffle`` / ``drop_last`` bools, ``seed`` None or an int
>= 0, ``collate_fn`` None or a callable, ``dataset`` something with ``__len__`` and
``__getitem__`` (``TypeError`` / ``ValueError`` naming the argument).

Order and randomness:

- Shuffling draws one permutation per epoch (per ``iter(loader)``) from the loader's own
  generator, ``numpy.random.default_rng(seed)``, so a seed fixes the sequence of epochs;
  without a seed the permutations come from ``scratchvision.autograd.default_generator()``.
- With ``num_workers > 0`` batches are built in worker processes (``multiprocessing``,
  ``fork`` where the OS has it) and come back in order. Before each batch a worker seeds
  scratchvision's default generator with a number drawn in the main process, so random
  transforms differ from batch to batch and worker to worker, and an epoch is
  reproducible whatever the number of workers. (Transforms given their *own* generator
  would be copied into every worker and repeat each other: leave ``generator=None``.)
"""
from __future__ import annotations

import math
import multiprocessing as mp
from typing import Any, Callable, Iterable

import numpy as np

from scratchvision.autograd import Tensor, default_generator, manual_seed
from scratchvision.validation import check_int


def collate(batch: list) -> tuple:
    """Default collate: ``[(image, target), ...] -> (images, [target, ...])``.

    Tensor images (C, H, W) are stacked into a Tensor (N, C, H, W); NumPy images into an
    array (N, ...). Images of different sizes raise a ValueError (resize them, or pass a
    ``collate_fn`` that keeps a list).
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    if not all(isinstance(s, (tuple, list)) and len(s) == 2 for s in batch):
        raise TypeError("default collate expects (image, target) samples")
    images = [s[0] for s in batch]
    targets = [s[1] for s in batch]
    arrays = [im.data if isinstance(im, Tensor) else np.asarray(im) for im in images]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images of different shapes {sorted(shapes)} cannot be stacked; "
                         "resize them or pass collate_fn=list_collate")
    stacked = np.stack(arrays)
    return (Tensor(stacked) if isinstance(images[0], Tensor) else stacked), targets


def list_collate(batch: list) -> tuple:
    """Collate keeping both images and targets as lists (images of any size)."""
    return [s[0] for s in batch], [s[1] for s in batch]


_WORKER: dict = {}


def _init_worker(dataset, collate_fn) -> None:
    """Worker start: keep the dataset once per process (inherited, not sent per batch)."""
    _WORKER["dataset"] = dataset
    _WORKER["collate_fn"] = collate_fn


def _load_batch(args):
    """Worker body: seed, fetch the samples of one batch, collate."""
    indices, seed = args
    manual_seed(seed)
    dataset = _WORKER["dataset"]
    return _WORKER["collate_fn"]([dataset[int(i)] for i in indices])


class DataLoader:
    """Iterate over a dataset in batches (see the module doc).

    Parameters
    ----------
    dataset : anything with ``__len__`` and ``__getitem__``.
    batch_size : samples per batch.
    shuffle : new random order every epoch.
    seed : seed of the shuffling (and of the workers' per-batch seeds).
    drop_last : drop the last incomplete batch.
    num_workers : 0 loads in the calling process; n > 0 uses n worker processes.
    collate_fn : ``list of samples -> batch`` (default ``collate``).
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 seed: int | None = None, drop_last: bool = False, num_workers: int = 0,
                 collate_fn: Callable[[list], Any] | None = None) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        batch_size = check_int(batch_size, "DataLoader: batch_size", minimum=1)
        num_workers = check_int(num_workers, "DataLoader: num_workers", minimum=0)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be a bool, got {flag!r}")
        if seed is not None:
            seed = check_int(seed, "DataLoader: seed", minimum=0)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable or None, got "
                            f"{type(collate_fn).__name__}")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, bool(shuffle)
        self.drop_last, self.num_workers = bool(drop_last), num_workers
        self.collate_fn = collate_fn or collate
        self.generator = np.random.default_rng(seed) if seed is not None else None

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _rng(self) -> np.random.Generator:
        return self.generator if self.generator is not None else default_generator()

    def batches(self) -> list[np.ndarray]:
        """The index batches of one epoch (draws the epoch's permutation)."""
        n = len(self.dataset)
        order = self._rng().permutation(n) if self.shuffle else np.arange(n)
        out = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        return out

    def __iter__(self) -> Iterable:
        batches = self.batches()
        if self.num_workers == 0:
            for idx in batches:
                yield self.collate_fn([self.dataset[int(i)] for i in idx])
            return
        seeds = self._rng().integers(0, 2 ** 63 - 1, len(batches))
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        jobs = [(idx, int(s)) for idx, s in zip(batches, seeds)]
        with mp.get_context(method).Pool(self.num_workers, initializer=_init_worker,
                                         initargs=(self.dataset, self.collate_fn)) as pool:
            yield from pool.imap(_load_batch, jobs, chunksize=1)


def progress(iterable: Iterable, desc: str | None = None, total: int | None = None,
             **kwargs) -> Iterable:
    """A tqdm progress bar around ``iterable`` for training loops.

    ``for images, targets in progress(loader, desc=f"epoch {e}"): ...``; extra keyword
    arguments go to ``tqdm`` (``disable=True`` turns it off, e.g. in tests).
    """
    from tqdm.auto import tqdm  # noqa: PLC0415  (optional at import time)

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, **kwargs)
