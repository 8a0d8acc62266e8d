#!/usr/bin/env bash
# Part of `make test`: each libFuzzer target (fuzz/) runs over its seed corpus, then for a few
# seconds more (default 3), with ASan and UBSan. A crash, hang, leak or sanitizer report fails.
# Targets run two at a time (each is one thread; `nproc` at most).
# Usage: scripts/fuzz-smoke.sh BUILD_DIR [SECONDS]
set -uo pipefail
build=${1:-build-fuzz}
seconds=${2:-3}
lanes=$(( $(nproc) < 2 ? 1 : 2 ))
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_target() {  # name -> $work/name.log, $work/name.rc
  local name=$1 bin=$build/fuzz_$1
  mkdir -p "$work/$name"  # new inputs go here, the committed corpus stays as it is
  LSAN_OPTIONS=suppressions=fuzz/lsan.supp "$bin" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=3000 -print_final_stats=1 -artifact_prefix="$work/$name/" \
    "$work/$name" "fuzz/corpus/$name" > "$work/$name.log" 2>&1
  echo $? > "$work/$name.rc"
}

names=()
for t in fuzz/fuzz_*.cpp; do
  name=$(basename "$t" .cpp)
  names+=("${name#fuzz_}")
done
for name in "${names[@]}"; do
  [ -x "$build/fuzz_$name" ] || continue  # reported below
  while [ "$(jobs -rp | wc -l)" -ge "$lanes" ]; do wait -n; done
  run_target "$name" &
done
wait

failed=0
for name in "${names[@]}"; do
  if [ ! -x "$build/fuzz_$name" ]; then  # a target that was not built is a failure, not a pass
    echo "fuzz $name: FAILED (no $build/fuzz_$name; make fuzz builds it)"; failed=1
  elif [ "$(cat "$work/$name.rc")" = 0 ]; then
    echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz $name: FAILED"; tail -30 "$work/$name.log"; failed=1
  fi
done
exit $failed
