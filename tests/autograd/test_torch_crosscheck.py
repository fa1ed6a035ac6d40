"""Optional cross-checks against PyTorch CPU: same values and gradients for the
functional ops and the same trajectories for the optimisers."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.peers


def _both(fn_sv, fn_torch, *arrays, int_args=()):
    xs = [sv.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_sv = fn_sv(*xs)
    out_t = fn_torch(*ts)
    np.testing.assert_allclose(out_sv.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(5).standard_normal(out_t.shape)
    out_sv.backward(g)
    out_t.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "sum"}, {"reduction": "none"},
                                    {"weight": True}, {"ignore_index": 1},
                                    {"label_smoothing": 0.1}, {"weight": True,
                                                               "label_smoothing": 0.2}])
def test_cross_entropy_matches_torch(rng, kwargs):
    x = rng.standard_normal((3, 4, 5, 2))
    t = rng.integers(0, 4, (3, 5, 2))
    kw_sv, kw_t = dict(kwargs), dict(kwargs)
    if kwargs.get("weight"):
        w = rng.random(4) + 0.5
        kw_sv["weight"], kw_t["weight"] = w, torch.tensor(w)
    _both(lambda a: F.cross_entropy(a, t, **kw_sv),
          lambda a: torch.nn.functional.cross_entropy(a, torch.tensor(t), **kw_t), x)


def test_losses_match_torch(rng):
    x, y = rng.standard_normal((4, 3)) * 2, rng.random((4, 3))
    tf = torch.nn.functional
    pw = rng.random(3) + 0.5
    _both(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw),
          lambda a, b: tf.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor(pw)),
          x, y)
    _both(lambda a, b: F.smooth_l1_loss(a, b, beta=0.7), lambda a, b: tf.smooth_l1_loss(
        a, b, beta=0.7), x, y)
    _both(F.mse_loss, tf.mse_loss, x, y)
    _both(F.l1_loss, tf.l1_loss, x, y)
    _both(lambda a: F.log_softmax(a, 1), lambda a: tf.log_softmax(a, 1), x)
    _both(lambda a: F.softmax(a, 0), lambda a: tf.softmax(a, 0), x)


def test_batch_norm_matches_torch(rng):
    x = rng.standard_normal((4, 3, 5, 5))
    g, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    _both(lambda a, w, c: F.batch_norm(a, rm, rv, w, c, training=True),
          lambda a, w, c: torch.nn.functional.batch_norm(a, trm, trv, w, c, training=True),
          x, g, b)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=1e-2)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1))])
def test_optimizers_match_torch(rng, name, kwargs):
    w0 = rng.standard_normal(5)
    p = nn.Parameter(w0.copy())
    tp = torch.tensor(w0.copy(), requires_grad=True)
    opt = getattr(nn.optim, name)([p], **kwargs)
    topt = getattr(torch.optim, name)([tp], **kwargs)
    for step in range(5):
        g = np.cos(w0 * (step + 1))
        p.grad = g.copy()
        tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)
