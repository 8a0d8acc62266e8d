#!/usr/bin/env bash
# Re-run time after a SIGKILL (issue: nothing lost): each stage runs WHOLE times uninterrupted
# (default 3; T is the median wall time, since one run on this machine can be 1.24x off the
# next: bench/results/relabel-spread.md), then 3 times killed at a fixed fraction f of T and
# re-run to completion. The re-run must take at most the remaining work plus one checkpoint
# interval plus the fixed start-up: (1 - f) T + interval + startup + setup, where startup =
# wall - the stage's own seconds and setup = the stage's setup_seconds (inputs, model: before
# its first unit of work), both of the median whole run, since every run pays them again.
# Outputs are compared byte for byte with the median whole run's, and the whole runs with each
# other. Since a run's speed on this machine drifts more than a checkpoint interval, the lost
# work is also counted, not timed: every run writes a progress log (--progress-log), and a
# kill's lost work, per task, is what the killed run had done less what the re-run found done;
# it is compared with the task's checkpoint interval and priced at the median whole run's
# seconds per unit. Fashion-MNIST, the teacher and images of bench/labels_frontier.sh's
# fmnist-ipc10 base (made when missing).
# Writes bench/results/resume-time.{md,json} (bench/resume_time_report.py ROWS re-renders them
# from the runs' rows and logs). About 15-25 min.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=$(realpath ${LPLD:-./build/lpld})
w=$(pwd)/bench/work/resume-time
b=$(pwd)/bench/work/frontier/fmnist-ipc10/base
[ -f $b/teacher.safetensors ] || NO_REPORT=1 SETS=fmnist-ipc10 METHODS=none bench/labels_frontier.sh
whole_runs=${WHOLE:-3}
rm -rf $w && mkdir -p $w
img=$b/images/class-ipc10
[ -f $w/labels.lpld ] || "$lpld" --quiet relabel --teacher $b/teacher.safetensors --images $img \
  --epochs 300 --batch-size 20 --out $w/labels.lpld > /dev/null
# name | each task's checkpoint interval, as a share of the task (the first: the stage's main
# task, whose share the time bound uses; a task that saves no state loses all of itself):
# squeeze one of 2 epochs, its stats pass 500 of 600 batches of 100; recover 100 of 600
# iterations of a group of 3 of the 10 units (the automatic pack on CPU); relabel the 4 groups
# of 2 of 5,000 steps queued behind the writer; train 25 of 300 epochs |
# output to compare | args
stages=(
  "squeeze|squeeze train=0.5,class stats=0.8333,eval=1|out|squeeze --data fashion-mnist:train --val fashion-mnist:test --recipe small --epochs 2"
  "recover|recover class=0.05|out|recover --teacher $b/teacher.safetensors --ipc 10 --iterations 600 --checkpoint-every 100"
  "relabel|relabel=0.0016|out|relabel --teacher $b/teacher.safetensors --images $img --epochs 1000 --batch-size 20"
  "train|train=0.0833|out/student.safetensors|train --images $img --labels $w/labels.lpld --val fashion-mnist:test --recipe small --epochs 300 --checkpoint-every 25"
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
  IFS='|' read -r name intervals cmp_path args <<< "$s"
  interval=$(sed 's/^[^=]*=\([^,]*\).*/\1/' <<< "$intervals")  # the main task's
  d=$w/$name && walls=()
  for i in $(seq $whole_runs); do
    mkdir -p $d/whole-$i && t0=$(date +%s.%N)
    (cd $d/whole-$i && "$lpld" --quiet --progress-log whole.progress $args --out out \
      --json whole.json > /dev/null)
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
    (cd $k && timeout -s KILL $kill_at "$lpld" --quiet --progress-log killed.progress $args \
      --out out > /dev/null 2>&1) || true
    t0=$(date +%s.%N)
    (cd $k && "$lpld" --quiet --progress-log rerun.progress $args --out out --json rerun.json \
      > /dev/null)
    R=$(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc)")
    ok=false; same $d/whole/$cmp_path $k/$cmp_path && ok=true
    [ $first = 1 ] || echo ',' >> $w/rows.json; first=0
    rs=$(field $k/rerun.json setup_seconds)
    printf '{"stage": "%s", "whole": %s, "whole_runs": [%s], "wholes_identical": %s, "work": %s, "setup": %s, "interval": %s, "intervals": "%s", "kill_fraction": %s, "rerun": %s, "rerun_setup": %s, "identical": %s, "logs": ["%s", "%s", "%s"]}\n' \
      $name $T $all_walls $wholes_same $work $setup $interval "$intervals" $f $R $rs $ok \
      $d/whole/whole.progress $k/killed.progress $k/rerun.progress >> $w/rows.json
  done
done
echo ']' >> $w/rows.json
/usr/bin/python3 bench/resume_time_report.py $w/rows.json
