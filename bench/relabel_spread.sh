#!/usr/bin/env bash
# How much one uninterrupted relabel's speed varies between identical runs, and whether the
# OpenMP threads' spin-waiting is why: bench/resume_time.sh builds relabel's re-run bound on
# one whole run, and its relabel runs ranged from 4,700 to 7,400 views/s. Runs the resume-time
# bench's relabel (fmnist-ipc10 base, E = 1000, B = 20: 100,000 views) RUNS times (default 5)
# under each setting: default; OMP_WAIT_POLICY=passive (waiting OpenMP threads sleep instead of
# spinning, leaving the cores to the planning and writing threads); --threads 1.
# Writes bench/results/relabel-spread.{md,json}. About 5 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=$(realpath ${LPLD:-./build/lpld})
runs=${RUNS:-5}
b=$(pwd)/bench/work/frontier/fmnist-ipc10/base
[ -f $b/teacher.safetensors ] || NO_REPORT=1 SETS=fmnist-ipc10 METHODS=none bench/labels_frontier.sh
w=$(pwd)/bench/work/relabel-spread
rm -rf $w && mkdir -p $w bench/results
settings=("default||" "passive|OMP_WAIT_POLICY=passive|" "threads-1||--threads 1")
# Interleaved (run i of every setting, then run i+1), so a slow spell of the machine does not
# fall on one setting only.
for i in $(seq 1 $runs); do
  for s in "${settings[@]}"; do
    IFS='|' read -r name envs flags <<< "$s"
    env $envs "$lpld" --quiet $flags relabel --teacher $b/teacher.safetensors \
      --images $b/images/class-ipc10 --epochs 1000 --batch-size 20 --out $w/$name-$i.lpld \
      --json $w/$name-$i.json > /dev/null
    rm -f $w/$name-$i.lpld
  done
done
/usr/bin/python3 - $w $runs "${settings[@]}" <<'PY'
import json, statistics, sys
w, runs, settings = sys.argv[1], int(sys.argv[2]), [s.split("|") for s in sys.argv[3:]]
out = {}
md = ["# relabel: run-to-run spread of one uninterrupted run (2 cores)", "",
      f"Command: `bench/relabel_spread.sh` (RUNS={runs}, interleaved). Fashion-MNIST IPC 10, E = 1000,",
      "B = 20: 100,000 views, the relabel of `bench/resume_time.sh`. views/s of each run, in run order.", "",
      "| setting | views/s per run | median | min | max | max / min |", "| --- | --- | --- | --- | --- | --- |"]
for name, envs, flags in settings:
    v = [json.load(open(f"{w}/{name}-{i}.json"))["views_per_second"] for i in range(1, runs + 1)]
    out[name] = {"env": envs, "flags": flags, "views_per_second": v, "median": statistics.median(v)}
    md.append(f"| {name} ({envs or flags or 'as shipped'}) | {' / '.join(f'{x:.0f}' for x in v)} | "
              f"{statistics.median(v):.0f} | {min(v):.0f} | {max(v):.0f} | {max(v) / min(v):.2f} |")
json.dump(out, open("bench/results/relabel-spread.json", "w"), indent=1)
open("bench/results/relabel-spread.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
