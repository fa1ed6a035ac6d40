"""Module registration, state_dict round trips, save/load, layers' shapes and errors."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(5, 2), nn.Linear(5, 1)])
        self.scale = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        h = self.body(x)
        return self.heads[0](h) * self.scale, self.heads[1](h)


def test_parameters_children_modes():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias",
                     "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
    assert net.num_parameters() == 1 + 15 + 5 + 10 + 10 + 2 + 5 + 1
    assert len(list(net.children())) == 2
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert net.body[1].training
    assert "BatchNorm1d(5" in repr(net) and "(heads): ModuleList" in repr(net)


def test_state_dict_round_trip_bit_exact(tmp_path):
    sv.manual_seed(0)
    a = Net()
    a(sv.randn(8, 3))  # updates running stats
    path = tmp_path / "w.npz"
    nn.save(a, path)
    sv.manual_seed(1)
    b = Net()
    b.load_state_dict(nn.load(path))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and va.dtype == vb.dtype and np.array_equal(va.numpy(), vb.numpy())
    x = sv.randn(4, 3)
    a.eval(), b.eval()
    assert np.array_equal(a(x)[0].numpy(), b(x)[0].numpy())


def test_load_state_dict_refuses_mismatch():
    net = Net()
    state = net.state_dict()
    bad = dict(state)
    bad["heads.0.weight"] = np.zeros((3, 5), np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for heads.0.weight.*\(3, 5\).*"
                                           r"\(2, 5\)"):
        net.load_state_dict(bad)
    missing = dict(state)
    del missing["scale"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "scale"'):
        net.load_state_dict(missing)
    assert net.load_state_dict(missing, strict=False) == (["scale"], [])


def test_zero_grad_and_requires_grad():
    net = Net()
    out = net(sv.randn(4, 3))
    (out[0].sum() + out[1].sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_batchnorm_running_stats_and_eval():
    bn = nn.BatchNorm2d(3, momentum=0.5)
    x = sv.tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32) + 2)
    y = bn(x)
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-5)
    mean = x.numpy().mean(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * mean, rtol=1e-5)
    var = x.numpy().var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * var, rtol=1e-5)
    bn.eval()
    y = bn(x).numpy()
    expect = (x.numpy() - bn.running_mean.numpy()[:, None, None]) / np.sqrt(
        bn.running_var.numpy()[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        bn(sv.randn(2, 4, 2, 2))


def test_dropout_train_eval():
    d = nn.Dropout(0.5)
    x = sv.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    d.eval()
    assert np.array_equal(d(x).numpy(), x.numpy())


def test_init_statistics():
    sv.manual_seed(0)
    w = nn.Parameter(np.empty((256, 128, 3, 3), np.float32))
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / (128 * 9))) < 0.01 * np.sqrt(2 / (128 * 9)) * 5
    nn.init.xavier_uniform_(w)
    bound = np.sqrt(6 / (128 * 9 + 256 * 9))
    assert np.abs(w.numpy()).max() <= bound
    nn.init.zeros_(w)
    assert not w.numpy().any()
