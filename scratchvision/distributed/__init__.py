"""Data-parallel training over processes and machines: MPI (mpi4py), NCCL on GPUs.

``mpiexec -n N python -m scratchvision train-seg ...`` (or ``train-det``) starts N copies
of the same command; each is one *rank*. They build the same model, split every global
batch of ``--batch-size`` images into N shards of ``batch / N`` (``sampler.shard``: the
layout of torch's DistributedSampler), compute the loss of their shard, average the
gradients (``DistributedDataParallel``) and take the same optimiser step, so the N
copies stay equal and train the model one process would train with the same global
batch - exactly so with ``--sync-bn`` (``SyncBatchNorm``) when the model has batch norm,
up to rounding. Only rank 0 writes logs, pictures and checkpoints.

The modules, one idea each:

- ``comm``: ``init``, ``rank``, ``world_size``, ``barrier``, ``all_reduce``,
  ``broadcast``; fault handling (a failing rank aborts the job, every wait has a timeout);
- ``ddp``: ``DistributedDataParallel``, gradients averaged in flat buckets started
  during backward;
- ``sampler``: ``DistributedSampler``, each rank's indices per epoch;
- ``sync_batchnorm``: ``SyncBatchNorm``, batch statistics over every rank.

The pieces import mpi4py only in ``init()``: without it (``pip install -e '.[dist]'``)
everything here still works in a world of one process.
"""
from scratchvision.distributed.comm import (ProcessGroup, Work, abort, all_gather_object,
                                            all_reduce, barrier, broadcast, broadcast_object,
                                            init, init_if_launched, is_active, is_initialized,
                                            launched_by_mpi, local_rank, local_size, rank,
                                            use_local_gpu, world, world_size)
from scratchvision.distributed.ddp import DistributedDataParallel
from scratchvision.distributed.sampler import DistributedSampler, epoch_order, shard
from scratchvision.distributed.sync_batchnorm import SyncBatchNorm, sync_batch_norm

__all__ = ["DistributedDataParallel", "DistributedSampler", "ProcessGroup", "SyncBatchNorm", "Work",
           "abort", "all_gather_object", "all_reduce", "barrier", "broadcast", "broadcast_object",
           "epoch_order", "init", "init_if_launched", "is_active", "is_initialized",
           "launched_by_mpi", "local_rank", "local_size", "rank", "shard", "sync_batch_norm",
           "use_local_gpu", "world", "world_size"]
