#!/usr/bin/env bash
# GPU check of the rank-loss backends, meant to finish in under 10 minutes on one cold H100/H200:
#   1. build the extension against the installed torch (CUDA ops included),
#   2. run the CUDA tests (pytest -m cuda) and the Triton tests on the GPU,
#   3. benchmark forward+backward time and peak memory (benchmarks/bench_gpu.py).
#
# Usage: scripts/gpu_check.sh [OUT_DIR]          (default: $OUT, else ${TMPDIR:-/tmp}/repose_gpu_check)
# Writes env.txt, build.log, tests.log, bench.log, bench_gpu.md, bench_gpu.csv and summary.txt.
# Each stage has a time limit (BUILD_TIMEOUT, TEST_TIMEOUT, BENCH_TIMEOUT, in seconds); a failing
# stage does not stop the later ones, and the exit status is that of the first failing stage.
# PYTHON picks the interpreter (default python3).
set -u -o pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-${TMPDIR:-/tmp}/repose_gpu_check}}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
status=0
start=$SECONDS

# stage NAME LIMIT_S LOG CMD...: run CMD with a time limit, output to LOG (and the terminal).
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  local t0=$SECONDS
  echo "== $name (limit ${limit} s)"
  timeout "$limit" "$@" >"$out/$log" 2>&1
  local rc=$?
  tail -n 40 "$out/$log"
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$out/summary.txt"
  if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

{
  nvidia-smi || true
  "$py" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
  "$py" -c "import triton; print('triton', triton.__version__)" || true
  nvcc --version || true
  git rev-parse HEAD 2>/dev/null || true
} >"$out/env.txt" 2>&1
: >"$out/summary.txt"

# --no-deps: the GPU machine may have no package index; the dependencies are already there.
stage build "${BUILD_TIMEOUT:-270}" build.log \
  "$py" -m pip install --no-build-isolation --no-deps -v -e .
grep -h "repose_ext: building" "$out/build.log" | tee -a "$out/summary.txt"
"$py" -c "
import torch, repose_ext
from repose_ext import _ops
print('CUDA kernel of repose::rank_hinge registered:', _ops.has_kernel(_ops.OP_NAME, 'CUDA'))
print('backends for cuda tensors:', repose_ext.available_backends('cuda'))
" 2>&1 | tee -a "$out/summary.txt"

stage tests "${TEST_TIMEOUT:-180}" tests.log bash -c \
  "'$py' -m pytest -q -p no:cacheprovider -m cuda; a=\$?; '$py' -m pytest -q -p no:cacheprovider tests/test_triton.py; b=\$?; exit \$(( a ? a : b ))"

stage bench "${BENCH_TIMEOUT:-120}" bench.log \
  "$py" benchmarks/bench_gpu.py --out "$out" --budget 0.5

[ -f "$out/bench_gpu.md" ] && cat "$out/bench_gpu.md"
echo "== total $((SECONDS - start)) s, exit $status" | tee -a "$out/summary.txt"
exit "$status"
