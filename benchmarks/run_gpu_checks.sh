#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, CuPy and numba-cuda (the `gpu` extra): every `gpu` test
# at full size, then the GPU benchmark table (benchmarks/results/gpu.md). Run from a
# checkout, without installing: `bash benchmarks/run_gpu_checks.sh [pytest timeout, s]`.
set -uo pipefail
cd "$(dirname "$0")/.."
# numba 0.68.0 calls numpy.row_stack, which numpy 2.5 removed: alias it where missing
shim=$(mktemp -d)
echo "import numpy; numpy.row_stack = getattr(numpy, 'row_stack', numpy.vstack)" \
  > "$shim/sitecustomize.py"
export PYTHONPATH="$shim:$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c "import scratchvision as sv; assert sv.gpu_available(), 'no usable GPU'" || exit 2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
status=0
timeout "${1:-300}" python -m pytest -q -m gpu -p no:cacheprovider -o addopts="" \
  tests/gpu tests/kernels tests/ops -rf || status=$?
python -m benchmarks gpu || status=$?
exit $status
