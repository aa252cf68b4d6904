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

# For the tests (--dev): the prebuild of this platform, which the tests load as an installed package
# would (scripts/prebuild.mjs moves the built addon out of build/Release into prebuilds/).
if [[ "${1:-}" == "--dev" ]]; then
  node scripts/prebuild.mjs >prebuild.log 2>&1 || {
    cat prebuild.log >&2
    echo "torch-moe: the prebuild failed (log above)" >&2
    exit 1
  }
fi
