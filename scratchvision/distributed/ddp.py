"""``DistributedDataParallel``: the same model on every rank, gradients averaged in buckets.

Each rank holds a full copy of the model and computes the loss of its shard of the
global batch. After ``backward`` every parameter's ``.grad`` is the average of the
ranks' gradients, so the optimiser takes the same step everywhere and the copies stay
equal (torch.nn.parallel.DistributedDataParallel; Li et al., "PyTorch Distributed:
Experiences on Accelerating Data Parallel Training", VLDB 2020).

Start: the parameters' names, shapes and dtypes are compared across ranks (a mismatch is
an error on every rank, naming the first difference), then every parameter and buffer
is broadcast from rank 0.

Buckets. One all-reduce per parameter would pay the latency of a collective hundreds of
times a step; one for all of them could only start when the backward has ended. The
parameters are therefore grouped, in the reverse of ``module.parameters()`` order (the
order in which backward reaches them, roughly), into buckets of at most
``bucket_cap_mb`` MiB of one dtype (default 25 MiB, as torch; a larger parameter has a
bucket to itself)::

    bucket k: params p_i .. p_j     flat buffer [p_i.grad.ravel(), ..., p_j.grad.ravel()]

Each parameter has a post-accumulate-grad hook (``Tensor.register_post_accumulate_grad_hook``):
when backward has finished a parameter's gradient the hook marks it ready, and when the
last parameter of a bucket is ready the bucket is packed and its all-reduce started,
non-blocking, while backward goes on through the earlier layers. Buckets start strictly
in index order (bucket k only after bucket k - 1), so every rank issues the same
collectives in the same order, whatever order its hooks fire in. The first hook of a
backward queues a callback at the end of the backward pass (``engine.queue_callback``):
it starts the buckets still waiting, waits for all of them, divides by the number of
ranks and makes each parameter's ``.grad`` a view of its slice of the bucket. So when
``loss.backward()`` returns, the gradients are averaged, as in torch.

Unused parameters. A parameter that takes no part in this rank's loss (a branch not
taken) never gets its hook; its bucket is then started by the end-of-backward callback
with zeros in that parameter's slice. Each bucket carries one more number per
parameter, 1 where the rank has a gradient, so the reduced bucket also counts the ranks
that have one: a parameter with a gradient on no rank keeps
``.grad`` None (the optimiser skips it, as in one process); one with a gradient on some
ranks gets the average, zeros counted for the others - which is what one process sees,
the loss being the mean over the global batch.

``no_sync()``: inside it, forward passes do not arm the reduction, so gradients only
accumulate locally; the first backward after it averages the sums (gradient
accumulation). ``broadcast_buffers`` (default True, as torch) copies rank 0's buffers
(batch-norm running statistics) to every rank before each training forward.

The rank's loss must be a mean over its shard (every loss here is) for the average of
the ranks' gradients to be the gradient of the global batch's loss.
"""
from __future__ import annotations

import contextlib

import numpy as np

from scratchvision import nn
from scratchvision.autograd import engine
from scratchvision.autograd.function import is_grad_enabled
from scratchvision.autograd.tensor import Tensor
from scratchvision.distributed import comm

__all__ = ["DistributedDataParallel"]

MiB = 1 << 20


class _Bucket:
    def __init__(self, params: list) -> None:
        self.params = params
        self.offsets = np.concatenate([[0], np.cumsum([p.data.size for p in params])]
                                      ).astype(int)
        self.nbytes = int(self.offsets[-1]) * params[0].data.dtype.itemsize
        self.pending = len(params)
        self.flat = None
        self.work = None


class DistributedDataParallel(nn.Module):
    """Wrap ``module`` for data-parallel training (see the module docstring).

    Parameters
    ----------
    module : the model, already on its device; its ``forward``, ``loss`` and ``predict``
        are reached through the wrapper (``ddp(x)``, ``ddp.loss(...)``); the parameters
        and buffers stay the module's own
    bucket_cap_mb : the largest bucket, in MiB (default 25, torch's)
    broadcast_buffers : copy rank 0's buffers to every rank before each training forward
    group : the process group (default: a new group over the world)
    """

    def __init__(self, module: nn.Module, bucket_cap_mb: float = 25.0,
                 broadcast_buffers: bool = True, group: comm.ProcessGroup | None = None
                 ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        self.bucket_cap_mb, self.broadcast_buffers = float(bucket_cap_mb), broadcast_buffers
        group = group if group is not None else comm.world().new_group()
        object.__setattr__(self, "group", group)
        params = [p for p in module.parameters() if p.requires_grad]
        # the module's buffers, listed once (walking the module tree each step costs more
        # than broadcasting them); buffers registered later are not broadcast
        object.__setattr__(self, "_buffer_list", list(module.buffers()))
        _check_same_parameters(module, group)
        self._broadcast_state()
        object.__setattr__(self, "buckets", _make_buckets(params, self.bucket_cap_mb * MiB))
        object.__setattr__(self, "_bucket_of", {id(p): b for b in self.buckets
                                                for p in b.params})
        handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]
        object.__setattr__(self, "_handles", handles)
        object.__setattr__(self, "_require_sync", True)
        object.__setattr__(self, "_armed", False)
        object.__setattr__(self, "_finalising", False)

    # ---------------------------------------------------------------- forward passes
    def forward(self, *args, **kwargs):
        self._before_forward()
        return self.module(*args, **kwargs)

    def loss(self, *args, **kwargs):
        """``module.loss``, with the gradient reduction armed for the next backward."""
        self._before_forward()
        return self.module.loss(*args, **kwargs)

    def predict(self, *args, **kwargs):
        return self.module.predict(*args, **kwargs)

    def _before_forward(self) -> None:
        if not (self.module.training and is_grad_enabled()):
            return
        if self.broadcast_buffers:
            self._broadcast_buffers()
        if self._require_sync:
            for b in self.buckets:
                b.pending, b.flat, b.work = len(b.params), None, None
            object.__setattr__(self, "_next", 0)          # the next bucket to start
            object.__setattr__(self, "_ready", set())
            object.__setattr__(self, "_armed", True)
            object.__setattr__(self, "_finalising", False)

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally; the first backward after the block averages."""
        old = self._require_sync
        object.__setattr__(self, "_require_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "_require_sync", old)

    # ---------------------------------------------------------------- the reduction
    def _grad_ready(self, param) -> None:
        if not self._armed:
            return
        if not self._finalising:
            object.__setattr__(self, "_finalising", True)
            engine.queue_callback(self._finish_reduction)
        if id(param) in self._ready:
            return
        self._ready.add(id(param))
        self._bucket_of[id(param)].pending -= 1
        self._start_ready_buckets()
        for b in self.buckets[:self._next]:          # push MPI's progress along
            if b.work is not None:
                b.work.test()

    def _start_ready_buckets(self) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].pending == 0:
            self._start(self.buckets[self._next])
            object.__setattr__(self, "_next", self._next + 1)

    def _start(self, bucket: _Bucket) -> None:
        p0 = bucket.params[0]
        xp = p0.xp
        total = int(bucket.offsets[-1])
        # the gradients, then one flag per parameter: 1 where this rank has a gradient
        flat = xp.empty(total + len(bucket.params), p0.data.dtype)
        for k, (p, a, b) in enumerate(zip(bucket.params, bucket.offsets[:-1],
                                          bucket.offsets[1:])):
            if p.grad is not None:
                flat[a:b] = p.grad.data.reshape(-1)
                flat[total + k] = 1
            else:
                flat[a:b] = 0
                flat[total + k] = 0
        bucket.flat = flat
        bucket.work = self.group.all_reduce(flat, "sum", async_op=True)

    def _finish_reduction(self) -> None:
        """End of backward: start what is left, wait, average, write the grads back."""
        while self._next < len(self.buckets):
            self._start(self.buckets[self._next])
            object.__setattr__(self, "_next", self._next + 1)
        size = self.group.size
        for b in self.buckets:
            b.work.wait()
            total = int(b.offsets[-1])
            have = b.flat[total:]                # ranks with a gradient, per parameter
            have = have.get() if hasattr(have, "get") else have   # one copy off a GPU
            b.flat /= size
            for k, (p, a, e) in enumerate(zip(b.params, b.offsets[:-1], b.offsets[1:])):
                if have[k] > 0:                  # (on no rank: .grad stays None)
                    # a view into the bucket, no copy (torch's gradient_as_bucket_view);
                    # each step packs into a new buffer, so views never alias
                    p.grad = Tensor._make(b.flat[a:e].reshape(p.shape), False)
            b.flat, b.work = None, None
        object.__setattr__(self, "_armed", False)

    # ---------------------------------------------------------------- start, buffers
    def _broadcast_state(self) -> None:
        """Every parameter and buffer from rank 0 (one flat broadcast per dtype)."""
        _broadcast_flat(list(self.module.parameters()) + self._buffer_list, self.group)

    def _broadcast_buffers(self) -> None:
        if self._buffer_list and self.group.size > 1:
            _broadcast_flat(self._buffer_list, self.group)

    def remove_hooks(self) -> None:
        """Unregister the gradient hooks (the wrapper stops reducing)."""
        for h in self._handles:
            h.remove()
        object.__setattr__(self, "_armed", False)

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{b.nbytes / MiB:.2f}" for b in self.buckets)
        return f"world_size={self.group.size}, buckets (MiB): [{sizes}]"


def _make_buckets(params: list, cap_bytes: float) -> list:
    """Buckets of at most ``cap_bytes`` of one dtype and device, filled in the reverse of
    the parameters' order."""
    buckets, current, nbytes, key = [], [], 0, None
    for p in reversed(params):
        size = p.data.size * p.data.dtype.itemsize
        this_key = (p.data.dtype, p.device)
        if current and (this_key != key or nbytes + size > cap_bytes):
            buckets.append(_Bucket(current))
            current, nbytes = [], 0
        current.append(p)
        nbytes += size
        key = this_key
    if current:
        buckets.append(_Bucket(current))
    return buckets


def _broadcast_flat(tensors: list, group: comm.ProcessGroup) -> None:
    by_kind: dict = {}
    for t in tensors:
        by_kind.setdefault((t.data.dtype, t.device), []).append(t)
    for ts in by_kind.values():
        xp = ts[0].xp
        flat = xp.concatenate([t.data.reshape(-1) for t in ts]) if len(ts) > 1 \
            else ts[0].data.reshape(-1).copy()
        group.broadcast(flat, 0)
        offset = 0
        for t in ts:
            n = t.data.size
            t.data[...] = flat[offset:offset + n].reshape(t.data.shape)
            offset += n


def _check_same_parameters(module: nn.Module, group: comm.ProcessGroup) -> None:
    """Every rank must hold the same parameters: names, shapes and dtypes."""
    mine = [(n, tuple(p.shape), str(p.dtype), bool(p.requires_grad))
            for n, p in module.named_parameters()]
    everyone = group.all_gather_object(mine)
    for r, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        detail = f"{len(everyone[0])} parameters on rank 0, {len(theirs)} on rank {r}"
        for a, b in zip(everyone[0], theirs):
            if a != b:
                detail = f"rank 0 has {a[0]} {a[1]} {a[2]}" + \
                    ("" if a[3] else " (frozen)") + f", rank {r} has {b[0]} {b[1]} {b[2]}" + \
                    ("" if b[3] else " (frozen)")
                break
        raise ValueError(f"DistributedDataParallel: the ranks' models differ ({detail}); "
                         "every rank must build the same model")
