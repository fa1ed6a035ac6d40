"""Data-parallel training with the model on the GPU: 2 ranks under mpiexec against one CPU
process. On a GPU machine the buckets go through NCCL (when CuPy has it); in CI they run
on the CuPy stand-in under the CUDA simulator, which has no NCCL, so the arrays take the
host path (copied out, reduced over MPI, copied back)."""
from __future__ import annotations

import json

import pytest

from tests.distributed.test_distributed import DRIVER, MPIEXEC, _ok, mpirun

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(MPIEXEC is None, reason="needs mpi4py and mpiexec "
                                 "(pip install -e '.[dist]')")]


def test_ddp_with_sync_batchnorm_on_cuda_equals_one_cpu_process(tmp_path):
    out = tmp_path / "gpu.json"
    _ok(mpirun([DRIVER, "gpu", out], simulated=True, timeout=300))
    r = json.loads(out.read_text())["gpu"]
    assert r["device"] == "cuda"
    assert r["max_abs"] <= 1e-10, r
