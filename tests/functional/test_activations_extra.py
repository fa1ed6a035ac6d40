"""gelu, silu (and their modules), relu(inplace=...), one_hot: hand-worked values, torch
cross-checks, errors."""
import math

import numpy as np
import pytest

import scratchvision as sv
import scratchvision.functional as F
from scratchvision import nn


# ------------------------------------------------------------------ gelu / silu
def test_gelu_by_hand():
    x = sv.tensor(np.array([0.0, 1.0, -1.0, 2.0]))
    phi = [0.5, 0.8413447460685429, 0.15865525393145707, 0.9772498680518208]  # Phi(x)
    np.testing.assert_allclose(F.gelu(x).numpy(), [0.0, phi[1], -phi[2], 2 * phi[3]],
                               rtol=1e-14)
    # tanh form at 1: 0.5 (1 + tanh(sqrt(2/pi) (1 + 0.044715)))
    t1 = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
    assert F.gelu(x, approximate="tanh").numpy()[1] == pytest.approx(t1, rel=1e-14)
    # d/dx gelu(x) = Phi(x) + x phi(x): at 0 it is 1/2, at 1 it is Phi(1) + exp(-1/2)/sqrt(2pi)
    xg = sv.tensor(np.array([0.0, 1.0]), requires_grad=True)
    F.gelu(xg).sum().backward()
    np.testing.assert_allclose(np.asarray(xg.grad),
                               [0.5, phi[1] + math.exp(-0.5) / math.sqrt(2 * math.pi)],
                               rtol=1e-14)


def test_silu_by_hand():
    x = sv.tensor(np.array([0.0, 1.0, -1.0]), requires_grad=True)
    s1 = 1 / (1 + math.exp(-1))
    np.testing.assert_allclose(F.silu(x).numpy(), [0.0, s1, -(1 - s1)], rtol=1e-14)
    F.silu(x).sum().backward()  # s (1 + x (1 - s)): 1/2 at 0
    np.testing.assert_allclose(np.asarray(x.grad),
                               [0.5, s1 * (1 + (1 - s1)), (1 - s1) * (1 - s1)], rtol=1e-14)
    big = F.silu(sv.tensor(np.array([-1000.0, 1000.0]))).numpy()   # no overflow
    assert np.array_equal(big, [-0.0, 1000.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kw", [("gelu", {}), ("gelu", {"approximate": "tanh"}),
                                      ("silu", {})])
def test_gelu_silu_match_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs = (rng.standard_normal((4, 50)) * 4).astype(dtype)
    xs[0, :3] = [0.0, 30.0, -30.0]
    gy = rng.standard_normal(xs.shape).astype(dtype)
    x = sv.tensor(xs, requires_grad=True)
    y = getattr(F, name)(x, **kw)
    (y * sv.tensor(gy)).sum().backward()
    tx = torch.tensor(xs, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, **kw)
    (ty * torch.tensor(gy)).sum().backward()
    # float32: the tanh form's 1 - t^2 cancels in either library's rounding (both are
    # ~1e-6 from the float64 value in the far negative tail)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else \
        {"rtol": 1e-12, "atol": 1e-14}
    assert y.dtype == dtype and np.asarray(x.grad).dtype == dtype
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), **tol)


def test_gelu_silu_modules():
    torch = pytest.importorskip("torch")
    x = sv.randn(3, 4)
    assert np.array_equal(nn.GELU()(x).numpy(), F.gelu(x).numpy())
    assert np.array_equal(nn.GELU("tanh")(x).numpy(), F.gelu(x, approximate="tanh").numpy())
    assert np.array_equal(nn.SiLU()(x).numpy(), F.silu(x).numpy())
    for ours, theirs in ((nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
                         (nn.SiLU(), torch.nn.SiLU()), (nn.SiLU(True), torch.nn.SiLU(True)),
                         (nn.ReLU(), torch.nn.ReLU()), (nn.ReLU(True), torch.nn.ReLU(True))):
        assert repr(ours) == repr(theirs)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="sigmoid")
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(TypeError, match="floating-point"):
        F.gelu(sv.tensor(np.array([1, 2])))
    with pytest.raises(TypeError, match="floating-point"):
        F.silu(sv.tensor(np.array([1, 2])))


# ------------------------------------------------------------------ relu(inplace=...)
def test_relu_inplace_without_grad_writes_into_the_input():
    data = np.array([-1.0, 0.5, -0.25, 2.0])
    x = sv.tensor(data.copy())
    y = F.relu(x, inplace=True)
    assert y is x
    assert np.array_equal(x.numpy(), [0.0, 0.5, 0.0, 2.0])
    x = sv.tensor(data.copy())
    y = nn.ReLU(inplace=True)(x)
    assert y is x and np.array_equal(x.numpy(), [0.0, 0.5, 0.0, 2.0])
    z = sv.tensor(data.copy())
    assert F.relu(z) is not z and np.array_equal(z.numpy(), data)   # inplace=False
    s = sv.tensor(data.copy())
    assert F.silu(s, inplace=True) is s
    np.testing.assert_allclose(s.numpy(), data / (1 + np.exp(-data)))


def test_relu_inplace_with_grad_stays_correct():
    x = sv.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    h = x * 2.0                                   # a non-leaf inside the graph
    y = F.relu(h, inplace=True)
    (y * sv.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(y.numpy(), [0.0, 1.0, 4.0])
    np.testing.assert_array_equal(np.asarray(x.grad), [0.0, 4.0, 6.0])
    assert y is h and h._version == 1               # written into h, as torch
    with pytest.raises(RuntimeError, match="leaf Variable"):
        nn.ReLU(inplace=True)(x)                    # a leaf that requires grad: refused


# ------------------------------------------------------------------ one_hot
def test_one_hot_by_hand():
    out = F.one_hot(sv.tensor(np.array([0, 2, 1, 2])))
    assert out.dtype == np.int64 and out.shape == (4, 3)       # classes inferred: max + 1
    assert out.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    out = F.one_hot(np.array([[1], [0]]), num_classes=4)
    assert out.shape == (2, 1, 4) and out.tolist() == [[[0, 1, 0, 0]], [[1, 0, 0, 0]]]
    assert F.one_hot(np.zeros(0, np.int64), 3).shape == (0, 3)
    assert F.one_hot(sv.tensor(np.array(2)), 3).tolist() == [0, 0, 1]   # 0-d index


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    idx = np.random.default_rng(1).integers(0, 5, (3, 4))
    for n in (-1, 5, 7):
        np.testing.assert_array_equal(F.one_hot(idx, n).numpy(),
                                      torch.nn.functional.one_hot(torch.tensor(idx), n).numpy())


def test_one_hot_errors():
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(np.array([0, -1]), 3)
    with pytest.raises(ValueError, match="smaller than num_classes"):
        F.one_hot(np.array([0, 3]), 3)
    with pytest.raises(TypeError, match="index tensor"):
        F.one_hot(sv.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="empty"):
        F.one_hot(np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="positive or -1"):
        F.one_hot(np.array([0]), -3)
