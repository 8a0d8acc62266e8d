#!/usr/bin/env bash
# Fuzzes every reader (fuzz/, built by `make fuzz`: libFuzzer, ASan, UBSan) for FUZZ_SECONDS
# each (default 3600), TARGETS at a time in parallel (default 1: with 2, each runs on its own
# core), growing a corpus under bench/work/fuzz/ from the committed seeds; records executions,
# coverage and findings (crash, leak, timeout, out-of-memory inputs) in bench/results/fuzz.{md,json}.
# Usage: FUZZ_SECONDS=3600 TARGETS=2 bench/fuzz.sh [target ...]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-3600}
parallel=${TARGETS:-1}
w=bench/work/fuzz
mkdir -p $w bench/results
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for t in fuzz/fuzz_*.cpp; do n=$(basename "$t" .cpp); names+=("${n#fuzz_}"); done
fi
run_one() {
  local name=$1
  mkdir -p $w/$name/corpus $w/$name/findings
  LSAN_OPTIONS=suppressions=fuzz/lsan.supp build-fuzz/fuzz_$name -max_total_time=$seconds -timeout=10 -rss_limit_mb=3000 \
    -print_final_stats=1 -artifact_prefix=$w/$name/findings/ $w/$name/corpus fuzz/corpus/$name \
    > $w/$name/log.txt 2>&1
  echo $? > $w/$name/status
}
active=0
for name in "${names[@]}"; do
  run_one "$name" &
  active=$((active + 1))
  if [ $active -ge $parallel ]; then wait -n; active=$((active - 1)); fi
done
wait
/usr/bin/python3 - "$seconds" "${names[@]}" <<'PY'
import json, os, re, sys
seconds, names = int(sys.argv[1]), sys.argv[2:]
w = "bench/work/fuzz"
rows, out = [], {}
for n in names:
    log = open(f"{w}/{n}/log.txt", errors="replace").read()
    stat = lambda k: int(re.findall(rf"stat::{k}:\s*(\d+)", log)[-1]) if re.findall(rf"stat::{k}:\s*(\d+)", log) else 0
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    findings = sorted(os.listdir(f"{w}/{n}/findings"))
    status = int(open(f"{w}/{n}/status").read())
    out[n] = {"seconds": seconds, "executions": stat("number_of_executed_units"),
              "executions_per_second": stat("average_exec_per_sec"),
              "coverage": int(cov[-1][0]) if cov else 0, "features": int(cov[-1][1]) if cov else 0,
              "corpus": len(os.listdir(f"{w}/{n}/corpus")), "findings": findings, "exit_status": status}
    o = out[n]
    rows.append(f"| {n} | {seconds} | {o['executions']} | {o['executions_per_second']} | {o['coverage']} | "
                f"{o['features']} | {o['corpus']} | {', '.join(findings) or 'none'} |")
md = ["# Fuzzing the readers (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer)", "",
      f"Command: `make fuzz && FUZZ_SECONDS={seconds} bench/fuzz.sh` (clang-14; targets in `fuzz/`,",
      "seeds in `fuzz/corpus/`). coverage: libFuzzer's edge count at the end; findings: inputs that",
      "crashed, hung (> 10 s), leaked or ran out of memory (> 3 GB).", "",
      "| target | seconds | executions | exec/s | coverage | features | corpus | findings |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |"] + rows
if os.path.exists("bench/fuzz_findings.md"):
    md += ["", open("bench/fuzz_findings.md").read().rstrip()]
open("bench/results/fuzz.md", "w").write("\n".join(md) + "\n")
json.dump(out, open("bench/results/fuzz.json", "w"), indent=1)
print("\n".join(md))
PY
