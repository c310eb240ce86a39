#!/usr/bin/env bash
# Builds the emulated CUDA kernels and their test programs (README.md) under build-emulator/ at the repository root:
#   core/                     the CPU core (native/sources.json's "core" list), which the tests compare with
#   fiber/, threads[-SAN]/    the emulator, each kernel file of kernels.txt transformed and compiled, and one test
#                             program per kernel file (NAME_test)
# Incremental: a file is rebuilt when it is missing or older than its sources (headers included); a change of
# flags rebuilds its directory.
#
# Environment: EMU_THREADS=1 runs GPU threads as OS threads instead of fibers; EMU_SANITIZE=address,undefined (or
# thread) builds with those sanitizers (and OS threads: they cannot follow fibers); JOBS: parallel compilations
# (default: the CPU count); CXX (default g++); EMU_CUDA_DIR: the kernel sources (default native/cuda; a mutated copy
# checks that the tests catch a bug) and EMU_OUT: where to build (default build-emulator).
# Prints progress on stderr and the directory of the test programs on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cuda=${EMU_CUDA_DIR:-$root/native/cuda}
out=${EMU_OUT:-$root/build-emulator}
CXX=${CXX:-g++}
JOBS=${JOBS:-$(nproc)}

# The product's core flags (CMakeLists.txt: x86-64-v2 baseline, wider kernels dispatched at run time). The emulated
# kernels round every operation separately (-ffp-contract=off), as their _rn intrinsics do on the device.
core_flags=(-std=c++20 -O2 -march=x86-64-v2 -mtune=generic "-I$root/native/include")
emu_flags=(-std=c++20 -O2 -march=x86-64-v2 -mtune=generic -ffp-contract=off -pthread -Wall -Wno-unknown-pragmas
           "-I$here/emu" "-I$root/native/include")
mode=fiber
if [[ -n ${EMU_SANITIZE:-} ]]; then
  EMU_THREADS=1
  emu_flags+=("-fsanitize=$EMU_SANITIZE" -fno-omit-frame-pointer -g)
fi
if [[ -n ${EMU_THREADS:-} ]]; then
  mode=threads${EMU_SANITIZE:+-${EMU_SANITIZE//,/-}}
  emu_flags+=(-DEMU_THREADS)
fi

# ---- jobs ----------------------------------------------------------------------------------------------------------

running=0
failed=0
start_job() {
  "$@" &
  running=$((running + 1))
  if ((running >= JOBS)); then
    wait -n || failed=1
    running=$((running - 1))
  fi
}
finish_jobs() {
  while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
  done
  if ((failed)); then
    echo "build.sh: the build failed" >&2
    exit 1
  fi
}

# ---- incremental steps -----------------------------------------------------------------------------------------------

# A directory for files built with the given flags: emptied when they change.
flag_dir() {
  local dir=$1
  shift
  if [[ ! -f $dir/.flags || "$(cat "$dir/.flags")" != "$*" ]]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "$*" >"$dir/.flags"
  fi
}

# newer TARGET SOURCES...: whether some source is newer than TARGET (or TARGET is missing).
newer() {
  local target=$1 source
  shift
  [[ -f $target ]] || return 0
  for source in "$@"; do [[ $source -nt $target ]] && return 0; done
  return 1
}

# compile SOURCE OBJECT FLAGS...: unless OBJECT is newer than SOURCE and every header it included last time.
compile() {
  local source=$1 object=$2
  shift 2
  if [[ -f $object.d ]] && ! newer "$object" $(sed -e 's/^[^:]*://' -e 's/\\$//' "$object.d"); then return 0; fi
  echo "  compiling ${source#"$root"/}" >&2
  "$CXX" "$@" -MMD -MF "$object.d" -c "$source" -o "$object"
}

# ---- the build -----------------------------------------------------------------------------------------------------

echo "build.sh: the CPU core, the emulator ($mode) and the kernel tests of ${cuda#"$root"/} in ${out#"$root"/}" >&2
flag_dir "$out/core" "$CXX" "${core_flags[@]}"
dir=$out/$mode
flag_dir "$dir" "$CXX" "${emu_flags[@]}"

core_objects=()
while read -r source; do
  object=$out/core/$(basename "${source%.cpp}").o
  core_objects+=("$object")
  start_job compile "$root/$source" "$object" "${core_flags[@]}"
done < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["core"]))' \
         "$root/native/sources.json")

emulator_objects=("$dir/runtime.o")
start_job compile "$here/emu/runtime.cpp" "$dir/runtime.o" "${emu_flags[@]}"
if [[ $mode == fiber ]]; then
  emulator_objects+=("$dir/fiber.o")
  newer "$dir/fiber.o" "$here/emu/fiber_x86_64.S" && start_job "$CXX" -c "$here/emu/fiber_x86_64.S" -o "$dir/fiber.o"
fi

# kernel_object FILE [TRANSFORM OPTIONS...]: native/cuda/FILE transformed and compiled (once), into kernel_objects.
declare -A kernel_objects
kernel_object() {
  local file=$1 name
  shift
  [[ -n ${kernel_objects[$file]:-} ]] && return 0
  name=$(echo "${file%.cu}" | tr / _)
  python3 "$here/transform.py" "$cuda/$file" "$dir/$name.cpp" "$@"
  start_job compile "$dir/$name.cpp" "$dir/$name.o" "${emu_flags[@]}" -iquote "$cuda/$(dirname "$file")"
  kernel_objects[$file]=$dir/$name.o
}

# Per test: NAME and the objects it links (kernels.txt: NAME FILES... [OPTIONS...]).
declare -A test_objects
tests=()
kernel_object common/util.cu
while read -r name rest; do
  [[ -z $name || $name == \#* ]] && continue
  read -r -a words <<<"$rest"
  files=()
  while ((${#words[@]})) && [[ ${words[0]} != --* ]]; do
    files+=("${words[0]}")
    words=("${words[@]:1}")
  done
  kernel_object "${files[0]}" "${words[@]}"
  for file in "${files[@]:1}"; do kernel_object "$file"; done
  start_job compile "$here/tests/${name}_test.cpp" "$dir/${name}_test.o" "${emu_flags[@]}" -iquote "$cuda"
  tests+=("$name")
  test_objects[$name]="$dir/${name}_test.o"
  for file in "${files[@]}" common/util.cu; do test_objects[$name]+=" ${kernel_objects[$file]}"; done
done <"$here/kernels.txt"
finish_jobs

if newer "$out/core/libcore.a" "${core_objects[@]}"; then
  rm -f "$out/core/libcore.a"
  ar rcs "$out/core/libcore.a" "${core_objects[@]}"
fi
for name in "${tests[@]}"; do
  read -r -a inputs <<<"${test_objects[$name]}"
  inputs+=("${emulator_objects[@]}" "$out/core/libcore.a")
  if newer "$dir/${name}_test" "${inputs[@]}"; then
    echo "  linking ${name}_test" >&2
    start_job "$CXX" "${emu_flags[@]}" "${inputs[@]}" -o "$dir/${name}_test"
  fi
done
finish_jobs
echo "$dir"
