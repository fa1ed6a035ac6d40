"""Each optimiser against a hand-computed step; schedulers' closed forms; clipping."""
import math

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def test_sgd_momentum_nesterov_weight_decay_by_hand():
    p = _param([1.0, -2.0])
    opt = nn.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    p.grad = np.array([0.5, 0.5])
    opt.step()
    # g = grad + wd*p = [0.51, 0.48]; buf = g; nesterov: g + 0.9*buf = 1.9*g
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 1.9 * 0.51, -2.0 - 0.1 * 1.9 * 0.48])
    p.grad = np.array([0.5, 0.5])
    g = np.array([0.5, 0.5]) + 0.01 * p.data
    buf = 0.9 * np.array([0.51, 0.48]) + g
    expect = p.data - 0.1 * (g + 0.9 * buf)
    opt.step()
    np.testing.assert_allclose(p.data, expect)


def test_adam_and_adamw_first_steps_by_hand():
    for cls, wd in ((nn.optim.Adam, 0.1), (nn.optim.AdamW, 0.1)):
        p = _param([1.0])
        opt = cls([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)
        p.grad = np.array([2.0])
        opt.step()
        if cls is nn.optim.Adam:
            g = 2.0 + wd * 1.0
            m, v = 0.1 * g, 0.01 * g * g
            expect = 1.0 - 0.01 * (m / 0.1) / (math.sqrt(v / 0.01) + 1e-8)
        else:
            g = 2.0
            m, v = 0.1 * g, 0.01 * g * g
            expect = 1.0 * (1 - 0.01 * wd) - 0.01 * (m / 0.1) / (math.sqrt(v / 0.01) + 1e-8)
        np.testing.assert_allclose(p.data, [expect], rtol=1e-12)


def _adam_one_by_one(params, grads, state, lr, betas, eps, wd, decoupled, amsgrad):
    """Adam as a loop over parameters, each updated on its own (the textbook form)."""
    b1, b2 = betas
    for p, g in zip(params, grads):
        if g is None:
            continue
        s = state.setdefault(id(p), {"step": 0, "m": np.zeros_like(p), "v": np.zeros_like(p),
                                     "vmax": np.zeros_like(p)})
        s["step"] += 1
        t = s["step"]
        if wd and decoupled:
            p *= 1 - lr * wd
        elif wd:
            g = g + wd * p
        s["m"] *= b1
        s["m"] += (1 - b1) * g
        s["v"] *= b2
        s["v"] += (1 - b2) * g * g
        v = s["v"]
        if amsgrad:
            np.maximum(s["vmax"], v, out=s["vmax"])
            v = s["vmax"]
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps
        p -= (lr / (1 - b1 ** t)) * s["m"] / denom


@pytest.mark.parametrize("cls, wd, amsgrad", [(nn.optim.Adam, 0.0, False),
                                              (nn.optim.Adam, 0.05, True),
                                              (nn.optim.AdamW, 0.1, False)])
def test_adam_flat_buckets_equal_the_one_by_one_update(cls, wd, amsgrad):
    """The bucketed (flat) update gives the same bits as a per-parameter loop, with
    float32 and float64 parameters, parameters that miss a gradient now and then (their
    step counts drift apart, so buckets split), and a state_dict round trip midway."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (5,), (2, 1, 3), (1,)]
    dtypes = [np.float64, np.float32, np.float64, np.float32]
    init = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    params = [nn.Parameter(a.copy()) for a in init]
    ref = [a.copy() for a in init]
    kw = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd, amsgrad=amsgrad)
    opt, ref_state = cls(params, **kw), {}
    for step in range(7):
        grads = [None if (step + i) % 4 == 3 else rng.standard_normal(a.shape).astype(a.dtype)
                 for i, a in enumerate(ref)]
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.copy()
        opt.step()
        _adam_one_by_one(ref, grads, ref_state, kw["lr"], kw["betas"], kw["eps"], wd,
                         cls is nn.optim.AdamW, amsgrad)
        for p, r in zip(params, ref):
            assert p.data.dtype == r.dtype
            np.testing.assert_array_equal(p.data, r)
        if step == 3:                     # resume: the flat arrays are rebuilt from state
            state = opt.state_dict()
            opt = cls(params, **kw)
            opt.load_state_dict(state)


def test_optimizer_state_dict_resumes_exactly():
    def run(split):
        p = _param([1.0, 2.0])
        opt = nn.optim.Adam([p], lr=0.1)
        for i in range(6):
            if i == split:
                state, data = opt.state_dict(), p.data.copy()
                p = _param(data)
                opt = nn.optim.Adam([p], lr=0.1)
                opt.load_state_dict(state)
            p.grad = np.sin(p.data * (i + 1))
            opt.step()
        return p.data
    assert np.array_equal(run(None), run(3))


def test_schedulers_closed_form():
    p = _param([0.0])
    opt = nn.optim.SGD([p], lr=1.0)
    s = nn.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt = nn.optim.SGD([p], lr=1.0)
    s = nn.optim.lr_scheduler.MultiStepLR(opt, [1, 3], gamma=0.1)
    lrs = []
    for _ in range(4):
        lrs.append(round(opt.param_groups[0]["lr"], 12))
        s.step()
    assert lrs == [1.0, 0.1, 0.1, 0.01]
    opt = nn.optim.SGD([p], lr=1.0)
    s = nn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    got = []
    for _ in range(5):
        got.append(opt.param_groups[0]["lr"])
        s.step()
    np.testing.assert_allclose(got, [(1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)])
    opt = nn.optim.SGD([p], lr=1.0)
    warm = nn.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
    cos = nn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    seq = nn.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[3])
    got = []
    for _ in range(6):
        got.append(round(opt.param_groups[0]["lr"], 12))
        seq.step()
    assert got == [0.25, 0.5, 0.75, 1.0, 0.5, 0.0]


def test_clip_grad_norm():
    a, b = _param([0.0, 0.0]), _param([0.0])
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    total = nn.clip_grad_norm_([a, b], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0, 0.8], rtol=1e-5)


def test_optimizer_rejects_bad_args():
    with pytest.raises(ValueError, match="empty"):
        nn.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        nn.optim.SGD([_param([1.0])], lr=0.1, nesterov=True)


def test_mlp_learns_two_spirals():
    """An MLP reaches >= 95% on two interleaved spirals within a few seconds."""
    rng = np.random.default_rng(0)
    n = 200
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 10
    x = np.concatenate([pts, -pts]).astype(np.float32) + rng.normal(0, 0.02, (2 * n, 2)).astype(
        np.float32)
    y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.int64)
    sv.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 2))
    opt = nn.optim.Adam(model.parameters(), lr=0.01)
    xs = sv.tensor(x)
    for _ in range(600):
        loss = sv.functional.cross_entropy(model(xs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with sv.no_grad():
        acc = (model(xs).argmax(dim=1).numpy() == y).mean()
    assert acc >= 0.95, f"two-spirals accuracy {acc:.3f}"
