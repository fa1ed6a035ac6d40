#!/usr/bin/env bash
# The whole test suite: the main pytest run, then the numba.cuda kernels under Numba's
# CUDA simulator in their own process (the simulator must be switched on before numba
# is imported, so it cannot share a process with the CPU tests), then the GPU tests of
# tests/gpu on a host-memory stand-in for CuPy with the kernels simulated (device
# discipline: tests/fake_cupy.py says what that checks and what only a real GPU can).
#
# The simulated runs execute every GPU thread in Python on one core, so they run side by
# side, in three processes (the detectors' GPU tests apart from the other GPU tests); each
# one's output is printed when all have finished, and any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q "$@"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
names=()
run_simulated() {            # NAME ARGS...: pytest ARGS in the background, under the simulator
  local name=$1
  shift
  names+=("$name")
  ( set +e; NUMBA_ENABLE_CUDASIM=1 python -m pytest -q -p no:cacheprovider "$@" \
      > "$logs/$name.log" 2>&1; echo $? > "$logs/$name.rc" ) &
}
if grep -rlq "mark.cudasim" tests; then
  run_simulated cudasim -m cudasim tests
fi
other_gpu=()
for f in tests/gpu/test_*.py; do
  [ "$f" = tests/gpu/test_gpu_detectors.py ] || other_gpu+=("$f")
done
export SCRATCHVISION_FAKE_CUPY=1      # the stand-in for CuPy (after the cudasim run started)
run_simulated gpu-detectors -m gpu tests/gpu/test_gpu_detectors.py
run_simulated gpu-other -m gpu "${other_gpu[@]}"
wait
status=0
for name in "${names[@]}"; do
  echo "== $name (NUMBA_ENABLE_CUDASIM=1)"
  cat "$logs/$name.log"
  rc=$(cat "$logs/$name.rc")
  if [ "$rc" != 0 ]; then status=$rc; fi
done
exit $status
