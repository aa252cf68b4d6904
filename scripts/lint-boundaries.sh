#!/usr/bin/env bash
# The layering rules of native/: kernels/ include no torch and no napi; ops/ and model/ never napi;
# napi only in binding/. The CMake targets enforce most of this at build time; this catches the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
check() {  # check <folder> <forbidden regex> <why>
  local hits
  hits=$(grep -rnE "$2" "$1" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' || true)
  if [[ -n "$hits" ]]; then
    echo "boundary violation in $1 ($3):" >&2
    echo "$hits" >&2
    status=1
  fi
}
check native/kernels '#include <(torch|ATen|c10|napi)' 'kernels are plain C++/CUDA on raw pointers'
check native/ops '#include <napi' 'ops are libtorch only'
check native/model '#include <napi' 'model code is libtorch only'
check native '\b(exit|abort)\(' 'no process exit on user-reachable paths'
[[ $status -eq 0 ]] && echo "native boundaries: ok"
exit $status
