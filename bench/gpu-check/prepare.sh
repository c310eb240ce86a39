#!/usr/bin/env bash
# On the development machine: build what the GPU check carries, so the GPU machine builds nothing.
#   1. the TypeScript output (dist/) and the CUDA addon (build-cuda/Release/tessera_cuda.node);
#   2. this machine's node binary, xz-compressed (the GPU machine has no Node.js), into .device/ (git-ignored).
# Then one device call runs it:
#   command: bash bench/gpu-check/run.sh retrieval
#   carry:   [".device", "dist", "build-cuda/Release/tessera_cuda.node"]
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build --silent
npm run build:cuda --silent
mkdir -p .device
if [[ ! -s .device/node.xz || $(command -v node) -nt .device/node.xz ]]; then
  xz -T0 -6 -c "$(command -v node)" > .device/node.xz.tmp && mv .device/node.xz.tmp .device/node.xz
fi
du -ch .device/node.xz dist build-cuda/Release/tessera_cuda.node | tail -1
