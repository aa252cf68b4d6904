#!/usr/bin/env bash
# Installs the system packages torch-moe needs, only those missing; safe to run any number of times.
#   scripts/setup.sh          build and run: libtorch, OpenBLAS (OpenMP), cmake, a C++ compiler, ninja
#   scripts/setup.sh --dev    also python3-torch, the eager PyTorch reference the tests compare against
# On Debian/Ubuntu it uses apt-get as root or through sudo; elsewhere it prints what to install.
set -euo pipefail

packages=(libtorch-dev libgloo-dev libopenblas0-openmp cmake g++ ninja-build)
[[ "${1:-}" == "--dev" ]] && packages+=(python3-torch)

if [[ -n "${LIBTORCH:-}" ]]; then
  # A user-provided libtorch: only the build tools are ours to check.
  packages=(cmake g++)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  echo "torch-moe setup: this is not a Debian-based system, so nothing is installed automatically." >&2
  echo "  Install libtorch (https://pytorch.org, 'LibTorch' C++ archive) and set LIBTORCH=/path/to/libtorch," >&2
  echo "  or install PyTorch for Python (pip install torch); plus cmake >= 3.18 and a C++17 compiler." >&2
  exit 0
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "torch-moe setup: missing system packages: ${missing[*]}" >&2
  echo "  Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "torch-moe setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
