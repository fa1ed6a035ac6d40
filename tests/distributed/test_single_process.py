"""The data-parallel pieces in one process: the sampler's layout, SyncBatchNorm in a world
of one, the engine's post-accumulate-grad hooks and end-of-backward callbacks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchvision as sv
import scratchvision.distributed as dist
from scratchvision import nn
from scratchvision.autograd import engine


# ----------------------------------------------------------------------------- sampler
@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), world=st.integers(1, 5), shuffle=st.booleans(),
       drop_last=st.booleans(), epoch=st.integers(0, 3))
def test_sampler_shards_cover_the_dataset(n, world, shuffle, drop_last, epoch):
    shards = []
    for r in range(world):
        s = dist.DistributedSampler(n, num_replicas=world, rank=r, shuffle=shuffle, seed=5,
                                    drop_last=drop_last)
        s.set_epoch(epoch)
        shards.append(list(s))
        assert len(shards[-1]) == len(s)
    assert len({len(x) for x in shards}) == 1                # equal shard sizes
    flat = sorted(i for x in shards for i in x)
    if drop_last:
        assert len(flat) == (n // world) * world and len(set(flat)) == len(flat)
    else:
        assert sorted(set(flat)) == list(range(n))          # every index, padding repeats
        assert len(flat) == -(-n // world) * world if n else flat == []


def test_sampler_layout_is_torchs():
    """Rank r takes every world-th entry of the (padded) order: torch's layout, checked
    against torch's own sampler where torch is installed (no shuffle: same order)."""
    s = [list(dist.DistributedSampler(11, num_replicas=3, rank=r, shuffle=False))
         for r in range(3)]
    assert s == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 0]]
    d = [list(dist.DistributedSampler(11, num_replicas=3, rank=r, shuffle=False,
                                      drop_last=True)) for r in range(3)]
    assert d == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler  # noqa: PLC0415
    for drop in (False, True):
        for r in range(3):
            want = list(DistributedSampler(range(11), num_replicas=3, rank=r, shuffle=False,
                                           drop_last=drop))
            got = list(dist.DistributedSampler(11, num_replicas=3, rank=r, shuffle=False,
                                               drop_last=drop))
            assert got == want


def test_shard_of_each_global_batch_is_the_samplers_layout():
    """train-seg / train-det shard each global batch; taken b at a time, the sampler's
    shards give the same images at every step."""
    n, world, batch = 22, 2, 8
    b = batch // world
    order = dist.epoch_order(n, 7, 3)
    for r in range(world):
        s = dist.DistributedSampler(n, world, r, shuffle=True, seed=7, drop_last=True)
        s.set_epoch(3)
        mine = s.indices()
        for step in range(n // batch):
            from_batch = dist.shard(order[step * batch:(step + 1) * batch], r, world)
            np.testing.assert_array_equal(from_batch, mine[step * b:(step + 1) * b])


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="invalid rank 2"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an int >= 1"):
        dist.DistributedSampler(10, num_replicas=0, rank=0)


# ----------------------------------------------------------------------------- sync BN
def test_sync_batchnorm_in_one_process_is_batchnorm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 5))
    bn, sync = nn.BatchNorm2d(4, dtype=np.float64), nn.BatchNorm2d(4, dtype=np.float64)
    sync.load_state_dict(bn.state_dict())
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(sync)
    assert isinstance(sync, nn.SyncBatchNorm)
    outs = []
    for m in (bn, sync):
        t = sv.tensor(x, requires_grad=True)
        y = m(t)
        (y * sv.tensor(np.arange(y.numel()).reshape(y.shape) % 7)).sum().backward()
        outs.append((y.numpy(), t.grad.numpy(), m.weight.grad.numpy(),
                     m.running_var.numpy().copy()))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_function_itself_against_batchnorm():
    """SyncBatchNormFunction with no group (the all-reduces are the identity) against
    BatchNorm: forward, backward and the running statistics."""
    from scratchvision.distributed.sync_batchnorm import sync_batch_norm  # noqa: PLC0415
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4))
    g, b = rng.standard_normal(3), rng.standard_normal(3)
    results = []
    for f in ("sync", "plain"):
        xt = sv.tensor(x, requires_grad=True)
        gt, bt = sv.tensor(g, requires_grad=True), sv.tensor(b, requires_grad=True)
        rm, rv = np.zeros(3), np.ones(3)
        if f == "sync":
            y = sync_batch_norm(xt, rm, rv, gt, bt, 0.1, 1e-5, group=None)
        else:
            y = sv.functional.batch_norm(xt, rm, rv, gt, bt, training=True)
        (y ** 3).sum().backward()
        results.append([y.numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy(), rm, rv])
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_convert_keeps_the_parameters_and_nested_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                          nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    params = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    out = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert out is model
    assert isinstance(model[1], nn.SyncBatchNorm) and isinstance(model[2][1], nn.SyncBatchNorm)
    assert [id(p) for p in model.parameters()] == params
    assert list(model.state_dict()) == keys
    model.eval()                          # evaluation: the running statistics, as BatchNorm
    x = sv.randn(2, 4, 3, 3)
    model[1].running_mean.data[...] = 0.5
    np.testing.assert_allclose(model[1](x).numpy(), (x.numpy() - 0.5) / np.sqrt(1 + 1e-5),
                               rtol=1e-6)


# ----------------------------------------------------------------------------- hooks
def test_post_accumulate_grad_hook_sees_the_whole_gradient():
    w = sv.tensor(np.ones(3), requires_grad=True)
    v = sv.tensor(np.full(3, 2.0), requires_grad=True)
    unused = sv.tensor(np.ones(3), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(("w", t.grad.numpy().copy())))
    handle = v.register_post_accumulate_grad_hook(lambda t: seen.append(("v", None)))
    unused.register_post_accumulate_grad_hook(lambda t: seen.append(("unused", None)))
    ((w * v).sum() + 3 * (w * w).sum()).backward()        # w reached by two paths
    assert [s[0] for s in seen].count("w") == 1 and ("unused", None) not in seen
    np.testing.assert_allclose(dict((k, g) for k, g in seen if k == "w")["w"], 8.0)
    seen.clear()
    handle.remove()
    (w * v).sum().backward()
    assert [s[0] for s in seen] == ["w"]
    seen.clear()
    sv.autograd.grad((w * 2).sum(), [w])                  # no .grad touched: no hook
    assert seen == []
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_a_leaf_leaves_the_hook_registry_with_its_last_hook():
    """Backward does hook bookkeeping only while some leaf has a hook."""
    w = sv.tensor(np.ones(2), requires_grad=True)
    first = w.register_post_accumulate_grad_hook(lambda t: None)
    second = w.register_post_accumulate_grad_hook(lambda t: None)
    first.remove()
    assert id(w) in engine.leaves_with_hooks
    second.remove()
    assert id(w) not in engine.leaves_with_hooks


def test_queue_callback_runs_when_backward_ends():
    w = sv.tensor(np.ones(2), requires_grad=True)
    x = sv.tensor(np.ones(2), requires_grad=True)
    order = []

    def hook(t):
        order.append("hook")
        engine.queue_callback(lambda: order.append(("end", x.grad is not None)))
    w.register_post_accumulate_grad_hook(hook)
    ((w * 3).sum() + (x * w).sum()).backward()
    assert order == ["hook", ("end", True)]
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        engine.queue_callback(lambda: None)


# ----------------------------------------------------------------------------- comm
def test_a_world_of_one_without_init(monkeypatch):
    assert dist.rank() == 0 and dist.world_size() == 1 and not dist.is_active()
    a = np.arange(3.0)
    dist.all_reduce(a)
    dist.broadcast(a)
    dist.barrier()
    np.testing.assert_array_equal(a, [0, 1, 2])
    assert dist.all_gather_object("x") == ["x"]
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert not dist.launched_by_mpi()
    assert dist.init_if_launched() == (0, 1)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert dist.launched_by_mpi()
