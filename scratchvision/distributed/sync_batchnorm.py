"""Synchronised batch norm: the statistics of the global batch, wherever its shards are.

Plain batch norm on R ranks normalises each rank's shard by that shard's own mean and
variance, so data-parallel training differs from one process with the same global
batch. ``SyncBatchNorm`` (torch.nn.SyncBatchNorm) sums over all ranks instead. With C
channels, per rank r the shard x_r of n_r values per channel:

forward (two all-reduces of C + 1 and C numbers, the same two passes as ``BatchNorm``)::

    [S, n] = all_reduce([sum x_r, n_r])           mean = S / n
    Q      = all_reduce(sum (x_r - mean)^2)       var  = Q / n       (biased)
    x_hat  = (x_r - mean) / sqrt(var + eps),      y = gamma x_hat + beta
    running stats: as BatchNorm, with the unbiased var Q / (n - 1) of the global batch

backward (one all-reduce of 2C numbers). Each rank's loss is the mean over its own
shard, R times its share of the global mean, so its gy is R times the global one; the
sums over all ranks then carry that factor R, and so does gx::

    [G, H] = all_reduce([sum gy_r, sum gy_r x_hat_r])
    gx_r   = gamma / sqrt(var + eps) * (gy_r - G / n - x_hat_r H / n)
    ggamma = sum gy_r x_hat_r,  gbeta = sum gy_r                       (this shard's)

and data-parallel training averages the weight gradients over the R ranks, which divides
the factor out again: every gradient equals the single process's. The all-reduces run on
a process group of their own (``comm.ProcessGroup.new_group``), apart from the gradient
buckets'. In evaluation mode, or in a world of one rank, it is ``BatchNorm2d``.
"""
from __future__ import annotations

from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.distributed import comm
from scratchvision.functional.normalization import update_running_stats
from scratchvision.kernels.batch_norm.reference import channel_sum
from scratchvision.nn.layers import BatchNorm1d, BatchNorm2d, _BatchNorm

__all__ = ["SyncBatchNorm", "sync_batch_norm"]

_group: comm.ProcessGroup | None = None


def _default_group() -> comm.ProcessGroup | None:
    """The batch-norm group (made on first use; None in a world of one)."""
    global _group
    if not comm.is_active():
        return None
    if _group is None:
        _group = comm.world().new_group()
    return _group


def _reduce(group, arr):
    if group is not None:
        group.all_reduce(arr)
    return arr


class SyncBatchNormFunction(Function):
    """Training-mode batch norm over the union of every rank's batch (module docstring)."""

    def forward(self, x, gamma, beta, running_mean, running_var, momentum, eps, group):
        xp = xp_of(x)
        c = x.shape[1]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        local = x.size // c if c else 0
        head = xp.concatenate([channel_sum(x), xp.asarray([local], x.dtype)])
        head = _reduce(group, head)
        count = int(round(float(head[c])))
        if count <= 1:
            raise ValueError(f"sync_batch_norm: expected more than 1 value per channel over "
                             f"all ranks when training, got {count} (this rank's input: "
                             f"shape {x.shape})")
        mean = head[:c] / count
        centred = x - mean.reshape(shape)
        var = _reduce(group, channel_sum(centred * centred)) / count
        update_running_stats(running_mean, running_var, mean, var, count, momentum)
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
        x_hat = centred * inv_std.reshape(shape)
        self.saved = (x_hat, inv_std, gamma, shape, count, group)
        y = x_hat if gamma is None else x_hat * gamma.reshape(shape)
        if beta is not None:
            y = y + beta.reshape(shape)
        return y

    def backward(self, gy):
        x_hat, inv_std, gamma, shape, count, group = self.saved
        xp = xp_of(gy)
        need_x, need_gamma, need_beta = self.needs_input_grad[:3]
        c = gy.shape[1]
        gy_sum, gyx_sum = channel_sum(gy), channel_sum(gy * x_hat)
        gx = None
        if need_x:
            # every rank all-reduces, whatever it needs: the collective must match up
            total = _reduce(group, xp.concatenate([gy_sum, gyx_sum]))
            scale = inv_std if gamma is None else inv_std * gamma
            gx = scale.reshape(shape) * (gy - (total[:c] / count).reshape(shape)
                                         - x_hat * (total[c:] / count).reshape(shape))
        return (gx, gyx_sum if need_gamma else None, gy_sum if need_beta else None,
                None, None, None, None, None)


def sync_batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                    momentum: float = 0.1, eps: float = 1e-5, group=None):
    """Training-mode batch norm with the statistics of every rank's batch together
    (``group``: default the batch-norm group of the world; None in a world of one)."""
    from scratchvision.autograd.tensor import _raw  # noqa: PLC0415
    from scratchvision.functional.activation import _as_tensor  # noqa: PLC0415
    x = _as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"sync_batch_norm: input must be (N, C, ...), got shape {x.shape}")
    return SyncBatchNormFunction.apply(x, weight, bias, _raw(running_mean), _raw(running_var),
                                       momentum, eps,
                                       _default_group() if group is None else group)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) inputs whose training statistics span every rank
    (torch.nn.SyncBatchNorm); ``convert_sync_batchnorm`` swaps it in for a model's
    BatchNorm layers."""

    _expected_ndim = (2, 3, 4, 5)

    def forward(self, x):
        group = _default_group()
        if not self.training or group is None:
            return super().forward(x)
        if x.ndim not in self._expected_ndim or x.shape[1] != self.num_features:
            return super().forward(x)          # the same clear errors as BatchNorm
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
        return sync_batch_norm(x, self.running_mean, self.running_var, self.weight,
                               self.bias, self.momentum, self.eps, group)

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm holding the
        same parameters and buffers (the same objects: an optimiser built before stays
        valid); returns the module (a new one if ``module`` itself was a BatchNorm)."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d)) and not isinstance(module, cls):
            out = cls.__new__(cls)
            out.__dict__.update(module.__dict__)     # parameters, buffers, hooks, mode
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                new = cls.convert_sync_batchnorm(child)
                if new is not child:
                    module._modules[name] = new
        return module


@register_gradcheck("sync_batch_norm")
def _sync_bn_case(rng):
    """The Function itself, in a world of one rank (the all-reduces are the identity)."""
    x = rng.standard_normal((3, 2, 2, 3))
    g, b = rng.standard_normal(2), rng.standard_normal(2)

    def fn(x, g, b):
        return SyncBatchNormFunction.apply(x, g, b, None, None, 0.1, 1e-5, None)
    return [(fn, [x, g, b]),
            ((lambda x: SyncBatchNormFunction.apply(x, None, None, None, None, 0.1, 1e-5,
                                                    None)), [x[:, :, 0, 0]])]

