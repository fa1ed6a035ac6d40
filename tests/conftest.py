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


def pytest_collection_modifyitems(config, items):
    from scratchvision.backend import gpu_available
    has_gpu = gpu_available()
    skip_gpu = pytest.mark.skip(reason="no CUDA GPU with CuPy on this machine")
    skip_sim = pytest.mark.skip(reason="CUDA-simulator tests run in their own process with "
                                       "NUMBA_ENABLE_CUDASIM=1 (see .ci/run)")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "cudasim" in item.keywords and not (SIMULATOR or has_gpu):
            item.add_marker(skip_sim)


@pytest.fixture
def rng():
    """A numpy Generator with a fixed seed, new for each test."""
    return np.random.default_rng(1234)
