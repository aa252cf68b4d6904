#!/usr/bin/env bash
# Brings a fresh clone to a runnable state, doing only what is not done yet:
# system packages (scripts/setup.sh), npm dependencies, the native addon (cmake-js), the TypeScript build.
#   scripts/prepare.sh [--dev]    --dev is passed on to setup.sh (test-only packages)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh "$@"

if [[ ! -d node_modules/.bin || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

npx --no-install cmake-js build --out build --parallel "$(nproc 2>/dev/null || echo 2)" >build.log 2>&1 || {
  cat build.log >&2
  echo "torch-moe: the native build failed (log above)" >&2
  exit 1
}
npx --no-install tsc -p tsconfig.json
