"""``DistributedSampler``: each rank's share of a dataset's indices, torch's semantics.

Every rank computes the same epoch order - a permutation of ``range(n)`` drawn from a
generator seeded by ``(seed, epoch)`` (``shuffle``), or ``range(n)`` - and keeps every
``num_replicas``-th entry starting at its rank::

    order   = permutation(n)                   # the same on every rank
    padded  = order + order[:total - n]        # total = num_samples * num_replicas
    (or, with drop_last, order[:total] with total = floor(n / num_replicas) * num_replicas)
    rank r  : padded[r], padded[r + R], padded[r + 2R], ...   (num_samples of them)

so the shards are disjoint (but for the padding, which repeats the first indices),
equal in size, and cover the dataset once per epoch. Taken ``b`` at a time, step ``s`` of
rank ``r`` holds ``padded[s b R + r + k R]`` for ``k < b``: the R shards of one step
together are exactly ``padded[s B : (s + 1) B]`` with ``B = b R``, the batch a single
process with batch size B takes at step s. That is what lets a global batch size train
the same model at any number of ranks (``train-seg`` / ``train-det`` shard each global
batch ``order[s B:(s + 1) B][r::R]``, this layout).

The permutation is NumPy's (``default_rng([seed, epoch]).permutation(n)``), not torch's,
so the indices differ from torch's for the same seed; the layout is the same.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision.distributed import comm

__all__ = ["DistributedSampler", "epoch_order", "shard"]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The epoch's permutation of ``range(n)``, the same on every rank."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


def shard(indices, rank: int, world: int) -> np.ndarray:
    """This rank's share of one global batch (``indices[rank::world]``)."""
    if not 0 <= rank < world:
        raise ValueError(f"shard: rank must be in [0, {world}), got {rank}")
    return np.asarray(indices)[rank::world]


class DistributedSampler:
    """The indices of ``dataset`` (anything with ``len``, or an int) that this rank
    iterates over in one epoch (``set_epoch`` before each epoch, as in torch).

    Parameters
    ----------
    dataset : a sized dataset or its length
    num_replicas, rank : default: the world's (``scratchvision.distributed``)
    shuffle : permute by ``(seed, epoch)``; otherwise the natural order
    seed : the same on every rank
    drop_last : drop the tail so that every rank gets ``floor(n / R)`` indices; otherwise
        pad with the first indices to ``ceil(n / R)`` each
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        n = dataset if isinstance(dataset, (int, np.integer)) else len(dataset)
        num_replicas = comm.world_size() if num_replicas is None else num_replicas
        rank = comm.rank() if rank is None else rank
        if int(num_replicas) != num_replicas or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be an int >= 1, got "
                             f"{num_replicas!r}")
        if int(rank) != rank or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        if n < 0:
            raise ValueError(f"DistributedSampler: the dataset's length is negative ({n})")
        self.n, self.num_replicas, self.rank = int(n), int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        if self.drop_last and self.n % self.num_replicas:
            self.num_samples = math.ceil((self.n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(self.n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, in order."""
        order = epoch_order(self.n, self.seed, self.epoch) if self.shuffle \
            else np.arange(self.n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > self.n:          # pad by repeating from the start
            reps = math.ceil((self.total_size - self.n) / max(self.n, 1))
            order = np.concatenate([order] + [order] * reps)[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
