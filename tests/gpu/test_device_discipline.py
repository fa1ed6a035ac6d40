"""Device discipline on a GPU (real, or the CuPy stand-in under the CUDA simulator, see
tests/fake_cupy.py): arrays on two devices are refused with errors naming the arguments,
the kernel launcher refuses host arrays beside device arrays and reads strided views
right, and ``use_deterministic_algorithms`` picks the gather or the atomic backward."""
import importlib

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import ops
from scratchvision.backend import cuda_simulator_enabled
from scratchvision.kernels.cuda_support import launch
from tests.helpers import assert_close

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp():
    import cupy  # noqa: PLC0415  (the real one, or the stand-in tests/conftest.py installed)
    return cupy


@pytest.fixture
def deterministic():
    yield
    sv.use_deterministic_algorithms(True)


def test_ops_refuse_arrays_on_two_devices(cp):
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((1, 2, 6, 6)))
    rois = np.array([[0, 0.5, 0.5, 4.0, 4.0]])
    with pytest.raises(ValueError, match=r"rois on 'cpu'"):
        ops.roi_align(x, rois, 2)
    with pytest.raises(ValueError, match=r"rois on 'cpu'"):
        ops.roi_pool(x, rois, 2)
    boxes = rng.random((5, 4)) + np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"scores on 'cpu'"):
        ops.nms(cp.asarray(boxes), boxes[:, 0], 0.5)
    with pytest.raises(ValueError, match=r"boxes2 on 'cpu'"):
        ops.box_iou(cp.asarray(boxes), boxes)
    with pytest.raises(ValueError, match="device"):
        F.conv2d(sv.tensor(x), rng.standard_normal((3, 2, 3, 3)))
    y, idx = F.max_pool2d(sv.tensor(x), 2, return_indices=True)
    with pytest.raises(ValueError, match=r"indices on 'cpu'"):
        F.max_unpool2d(y, idx.get() if hasattr(idx, "get") else idx.numpy(), 2)
    with pytest.raises(ValueError, match="one device"):
        sv.tensor(x) + sv.tensor(x.get())


def test_launch_refuses_host_beside_device(cp):
    from scratchvision.kernels.boxes import cuda as boxes_cuda  # noqa: PLC0415
    b = cp.asarray(np.array([[0.0, 0.0, 2.0, 2.0]]))
    with pytest.raises(TypeError, match="argument 1 is a host"):
        launch(boxes_cuda._area_kernel, 1, b, np.zeros(1))


def test_launch_reads_and_writes_strided_views(cp):
    """Negative strides and transposes reach the kernel as the views they are."""
    from scratchvision.kernels.boxes import cuda as boxes_cuda  # noqa: PLC0415
    rng = np.random.default_rng(1)
    host = np.concatenate([rng.random((7, 2)), rng.random((7, 2)) + 1], 1)
    b = cp.asarray(host[::-1])                       # contiguous copy of reversed rows
    view = b[::-2]                                    # rows 6, 4, 2, 0 of b: negative stride
    out = cp.zeros(8)
    launch(boxes_cuda._area_kernel, 4, view, out[::2])
    expect = (host[::-1][::-2, 2] - host[::-1][::-2, 0]) * (host[::-1][::-2, 3]
                                                             - host[::-1][::-2, 1])
    assert_close(out.get()[::2], expect)
    assert not out.get()[1::2].any()                 # the gaps of the strided output


def _versions(family: str):
    return importlib.import_module(f"scratchvision.kernels.{family}").VERSIONS


@pytest.mark.parametrize("mode", [True, False])
def test_deterministic_switch_picks_the_backward(cp, mode, deterministic):
    sv.use_deterministic_algorithms(mode)
    x = cp.zeros((1, 1, 2, 2))
    for family in ("conv", "pool", "interpolate", "roi_align", "roi_pool"):
        module = _versions(family).module(None, x)
        assert (type(module).__name__ == "module") == mode, family
    for family in ("nms", "boxes"):               # no scattering backward: always 'cuda'
        module = _versions(family).module(None, x)
        assert module.__name__ == f"scratchvision.kernels.{family}.cuda"
    # gradients agree either way
    rng = np.random.default_rng(2)
    a = sv.tensor(rng.standard_normal((2, 3, 7, 6)), device="cuda", requires_grad=True)
    w = sv.tensor(rng.standard_normal((4, 3, 3, 3)), device="cuda", requires_grad=True)
    y = F.interpolate(F.max_pool2d(F.conv2d(a, w, padding=1), 3, 2, 1), scale_factor=2,
                      mode="bilinear")
    y.sum().backward()
    a_cpu = sv.tensor(a.data.get(), requires_grad=True)
    w_cpu = sv.tensor(w.data.get(), requires_grad=True)
    y_cpu = F.interpolate(F.max_pool2d(F.conv2d(a_cpu, w_cpu, padding=1), 3, 2, 1),
                          scale_factor=2, mode="bilinear")
    y_cpu.sum().backward()
    assert_close(a.grad.numpy(), a_cpu.grad)
    assert_close(w.grad.numpy(), w_cpu.grad)
    with pytest.raises(TypeError, match="bool"):
        sv.use_deterministic_algorithms(1)


@pytest.mark.skipif(cuda_simulator_enabled(), reason="the simulator launches in Python")
def test_launch_through_cupy_matches_numbas_launch(cp, monkeypatch):
    """Kernels compiled by Numba and launched by CuPy (cuda_support) get Numba's argument
    layout right: strided and negative-stride views, int, float and bool scalars."""
    from scratchvision.kernels import cuda_support  # noqa: PLC0415
    from scratchvision.kernels.conv import cuda as conv_cuda  # noqa: PLC0415
    from scratchvision.kernels.roi_align import cuda as roi_cuda  # noqa: PLC0415
    rng = np.random.default_rng(7)
    x = cp.asarray(rng.standard_normal((2, 3, 18, 7)).astype(np.float32))[:, :, ::-2]
    W = cp.asarray(rng.standard_normal((4, 3, 3, 2)).astype(np.float32))
    feat = cp.asarray(rng.standard_normal((2, 3, 9, 8)))
    rois = cp.asarray(np.array([[0, 0.5, 1.0, 6.0, 7.5], [1, 2.0, 0.0, 3.0, 9.0]]))

    def run():
        return (conv_cuda.conv2d_forward(x, W, None, (2, 1), (1, 0), (1, 2), 1),
                roi_cuda.roi_align_forward(feat, rois, 3, 2, 0.75, -1, True),
                roi_cuda.roi_align_forward(feat, rois, 2, 2, 1.25, 2, False))
    fast = run()
    assert cuda_support.launched_through_cupy(conv_cuda._im2col_kernel)
    assert cuda_support.launched_through_cupy(roi_cuda._forward_kernel)
    monkeypatch.setattr(cuda_support, "_FAST_LAUNCH", False)
    for a, b in zip(fast, run()):
        np.testing.assert_array_equal(cp.asnumpy(a), cp.asnumpy(b))
