#!/usr/bin/env bash
# jaxgd on a GPU machine: the test suite, then benchmark B at 4,000,000 x 512
# and benchmark D with 4,096 runs, tables written to $OUT. About 5 minutes.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh        (from the repository root)
#
# Needs: python3 with jax (CUDA), optax, numpy, pytest. No network. scipy,
# scikit-learn and optimistix are optional (their rows/tests are skipped).
# Files written directly under $OUT:
#   gpu_info.txt        nvidia-smi and jax.devices()
#   pytest_gpu.log      the test suite on the GPU (python3 -m pytest -q -x)
#   bench_B.md          B: logistic regression 4,000,000 x 512, effective vs
#                       measured GPU bandwidth (in-place x*2 copy and sum)
#   bench_D.md          D: vmap over 4,096 learning rates vs sequential calls
#   bench_header_*.md, bench_summary_*.md, bench_B.log, bench_D.log
# A dry run elsewhere (CPU, small sizes): SKIP_TESTS=1 B_N=20000 B_D=64 D_RUNS=64 D_SEQ=8
# Tests only (no benchmarks): SKIP_BENCH=1
set -u
B_N="${B_N:-4000000}"; B_D="${B_D:-512}"; D_RUNS="${D_RUNS:-4096}"; D_SEQ="${D_SEQ:-16}"
OUT="${OUT:-out}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OPENBLAS_NUM_THREADS=1
PY=python3
T0=$(date +%s)

{
  echo "# $(date -Is)  $(hostname)  git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv 2>/dev/null || echo "nvidia-smi: not available"
  $PY -c "import jax, jaxlib, optax, numpy; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__); print(jax.default_backend(), jax.devices())"
} > "$OUT/gpu_info.txt" 2>&1
cat "$OUT/gpu_info.txt"

# 1. the library's core test files on the GPU, 8 workers (compiling dominates);
#    no preallocation so the workers share the card. CLI/example tests are
#    CPU-bound subprocesses and stay on the CPU CI.
echo "== pytest on the GPU (at most 200 s)"
GPU_TESTS="tests/test_minimize.py tests/test_common.py tests/test_schedules.py tests/test_linesearch.py
  tests/test_quasi_newton.py tests/test_prox.py tests/test_checkpoint.py tests/test_determinism.py
  tests/test_fit.py tests/test_fit_resume.py tests/test_bad_inputs.py tests/test_performance.py tests/test_gradcheck.py"
if [ -n "${SKIP_TESTS:-}" ]; then
  echo "skipped (SKIP_TESTS set)" > "$OUT/pytest_gpu.log"; PYTEST_RC=0
else
  XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 200 $PY -m pytest -q -n 8 -p no:cacheprovider -p no:benchmark $GPU_TESTS \
    > "$OUT/pytest_gpu.log" 2>&1
  PYTEST_RC=$?
fi
tail -n 3 "$OUT/pytest_gpu.log"

if [ -n "${SKIP_BENCH:-}" ]; then
  echo "pytest (rc=$PYTEST_RC; 124 = stopped at the 200 s cap): $(tail -n 1 "$OUT/pytest_gpu.log")"
  exit 0
fi

# 2. B at 4,000,000 x 512 (X is 8.2 GB float32); NumPy baseline: 1 step
echo "== B: logistic regression $B_N x $B_D (at most 110 s)"
timeout 110 $PY -m benchmarks.run --only B --n "$B_N" --d "$B_D" --py-steps 1 --repeats 5 --out "$OUT" \
  > "$OUT/bench_B.log" 2>&1
B_RC=$?

# 3. D with 4,096 runs; 16 sequential calls timed (each runs 2,000 GPU loop
#    iterations), per-run cost extrapolated
echo "== D: sweep, $D_RUNS runs (at most 60 s)"
timeout 60 $PY -m benchmarks.run --only D --runs "$D_RUNS" --seq-runs "$D_SEQ" --repeats 5 --out "$OUT" \
  > "$OUT/bench_D.log" 2>&1
D_RC=$?

echo
echo "================ summary ($(( $(date +%s) - T0 )) s) ================"
echo "pytest (rc=$PYTEST_RC; 124 = stopped at the 200 s cap): $(tail -n 1 "$OUT/pytest_gpu.log")"
for k in B D; do
  rc_var="${k}_RC"
  echo "-- $k (rc=${!rc_var}; 124 = timed out)"
  if [ -f "$OUT/bench_$k.md" ]; then
    grep -E "^\| (jaxgd|hand-fused|bandwidth|jax.jit|[0-9]+ sequential)" "$OUT/bench_$k.md" | cut -d'|' -f2-7
    grep -E "^- target" "$OUT/bench_$k.md"
  else
    tail -n 5 "$OUT/bench_$k.log"
  fi
done
