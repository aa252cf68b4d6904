#!/usr/bin/env bash
# Compiles every CUDA source of native/kernels with nvcc for Hopper (sm_90), so that a machine without a
# GPU or a CUDA libtorch (CI) still catches breakage in the kernels. Exit 1 on any compile error.
# nvcc: $CUDACXX, else nvcc on PATH, else /usr/local/cuda/bin/nvcc.
set -euo pipefail
cd "$(dirname "$0")/.."
nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [[ ! -x "$nvcc" ]]; then
  echo "check:cuda: no nvcc found (set CUDACXX or install the CUDA toolkit); the CUDA kernels were NOT checked" >&2
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for cu in native/kernels/*.cu; do
  if "$nvcc" -std=c++17 -arch=sm_90 -Xcompiler -Wall -c "$cu" -o "$out/$(basename "$cu").o"; then
    echo "ok   $cu"
  else
    echo "FAIL $cu" >&2
    status=1
  fi
done
echo "check:cuda: $("$nvcc" --version | tail -1) sm_90"
exit $status
