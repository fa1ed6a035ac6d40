"""The conv, pool and interpolate families: one dispatch (``KernelFamily``), ``impl=`` on every
public op down to the Tensor API (forward and backward), one dtype rule, bounded outputs."""
from __future__ import annotations

import numpy as np
import pytest

import scratchvision as sv
import scratchvision.functional as F
from scratchvision.functional.fold import fold, unfold
from scratchvision.kernels import conv as KC
from scratchvision.kernels import interpolate as KI
from scratchvision.kernels import pool as KP
from scratchvision.kernels.conv import reference as conv_reference
from scratchvision.kernels.interpolate import reference as interp_reference
from scratchvision.kernels.pool import reference as pool_reference
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import LimitError, limits
from scratchvision.viz.conv_arithmetic import conv_arithmetic_maps
from tests.helpers import assert_close


# ------------------------------------------------------------------ one dispatch mechanism
def test_each_family_declares_a_kernel_family():
    assert isinstance(KC.VERSIONS, KernelFamily) and KC.VERSIONS.impls == (
        "reference", "cpu", "im2col", "direct", "winograd", "winograd_f4", "cuda",
        "cuda_atomic")
    for family in (KP, KI):
        assert isinstance(family.VERSIONS, KernelFamily)
        assert family.VERSIONS.impls == ("reference", "cpu", "cuda", "cuda_atomic")


def test_conv_cpu_impl_runs_the_chosen_algorithm(rng, monkeypatch):
    # impl="cpu" is the per-shape choice: a depthwise layer goes to the direct loops
    from scratchvision.kernels.conv import direct
    calls = []
    real = direct.conv2d_forward
    monkeypatch.setattr(direct, "conv2d_forward",
                        lambda *a: calls.append("direct") or real(*a))
    x, W = rng.standard_normal((1, 4, 6, 6)), rng.standard_normal((4, 1, 3, 3))
    y = KC.conv2d_forward(x, W, None, 1, 1, 1, 4, impl="cpu")
    assert calls == ["direct"]
    assert_close(y, KC.conv2d_forward(x, W, None, 1, 1, 1, 4, impl="reference"))


def test_winograd_outside_its_domain_is_a_clear_error(rng):
    x, W = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"winograd .* 3x3 kernel and stride 1; "
                                         r"got kernel \(3, 3\), stride \(2, 2\)"):
        KC.conv2d_forward(x, W, None, 2, 1, 1, 1, impl="winograd")


# --------------------------------------------------- impl= on every public op, both passes
def _spy(monkeypatch, module, names):
    """Record the calls to ``module.<name>`` for each name (still running them)."""
    calls = []
    for name in names:
        real = getattr(module, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)
    return calls


def _values_and_grads(op, arrays, **kw):
    tensors = [sv.tensor(a, requires_grad=True) for a in arrays]
    y = op(*tensors, **kw)
    y = y[0] if isinstance(y, tuple) else y
    gy = np.linspace(-1.0, 1.0, y.numel()).reshape(y.shape)
    (y * sv.tensor(gy)).sum().backward()
    return y.numpy(), [t.grad for t in tensors]


def _pool_indices(x):
    return F.max_pool2d(sv.tensor(x), 2, return_indices=True)[1]


OPS = {   # name: (op on tensors, input shapes, kernel module, forward and backward names)
    "conv2d": (lambda x, w, **kw: F.conv2d(x, w, padding=1, stride=2, **kw),
               [(1, 2, 5, 6), (3, 2, 3, 3)],
               conv_reference, ["conv2d_forward", "conv2d_backward_input",
                                "conv2d_backward_weight"]),
    "conv_transpose2d": (lambda x, w, **kw: F.conv_transpose2d(x, w, stride=2, padding=1, **kw),
                         [(1, 2, 3, 4), (2, 3, 3, 3)], conv_reference,
                         ["conv2d_backward_input", "conv2d_forward",
                          "conv2d_backward_weight"]),
    "max_pool2d": (lambda x, **kw: F.max_pool2d(x, 3, 2, 1, **kw), [(1, 2, 7, 6)],
                   pool_reference, ["max_pool2d_forward", "max_pool2d_backward"]),
    "avg_pool2d": (lambda x, **kw: F.avg_pool2d(x, 3, 2, 1, **kw), [(1, 2, 7, 6)],
                   pool_reference, ["avg_pool2d_forward", "avg_pool2d_backward"]),
    "adaptive_avg_pool2d": (lambda x, **kw: F.adaptive_avg_pool2d(x, (3, 4), **kw),
                            [(1, 2, 7, 6)], pool_reference,
                            ["adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"]),
    "max_unpool2d": (lambda x, **kw: F.max_unpool2d(
        x, _pool_indices(np.arange(2 * 6 * 6.0).reshape(1, 2, 6, 6)), 2, **kw),
        [(1, 2, 3, 3)], pool_reference, ["max_unpool2d_forward", "max_unpool2d_backward"]),
    "interpolate bilinear": (lambda x, **kw: F.interpolate(x, size=(7, 9), mode="bilinear",
                                                           **kw),
                             [(1, 2, 4, 5)], interp_reference,
                             ["bilinear_forward", "bilinear_backward"]),
    "interpolate nearest": (lambda x, **kw: F.interpolate(x, scale_factor=1.5, **kw),
                            [(1, 2, 4, 5)], interp_reference,
                            ["nearest_forward", "nearest_backward"]),
}


@pytest.mark.parametrize("name", list(OPS))
def test_impl_reference_matches_the_default_forward_and_backward(name, rng, monkeypatch):
    op, shapes, module, kernel_names = OPS[name]
    arrays = [rng.standard_normal(s) for s in shapes]
    y_default, g_default = _values_and_grads(op, arrays)
    calls = _spy(monkeypatch, module, kernel_names)
    y_ref, g_ref = _values_and_grads(op, arrays, impl="reference")
    assert sorted(set(calls)) == sorted(kernel_names)     # forward and backward both ran it
    assert_close(y_ref, y_default)
    for g, g0 in zip(g_ref, g_default):
        assert_close(g, g0)


@pytest.mark.parametrize("name", list(OPS))
def test_impl_wrong_name_is_a_value_error_naming_the_allowed_names(name, rng):
    op, shapes, _, _ = OPS[name]
    arrays = [sv.tensor(rng.standard_normal(s)) for s in shapes]
    allowed = ("'reference', 'cpu', 'im2col', 'direct', 'winograd', 'winograd_f4', 'cuda', "
               "'cuda_atomic'"
               if name.startswith("conv") else "'reference', 'cpu', 'cuda', 'cuda_atomic'")
    with pytest.raises(ValueError, match=r"impl must be one of \(" + allowed + r"\).*'fast'"):
        op(*arrays, impl="fast")


def test_wrong_impl_is_refused_even_for_empty_input():
    x, W = np.zeros((0, 2, 5, 5)), np.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match="impl must be one of"):
        KC.conv2d_forward(x, W, None, 1, 0, 1, 1, impl="fast")


# ------------------------------------------------------------------- one rule for dtypes
BAD_DTYPES = (np.float16, np.bool_, np.int32)


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_floating_kernels_refuse_non_float_arrays(dtype):
    x = np.ones((1, 2, 4, 4), dtype)
    pattern = rf"input must be float32 or float64, got {np.dtype(dtype).name}"
    calls = [lambda: KC.conv2d_forward(x, np.ones((2, 2, 3, 3), dtype), None, 1, 0, 1, 1),
             lambda: KC.conv_transpose2d_forward(x, np.ones((2, 2, 3, 3), dtype), None, 1, 0,
                                                 0, 1, 1),
             lambda: KP.max_pool2d_forward(x, 2),
             lambda: KP.avg_pool2d_forward(x, 2),
             lambda: KP.adaptive_avg_pool2d_forward(x, 2),
             lambda: KP.max_unpool2d_forward(x, np.zeros(x.shape, np.int64), (8, 8)),
             lambda: KI.bilinear_forward(x, (8, 8)),
             lambda: KI.nearest_forward(x, (8, 8)),
             lambda: unfold(sv.tensor(x), 2),
             lambda: F.adaptive_max_pool2d(sv.tensor(x), 2)]
    for call in calls:
        with pytest.raises(TypeError, match=pattern):
            call()


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_floating_backward_kernels_refuse_non_float_gradients(dtype):
    gy = np.ones((1, 2, 2, 2), dtype)
    pattern = rf"grad_output must be float32 or float64, got {np.dtype(dtype).name}"
    calls = [lambda: KC.conv2d_backward_input(gy, np.ones((2, 2, 3, 3)), (1, 2, 4, 4), 1, 0,
                                              1, 1),
             lambda: KP.avg_pool2d_backward(gy, (1, 2, 4, 4), 2),
             lambda: KP.adaptive_avg_pool2d_backward(gy, (1, 2, 4, 4)),
             lambda: KI.bilinear_backward(gy, (1, 2, 4, 4)),
             lambda: KI.nearest_backward(gy, (1, 2, 4, 4))]
    for call in calls:
        with pytest.raises(TypeError, match=pattern):
            call()


def test_fold_refuses_non_float_columns():
    with pytest.raises(TypeError, match="fold: input must be float32 or float64, got int64"):
        fold(sv.tensor(np.ones((1, 8, 6), np.int64)), (3, 4), 2)


def test_sizes_refuse_bools_and_floats_everywhere():
    with pytest.raises(TypeError, match="in_size must be an int or a pair of ints"):
        conv_arithmetic_maps("conv", (True, 5), 3)
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints"):
        F.conv2d(sv.tensor(np.ones((1, 1, 5, 5))), sv.tensor(np.ones((1, 1, 3, 3))),
                 stride=(1.5, 1))
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints"):
        unfold(sv.tensor(np.ones((1, 1, 5, 5))), 2.0)
    with pytest.raises(TypeError, match="output_size must be an int"):
        F.max_unpool2d(sv.tensor(np.ones((1, 1, 2, 2))), np.zeros((1, 1, 2, 2), np.int64), 2,
                       output_size=(4.0, 4))
    with pytest.raises(TypeError, match="groups must be an int"):
        KC.conv2d_forward(np.ones((1, 2, 5, 5)), np.ones((2, 1, 3, 3)), None, 1, 0, 1, 2.0)


# ----------------------------------------------------------------------- bounded outputs
def test_interpolate_huge_scale_factor_is_refused_before_allocating():
    x = sv.tensor(np.zeros((1, 1, 5, 5), np.float32))
    for mode in ("nearest", "bilinear"):
        # 5e6 x 5e6 outputs: 25e12 elements (100 TB of float32), refused before np.empty
        with pytest.raises(LimitError,
                           match=r"interpolate's output .* 25,000,000,000,000 array elements"):
            F.interpolate(x, scale_factor=1e6, mode=mode)


def test_interpolate_size_is_bounded():
    x = np.zeros((2, 3, 5, 5), np.float32)
    with limits(max_elements=10_000):
        with pytest.raises(LimitError, match="interpolate's output"):
            F.interpolate(sv.tensor(x), size=(60, 60), mode="bilinear")
        with pytest.raises(LimitError, match="interpolate's output"):
            KI.nearest_forward(x, (60, 60), impl="reference")
        assert F.interpolate(sv.tensor(x), size=(40, 40)).shape == (2, 3, 40, 40)


def test_pool_outputs_sized_by_an_argument_are_bounded():
    x = np.zeros((1, 2, 4, 4), np.float32)
    with limits(max_elements=10_000):
        with pytest.raises(LimitError, match="adaptive_avg_pool2d's output"):
            F.adaptive_avg_pool2d(sv.tensor(x), (100, 100))
        with pytest.raises(LimitError, match="adaptive_max_pool2d's output"):
            F.adaptive_max_pool2d(sv.tensor(x), (100, 100))
        with pytest.raises(LimitError, match="max_unpool2d's output"):
            # default output (2-1)*100 + 100 = 200 per axis: 2 * 200 * 200 elements
            F.max_unpool2d(sv.tensor(np.zeros((1, 2, 2, 2), np.float32)),
                           np.zeros((1, 2, 2, 2), np.int64), 100)
        with pytest.raises(LimitError, match="max_unpool2d's output"):
            KP.max_unpool2d_forward(x, np.zeros(x.shape, np.int64), (100, 100))


def test_conv_outputs_and_workspace_are_bounded():
    x, W = np.zeros((1, 16, 20, 20)), np.zeros((16, 1, 3, 3))
    with limits(max_elements=10_000):
        with pytest.raises(LimitError, match="conv_transpose2d's output"):
            KC.conv_transpose2d_forward(x, W, None, 30, 0, 0, 1, 1)       # 1x1x598x598 * 16
        with pytest.raises(LimitError, match="conv2d's output"):
            KC.conv2d_forward(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), None, 1, 100, 1,
                              1)
        # the output (1, 1, 20, 20) is small, one image's column matrix is 144 x 400
        with pytest.raises(LimitError, match="im2col column matrix"):
            KC.conv2d_forward(x, np.zeros((1, 16, 3, 3)), None, 1, 1, 1, 1, impl="im2col")
        with pytest.raises(LimitError, match="unfold's output"):
            unfold(sv.tensor(x), 3, padding=1)
