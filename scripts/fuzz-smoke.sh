#!/usr/bin/env bash
# Part of `make test`: each libFuzzer target (fuzz/) runs over its seed corpus, then for a few
# seconds more (default 3), with ASan and UBSan. A crash, hang, leak or sanitizer report fails.
# Usage: scripts/fuzz-smoke.sh BUILD_DIR [SECONDS]
set -uo pipefail
build=${1:-build-fuzz}
seconds=${2:-3}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for t in fuzz/fuzz_*.cpp; do
  name=$(basename "$t" .cpp)
  name=${name#fuzz_}
  bin=$build/fuzz_$name
  if [ ! -x "$bin" ]; then  # a target that was not built is a failure, not a pass
    echo "fuzz $name: FAILED (no $bin; make fuzz builds it)"; failed=1
    continue
  fi
  mkdir -p "$work/$name"  # new inputs go here, the committed corpus stays as it is
  if LSAN_OPTIONS=suppressions=fuzz/lsan.supp "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3000 -print_final_stats=1 \
       -artifact_prefix="$work/$name/" "$work/$name" "fuzz/corpus/$name" > "$work/$name.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz $name: FAILED"; tail -30 "$work/$name.log"; failed=1
  fi
done
exit $failed
