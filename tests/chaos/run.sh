#!/usr/bin/env bash
# The fault-injection suite: builds dropq, the test agent and dropq-chaos in
# the project's build dir, then drops JOBS job files across 10 groups while
# SIGKILLing the daemon KILLS times, and checks that nothing was lost, doubled
# or left half-told (tests/chaos/chaos.cc says how).
#
#   tests/chaos/run.sh [JOBS] [KILLS] [more dropq-chaos options...]
#                                        (defaults 2000 and 10; e.g. --seed 7 --runtime bwrap)
#
# Exits with dropq-chaos's code: 0 when every check holds, 1 when one fails
# (the workdir is then kept and named in the output), 2 on a usage error.
# BUILD overrides the build dir (default build/).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
jobs=${1:-2000}
kills=${2:-10}
shift $(( $# < 2 ? $# : 2 ))

# Configure only a fresh build dir: an existing one keeps its own settings,
# and `cmake --build` re-runs cmake by itself when a CMakeLists.txt changed.
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target dropq test-agent dropq-chaos

exec "$build/dropq-chaos" --dropq "$build/dropq" --agent "$build/test-agent" \
  --jobs "$jobs" --kills "$kills" --groups 10 "$@"
