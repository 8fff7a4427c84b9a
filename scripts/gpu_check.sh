#!/usr/bin/env bash
# GPU check of the rank-loss backends, within 9.5 minutes on one cold H100/H200 (the stage limits add up
# to 570 s, so one run fits a 10-minute command and a second one the rest of a 15-minute device budget):
#   1. build the extension against the installed torch (CUDA ops included),
#   2. run the CUDA tests (pytest -m cuda), the Triton tests and the backend matrix of test_rank_losses.py on
#      the GPU,
#   3. benchmark forward+backward time and peak memory (benchmarks/bench_gpu.py).
#
# Usage: scripts/gpu_check.sh [OUT_DIR]          (default: $OUT, else ${TMPDIR:-/tmp}/repose_gpu_check)
# Writes env.txt, build.log, tests.log, bench.log, bench_gpu.md, bench_gpu.csv, and results.md: the one
# table to commit (machine, each stage's exit and time, the test counts, the benchmark table).
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
stage build "${BUILD_TIMEOUT:-210}" build.log \
  "$py" -m pip install --no-build-isolation --no-deps -v -e .
grep -h "repose_ext: building" "$out/build.log" | tee -a "$out/summary.txt"
"$py" -c "
import torch, repose_ext
from repose_ext import _ops
print('CUDA kernel of repose::depth_rank_loss registered:', _ops.has_kernel(_ops.DEPTH_OP, 'CUDA'))
print('backends for cuda tensors:', repose_ext.available_backends('cuda'))
" 2>&1 | tee -a "$out/summary.txt"

stage tests "${TEST_TIMEOUT:-300}" tests.log bash -c \
  "'$py' -m pytest -q -p no:cacheprovider -m cuda; a=\$?; '$py' -m pytest -q -p no:cacheprovider tests/test_triton.py tests/test_rank_losses.py; b=\$?; exit \$(( a ? a : b ))"

stage bench "${BENCH_TIMEOUT:-60}" bench.log \
  "$py" benchmarks/bench_gpu.py --out "$out" --budget 0.5

echo "== total $((SECONDS - start)) s, exit $status" | tee -a "$out/summary.txt"
{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo '```'
  grep -E "NVIDIA|torch|triton" "$out/env.txt" | head -n 6
  cat "$out/summary.txt"
  grep -E "passed|failed|error" "$out/tests.log" | tail -n 4
  echo '```'
  echo
  [ -f "$out/bench_gpu.md" ] && cat "$out/bench_gpu.md"
} >"$out/results.md"
cat "$out/results.md"
exit "$status"
