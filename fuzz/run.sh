#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for a bounded time.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]     (default 60)
#
# Each target starts from a scratch copy of its committed corpus
# (build-fuzz/corpus/<target>), so the inputs a run discovers never dirty the
# tree. A crash leaves its input in build-fuzz/crashes/<target>/ and its log
# in build-fuzz/logs/<target>.log; the script exits 1 if any target crashed.
# Reproduce one with: build-fuzz/fuzz/<target>_fuzz build-fuzz/crashes/<target>/crash-...
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
targets=(job_file sentinel cron ingest agent_output)

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DDROPQ_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"

# Readable stacks in the logs; abort_on_error is left off so libFuzzer, not
# the sanitizer, ends the run and writes the crashing input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
if symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer); then
  export ASAN_SYMBOLIZER_PATH=$symbolizer
fi

failed=0
mkdir -p "$build/logs"
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  crashes=$build/crashes/$t
  log=$build/logs/$t.log
  rm -rf "$corpus" "$crashes"
  mkdir -p "$corpus" "$crashes"
  cp -R "$root/fuzz/corpus/$t/." "$corpus/"
  dict=()
  [ -f "$root/fuzz/$t.dict" ] && dict=("-dict=$root/fuzz/$t.dict")

  rc=0
  "$build/fuzz/${t}_fuzz" "$corpus" "${dict[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1 || rc=$?

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  # Without final stats (a hard crash), the last progress line "#N ..." says.
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    printf '%-12s %10s execs in %ss, no crash\n' "$t" "${execs:-?}" "$seconds"
  else
    failed=1
    printf '%-12s %10s execs, CRASH (exit %s): %s\n' "$t" "${execs:-?}" "$rc" \
      "$(ls "$crashes" | head -n 1 | sed "s|^|$crashes/|")"
    grep -E 'ERROR|SUMMARY|broken invariant' "$log" | head -n 5 | sed 's/^/    /'
    echo "    log: $log"
  fi
done
exit "$failed"
