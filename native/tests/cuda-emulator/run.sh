#!/usr/bin/env bash
# Builds the emulated CUDA kernels and runs their tests (README.md): one summary line per kernel file, and the
# failures' details; exits 1 when anything fails. Arguments go to every test program (a case filter, or -v); each
# program's full output is in build-emulator/<mode>/logs/NAME.log. Environment: as build.sh's (EMU_THREADS,
# EMU_SANITIZE, JOBS: also the tests run at once), and the emulator's (README.md: EMU_SEED, EMU_CP_ASYNC, EMU_SMS).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start=$SECONDS
dir=$(bash "$here/build.sh")
logs=$dir/logs
mkdir -p "$logs"

names=()
declare -A files
while read -r name file _; do
  [[ -z $name || $name == \#* ]] && continue
  names+=("$name")
  files[$name]=$file
done <"$here/kernels.txt"

# One test: its output to logs/NAME.log, its exit status to logs/NAME.status.
run_test() {
  local name=$1
  shift
  local status=0
  "$dir/${name}_test" "$@" >"$logs/$name.log" 2>&1 || status=$?
  echo "$status" >"$logs/$name.status"
}

jobs=${JOBS:-$(nproc)}
running=0
for name in "${names[@]}"; do
  rm -f "$logs/$name.status"
  run_test "$name" "$@" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for name in "${names[@]}"; do
  status=$(cat "$logs/$name.status" 2>/dev/null || echo "?")
  summary=$(grep -E '^(PASS|FAIL) ' "$logs/$name.log" | tail -n 1 || true)
  if [[ $status != 0 ]]; then
    failed=1
    grep -E '^FAIL |^EMULATOR: ' "$logs/$name.log" | grep -v -F "$summary" | head -n 20 || true
    if [[ -z $summary ]]; then  # it crashed (the emulator aborts on what cannot go on): its last words
      tail -n 5 "$logs/$name.log"
      summary="FAIL ${files[$name]}: ${name}_test ended with status $status before its summary"
    fi
  fi
  echo "$summary"
done
verdict=$([[ $failed == 0 ]] && echo "all passed" || echo FAILED)
echo "cuda-emulated: ${#names[@]} kernel files, $verdict in $((SECONDS - start)) s (logs in $logs)"
exit "$failed"
