#!/usr/bin/env bash
# The whole test suite: the main pytest run, then the numba.cuda kernels under Numba's
# CUDA simulator in their own process (the simulator must be switched on before numba
# is imported, so it cannot share a process with the CPU tests), then the GPU tests of
# tests/gpu on a host-memory stand-in for CuPy with the kernels simulated (device
# discipline: tests/fake_cupy.py says what that checks and what only a real GPU can).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q "$@"
if grep -rlq "mark.cudasim" tests; then
  NUMBA_ENABLE_CUDASIM=1 python -m pytest -q -m cudasim -p no:cacheprovider tests
fi
NUMBA_ENABLE_CUDASIM=1 SCRATCHVISION_FAKE_CUPY=1 python -m pytest -q -m gpu -p no:cacheprovider \
  tests/gpu
