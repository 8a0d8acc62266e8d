#!/usr/bin/env bash
# Fuzzes every reader (fuzz/, built by `make fuzz`: libFuzzer, ASan, UBSan) for FUZZ_SECONDS
# each (default 3600), TARGETS at a time in parallel (default 1: with 2, each runs on its own
# core), growing a corpus under bench/work/fuzz/ from the committed seeds; records executions,
# coverage and findings (crash, leak, timeout, out-of-memory inputs) in bench/results/fuzz.{md,json}.
# Naming targets runs only those: their rows replace the earlier ones, the other rows stay, so
# 1-hour runs can be spread over several sessions. Each row records its commit and date, and
# how long the run lasted (libFuzzer stops at its first finding). REPORT=1 fuzzes nothing: it
# re-reads the named targets' last logs (none named: none) and re-writes fuzz.{md,json}, e.g.
# after editing the reading in bench/fuzz_findings.md.
# Usage: FUZZ_SECONDS=3600 TARGETS=2 bench/fuzz.sh [target ...]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-3600}
parallel=${TARGETS:-1}
report=${REPORT:-0}
w=bench/work/fuzz
mkdir -p $w bench/results
names=("$@")
if [ ${#names[@]} -eq 0 ] && [ $report != 1 ]; then
  for t in fuzz/fuzz_*.cpp; do n=$(basename "$t" .cpp); names+=("${n#fuzz_}"); done
fi
run_one() {
  local name=$1
  mkdir -p $w/$name/corpus $w/$name/findings
  local t0=$(date +%s)
  LSAN_OPTIONS=suppressions=fuzz/lsan.supp build-fuzz/fuzz_$name -max_total_time=$seconds -timeout=10 -rss_limit_mb=3000 \
    -print_final_stats=1 -artifact_prefix=$w/$name/findings/ $w/$name/corpus fuzz/corpus/$name \
    > $w/$name/log.txt 2>&1
  echo $? > $w/$name/status
  echo $(($(date +%s) - t0)) > $w/$name/elapsed
}
active=0
[ $report = 1 ] || for name in "${names[@]}"; do
  run_one "$name" &
  active=$((active + 1))
  if [ $active -ge $parallel ]; then wait -n; active=$((active - 1)); fi
done
wait
/usr/bin/python3 - "$seconds" "$(git rev-parse --short HEAD)" "$(date -u +%F)" "${names[@]}" <<'PY'
import json, os, re, sys
seconds, commit, day, names = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
w = "bench/work/fuzz"
prior = "bench/results/fuzz.json"
out = json.load(open(prior)) if os.path.exists(prior) else {}
for n in names:
    log = open(f"{w}/{n}/log.txt", errors="replace").read()
    stat = lambda k: int(re.findall(rf"stat::{k}:\s*(\d+)", log)[-1]) if re.findall(rf"stat::{k}:\s*(\d+)", log) else 0
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    findings = sorted(os.listdir(f"{w}/{n}/findings"))
    status = int(open(f"{w}/{n}/status").read())
    out[n] = {"seconds": int(open(f"{w}/{n}/elapsed").read()), "limit_seconds": seconds,
              "executions": stat("number_of_executed_units"),
              "executions_per_second": stat("average_exec_per_sec"),
              "coverage": int(cov[-1][0]) if cov else 0, "features": int(cov[-1][1]) if cov else 0,
              "corpus": len(os.listdir(f"{w}/{n}/corpus")), "findings": findings, "exit_status": status,
              "commit": commit, "date": day}
rows = []
for n in sorted(out):
    o = out[n]
    rows.append(f"| {n} | {o['seconds']} | {o['executions']} | {o['executions_per_second']} | {o['coverage']} | "
                f"{o['features']} | {o['corpus']} | {', '.join(o['findings']) or 'none'} | "
                f"{o.get('commit', '?')} | {o.get('date', '?')} |")
md = ["# Fuzzing the readers (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer)", "",
      "Command: `make fuzz && FUZZ_SECONDS=<seconds> TARGETS=2 bench/fuzz.sh [target ...]` (clang-14;",
      "targets in `fuzz/`, seeds in `fuzz/corpus/`). seconds: how long that row's run lasted (the",
      "first finding stops it); coverage: libFuzzer's edge count at the end; findings: inputs that",
      "crashed, hung (> 10 s), leaked or ran out of memory (> 3 GB); commit, date: when the row was",
      "run.", "",
      "| target | seconds | executions | exec/s | coverage | features | corpus | findings | commit | date |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + rows
if os.path.exists("bench/fuzz_findings.md"):
    md += ["", open("bench/fuzz_findings.md").read().rstrip()]
open("bench/results/fuzz.md", "w").write("\n".join(md) + "\n")
json.dump(out, open("bench/results/fuzz.json", "w"), indent=1)
print("\n".join(md))
PY
