#!/usr/bin/env bash
# On the GPU machine: unpack the carried node binary, then run the GPU checks. Parity first, then CUDA-event timings,
# a short table last; full results land in $OUT when the device tool provides it.
#
#   bash bench/gpu-check/run.sh [retrieval] [--quick]
# Carried from the development machine (bench/gpu-check/prepare.sh builds them): .device/node.xz, dist/,
# build-cuda/Release/tessera_cuda.node.
set -euo pipefail
cd "$(dirname "$0")/../.."
suite=${1:-retrieval}
shift || true
node=/tmp/tessera-node
if [[ ! -x $node ]]; then
  xz -dc .device/node.xz > "$node.tmp" && chmod +x "$node.tmp" && mv "$node.tmp" "$node"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
log=${OUT:-/tmp}/gpu-check-$suite.log
"$node" "bench/gpu-check/$suite.mjs" "$@" 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
