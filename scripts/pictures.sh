#!/usr/bin/env bash
# npm run pictures: the README's pictures, drawn by the CLI from the reference MoE (5,000 training
# images, 30 epochs, seed 0) trained on MNIST and on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
mkdir -p docs/images
for data in mnist fashion-mnist; do
  node dist/lib/cli.js train --data "$data" --limit 5000 --epochs 30 --seed 0 --out "$tmp/$data.safetensors" \
    --plot "docs/images/training-$data.svg" >/dev/null
  node dist/lib/cli.js routing "$tmp/$data.safetensors" --data "$data" --plot "docs/images/routing-$data.svg"
done
rm -rf "$tmp"
