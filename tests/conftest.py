"""Test configuration: hypothesis profiles, GPU/simulator skips, a seeded rng fixture."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# "ci" keeps property tests quick on a 2-core machine; "dev" explores more.
settings.register_profile("ci", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
# The ``gpu`` tests on a host-memory stand-in for CuPy, kernels under the simulator
# (tests/fake_cupy.py says what this checks and what it cannot).
FAKE_CUPY = os.environ.get("SCRATCHVISION_FAKE_CUPY", "0") not in ("", "0")
if FAKE_CUPY:
    if not SIMULATOR:
        raise RuntimeError("SCRATCHVISION_FAKE_CUPY=1 needs NUMBA_ENABLE_CUDASIM=1: the "
                           "stand-in's arrays live in host memory")
    from tests import fake_cupy
    fake_cupy.install()


def pytest_collection_modifyitems(config, items):
    from scratchvision.backend import gpu_available
    has_gpu = gpu_available()
    skip_gpu = pytest.mark.skip(reason="no CUDA GPU with CuPy on this machine")
    skip_sim = pytest.mark.skip(reason="CUDA-simulator tests run in their own process with "
                                       "NUMBA_ENABLE_CUDASIM=1 (see .ci/run)")
    skip_big = pytest.mark.skip(reason="GPU test at realistic sizes: too slow for the CUDA "
                                       "simulator behind the CuPy stand-in")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "gpu" in item.keywords and FAKE_CUPY and item.path.parent.name != "gpu":
            item.add_marker(skip_big)
        if "cudasim" in item.keywords and not (SIMULATOR or has_gpu):
            item.add_marker(skip_sim)


@pytest.fixture
def rng():
    """A numpy Generator with a fixed seed, new for each test."""
    return np.random.default_rng(1234)
