#!/usr/bin/env bash
# Re-run time after a SIGKILL (issue: nothing lost): each stage runs WHOLE times uninterrupted
# (default 3; T is the median wall time, since one run on this machine can be 1.24x off the
# next: bench/results/relabel-spread.md), then 3 times killed at a fixed fraction f of T and
# re-run to completion. The re-run must take at most the remaining work plus one checkpoint
# interval plus the fixed start-up: (1 - f) T + interval + startup + setup, where startup =
# wall - the stage's own seconds and setup = the stage's setup_seconds (inputs, model: before
# its first unit of work), both of the median whole run, since every run pays them again.
# Outputs are compared byte for byte with the median whole run's, and the whole runs with each
# other. Fashion-MNIST, the teacher and images of bench/labels_frontier.sh's fmnist-ipc10 base
# (made when missing).
# Writes bench/results/resume-time.{md,json}. About 15 min.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=$(realpath ${LPLD:-./build/lpld})
w=$(pwd)/bench/work/resume-time
b=$(pwd)/bench/work/frontier/fmnist-ipc10/base
[ -f $b/teacher.safetensors ] || SETS=fmnist-ipc10 METHODS=none bench/labels_frontier.sh
whole_runs=${WHOLE:-3}
rm -rf $w && mkdir -p $w
img=$b/images/class-ipc10
[ -f $w/labels.lpld ] || "$lpld" --quiet relabel --teacher $b/teacher.safetensors --images $img \
  --epochs 300 --batch-size 20 --out $w/labels.lpld > /dev/null
# name | interval (what one checkpoint is worth, as a fraction of the work) | output to compare | args
stages=(
  "squeeze|0.5|out|squeeze --data fashion-mnist:train --val fashion-mnist:test --recipe small --epochs 2"
  "recover|0.1667|out|recover --teacher $b/teacher.safetensors --ipc 10 --iterations 600 --checkpoint-every 100"
  "relabel|0.001|out|relabel --teacher $b/teacher.safetensors --images $img --epochs 1000 --batch-size 20"
  "train|0.0833|out/student.safetensors|train --images $img --labels $w/labels.lpld --val fashion-mnist:test --recipe small --epochs 300 --checkpoint-every 25"
)
field() {  # field FILE KEY: a number from a stage's JSON result
  /usr/bin/python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}
fracs=(0.23 0.51 0.78)  # the kill points, fixed so a re-run of the bench kills at the same places
same() {  # the outputs of two runs: files byte for byte, folders by their PNGs
  if [ -f "$1" ]; then cmp -s "$1" "$2"; else
    (cd "$1" && find . -name '*.png' | sort | xargs sha1sum) > $w/a.sum
    (cd "$2" && find . -name '*.png' | sort | xargs sha1sum) > $w/b.sum
    cmp -s $w/a.sum $w/b.sum && [ -s $w/a.sum ]
  fi
}
echo '[' > $w/rows.json
first=1
for s in "${stages[@]}"; do
  IFS='|' read -r name interval cmp_path args <<< "$s"
  d=$w/$name && walls=()
  for i in $(seq $whole_runs); do
    mkdir -p $d/whole-$i && t0=$(date +%s.%N)
    (cd $d/whole-$i && "$lpld" --quiet $args --out out --json whole.json > /dev/null)
    walls+=("$(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc)") $i")  # (bc drops the leading 0)
  done
  sorted=$(printf '%s\n' "${walls[@]}" | sort -n)  # "seconds run" lines, fastest first
  read -r T m <<< "$(sed -n "$(((whole_runs + 1) / 2))p" <<< "$sorted")"
  all_walls=$(cut -d' ' -f1 <<< "$sorted" | paste -sd,)
  wholes_same=true
  for i in $(seq $whole_runs); do same $d/whole-$m/$cmp_path $d/whole-$i/$cmp_path || wholes_same=false; done
  ln -sfn whole-$m $d/whole
  work=$(field $d/whole/whole.json seconds) setup=$(field $d/whole/whole.json setup_seconds)
  for f in "${fracs[@]}"; do
    k=$d/kill-$f && mkdir -p $k
    kill_at=$(printf '%.3f' "$(echo "$T * $f" | bc)")
    (cd $k && timeout -s KILL $kill_at "$lpld" --quiet $args --out out > /dev/null 2>&1) || true
    t0=$(date +%s.%N)
    (cd $k && "$lpld" --quiet $args --out out --json rerun.json > /dev/null)
    R=$(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc)")
    ok=false; same $d/whole/$cmp_path $k/$cmp_path && ok=true
    [ $first = 1 ] || echo ',' >> $w/rows.json; first=0
    rs=$(field $k/rerun.json setup_seconds)
    printf '{"stage": "%s", "whole": %s, "whole_runs": [%s], "wholes_identical": %s, "work": %s, "setup": %s, "interval": %s, "kill_fraction": %s, "rerun": %s, "rerun_setup": %s, "identical": %s}\n' \
      $name $T $all_walls $wholes_same $work $setup $interval $f $R $rs $ok >> $w/rows.json
  done
done
echo ']' >> $w/rows.json
/usr/bin/python3 - $w/rows.json <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
md = ["# Re-run time after SIGKILL", "",
      "Command: `bench/resume_time.sh` (Fashion-MNIST, 2 threads). Each stage runs whole "
      f"{len(rows[0]['whole_runs'])} times; T is the",
      "median wall time. Then the stage is killed at 0.23 / 0.51 / 0.78 of T and re-run to completion.",
      "Bound: (1 - f) T + one checkpoint interval (as a share of the stage's own seconds) + start-up",
      "(T minus the stage's own seconds) + set-up (setup_seconds: inputs and model, before the first",
      "unit of work), both of the median whole run. Output identical: the re-run's output against",
      "the median whole run's, byte for byte; the whole runs are also compared with each other.", "",
      "| stage | whole runs s | T s | set-up s (whole / re-run) | kill at | re-run s | bound s | within | output identical |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in rows:
    startup = r["whole"] - r["work"]
    r["bound"] = (1 - r["kill_fraction"]) * r["whole"] + r["interval"] * r["work"] + startup + r["setup"]
    r["within"] = r["rerun"] <= r["bound"]
    runs = " / ".join(f"{x:.1f}" for x in r["whole_runs"]) + ("" if r["wholes_identical"] else " (differ!)")
    md.append(f"| {r['stage']} | {runs} | {r['whole']:.1f} | {r['setup']:.1f} / {r['rerun_setup']:.1f} | "
              f"{r['kill_fraction']:.2f} | {r['rerun']:.1f} | {r['bound']:.1f} | "
              f"{'yes' if r['within'] else 'NO'} | {'yes' if r['identical'] else 'NO'} |")
md += open("bench/resume_time_findings.md").read().rstrip("\n").split("\n")
json.dump(rows, open("bench/results/resume-time.json", "w"), indent=1)
open("bench/results/resume-time.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
