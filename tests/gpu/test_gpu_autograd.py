"""On a GPU (skipped without one; in CI on the CuPy stand-in under the CUDA simulator,
tests/fake_cupy.py): the autograd engine on CuPy arrays gives the CPU's values and
gradients, gradcheck passes in float64 on the device, and a training step of a small
segmenter on the GPU matches the same step on the CPU."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import nn
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.backend import cuda_simulator_enabled

SIMULATOR = cuda_simulator_enabled()

pytestmark = pytest.mark.gpu


def test_tensor_to_and_back():
    x = sv.randn(3, 4, requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and type(y.data).__module__.startswith("cupy")
    (y * y).sum().backward()
    assert x.grad is not None and type(x.grad.data).__module__ == "numpy"
    np.testing.assert_allclose(x.grad, 2 * x.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="one device"):
        sv.randn(3) + sv.randn(3, device="cuda")


@pytest.mark.parametrize("name", list(registered_gradchecks()))
def test_gradcheck_on_gpu(name):
    case = registered_gradchecks()[name]
    # under the simulator: 4 random elements of each input (every op still runs on the
    # device arrays, forward and backward); on a GPU: all of them
    r = run_case(case, device="cuda", max_elements=4 if SIMULATOR else None)
    assert r.ok, r.worst


def test_training_step_matches_cpu():
    from scratchvision.nets import UNet
    sv.manual_seed(0)
    cpu_model = UNet(3, base=8, depth=2)
    gpu_model = UNet(3, base=8, depth=2)
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.to("cuda")
    rng = np.random.default_rng(0)
    # under the simulator (the CuPy stand-in) every CUDA thread is a Python thread: 8x8
    n, size = (2, 8) if SIMULATOR else (4, 32)
    x = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    t = rng.integers(0, 3, (n, size, size))
    results = []
    for model, device in ((cpu_model, "cpu"), (gpu_model, "cuda")):
        opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss = F.cross_entropy(model(sv.tensor(x, device=device)), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        results.append((loss.item(), model.state_dict()))
    assert abs(results[0][0] - results[1][0]) < 1e-4
    for k, v in results[0][1].items():
        np.testing.assert_allclose(results[1][1][k], v, rtol=1e-3, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("cls, kw", [(nn.optim.Adam, dict(weight_decay=0.01)),
                                     (nn.optim.AdamW, dict(amsgrad=True))])
def test_adam_on_gpu_matches_cpu(cls, kw):
    """The bucketed (flat) Adam on device parameters gives the CPU's parameters and
    state, float32 and float64 buckets, over steps where one parameter misses a grad."""
    rng = np.random.default_rng(3)
    init = [rng.standard_normal((4, 3)), rng.standard_normal(5).astype(np.float32),
            rng.standard_normal((2, 2))]
    runs = []
    for device in ("cpu", "cuda"):
        params = [sv.tensor(a, device=device, requires_grad=True) for a in init]
        opt = cls(params, lr=0.05, **kw)
        grads = np.random.default_rng(4)
        for step in range(4):
            for i, p in enumerate(params):
                g = grads.standard_normal(p.shape).astype(p.data.dtype)
                p.grad = None if (step, i) == (1, 2) else p.xp.asarray(g)
            opt.step()
        runs.append(([p.numpy() for p in params], opt.state_dict()["state"]))
    for cpu_p, gpu_p in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(gpu_p, cpu_p, rtol=1e-5 if gpu_p.dtype == np.float32
                                   else 1e-12)
    for i, state in runs[0][1].items():
        for name, value in state.items():
            np.testing.assert_allclose(runs[1][1][i][name], value, rtol=1e-5, err_msg=name)
