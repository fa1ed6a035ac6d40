#!/usr/bin/env bash
# The whole test suite: the main pytest run, then the numba.cuda kernels under Numba's
# CUDA simulator in their own process (the simulator must be switched on before numba
# is imported, so it cannot share a process with the CPU tests).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q "$@"
if grep -rlq "mark.cudasim" tests; then
  NUMBA_ENABLE_CUDASIM=1 python -m pytest -q -m cudasim -p no:cacheprovider tests
fi
