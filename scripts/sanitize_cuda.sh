#!/usr/bin/env bash
# Runs the CUDA kernel tests under compute-sanitizer (memcheck, racecheck, synccheck, initcheck) on a GPU
# host, from a CUDA build of the native tests: scripts/sanitize_cuda.sh [build dir, default build].
set -euo pipefail
cd "$(dirname "$0")/.."
tests=${1:-build}/moe_native_tests
cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
run() { echo "== $1 $2"; "$cs" --tool "$1" --error-exitcode 9 "$tests" "$2" | tail -2; }
for t in cuda_topk cuda_dispatch cuda_fused cuda_classifier cuda_training; do run memcheck "$t"; done
for t in cuda_topk cuda_dispatch; do run racecheck "$t"; run synccheck "$t"; done
run initcheck cuda_dispatch
