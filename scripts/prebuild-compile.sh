#!/usr/bin/env bash
# prebuildify's --node-gyp command: prebuildify passes node-gyp arguments (rebuild --target=... --release),
# which cmake-js does not take; the addon is Node-API (one binary for every Node version), so they are
# ignored and cmake-js builds the addon into build/Release, where prebuildify picks it up.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install cmake-js build --out build --parallel "$(nproc 2>/dev/null || echo 2)"
