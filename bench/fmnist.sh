#!/usr/bin/env bash
# The paper's comparison on Fashion-MNIST (issue: reproduce at small scale). Runs
# configs/fmnist-paper.yaml through `lpld pipeline` (resumable: re-run to continue), the
# rule-based pruning metrics at IPC 10 and 40x / 100x (paper Table 5), `lpld analyze` for
# within-class similarity (Table 1), and writes bench/results/fmnist.{md,json,png}.
# Unattended; about 2 h on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
w=bench/work/fmnist
config=${CONFIG:-bench/configs/fmnist-paper.yaml}
# LPLD: the binary to run (copy it elsewhere to keep building while the bench runs).
lpld=${LPLD:-./build/lpld}
"$lpld" --quiet pipeline --config "$config" --out $w > /dev/null
# Table 5: rule-based pruning against random, class mode, IPC 10; 3 student seeds at 40x and,
# because 100x came out against the paper, 10 at 100x (random's extra seeds train on the
# pipeline's pruned store, like its first 3).
rules_run() {  # metric ratio seed store
  "$lpld" --quiet train --images $w/images/class-ipc10 --labels "$4" \
    --val fashion-mnist:test --arch convnet-d3-w64 --epochs 300 --prune-ratio $2 \
    --metric $1 --seed $3 --out $w/rules/$1-r$2-s$3 > /dev/null
}
for rule in correct diff diff_signed cut_ratio confidence; do
  for side in easy hard; do
    for seed in 0 1 2; do rules_run ${rule}_$side 0.975 $seed $w/labels/class-ipc10-r0.lpld; done
    for seed in 0 1 2 3 4 5 6 7 8 9; do rules_run ${rule}_$side 0.99 $seed $w/labels/class-ipc10-r0.lpld; done
  done
done
for seed in 3 4 5 6 7 8 9; do rules_run random 0.99 $seed $w/labels/class-ipc10-r0.99.lpld; done
# Check every rule's pool against scores recomputed from the files, and describe the pools.
"$lpld" --quiet labels steps $w/labels/class-ipc10-r0.lpld --out $w/rules/steps-class-ipc10-r0.jsonl
/usr/bin/python3 bench/fmnist_rules_check.py $w
# Table 1: within-class similarity of the teacher's penultimate features.
for mode in class mixed; do
  for ipc in 10 50; do
    [ -d $w/images/$mode-ipc$ipc ] || continue
    "$lpld" --quiet analyze --model $w/teacher.safetensors --images $w/images/$mode-ipc$ipc \
      --real fashion-mnist:train --json $w/analyze-$mode-ipc$ipc.json > /dev/null
  done
done
/usr/bin/python3 bench/fmnist_report.py $w "$config"
