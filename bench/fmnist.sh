#!/usr/bin/env bash
# The paper's comparison on Fashion-MNIST (issue: reproduce at small scale). Runs
# configs/fmnist-paper.yaml through `lpld pipeline` (resumable: re-run to continue), the
# rule-based pruning metrics at IPC 10 and 40x / 100x (paper Table 5), `lpld analyze` for
# within-class similarity (Table 1), and writes bench/results/fmnist.{md,json,png}.
# Unattended; about 1.5 h on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
w=bench/work/fmnist
config=${CONFIG:-bench/configs/fmnist-paper.yaml}
./build/lpld --quiet pipeline --config "$config" --out $w > /dev/null
# Table 5: rule-based pruning against random, class mode, IPC 10.
for rule in correct diff diff_signed cut_ratio confidence; do
  for side in easy hard; do
    for r in 0.975 0.99; do
      for seed in 0 1 2; do
        ./build/lpld --quiet train --images $w/images/class-ipc10 --labels $w/labels/class-ipc10-r0.lpld \
          --val fashion-mnist:test --arch convnet-d3-w64 --epochs 300 --prune-ratio $r \
          --metric ${rule}_$side --seed $seed --out $w/rules/${rule}_$side-r$r-s$seed > /dev/null
      done
    done
  done
done
# Table 1: within-class similarity of the teacher's penultimate features.
for mode in class mixed; do
  for ipc in 10 50; do
    [ -d $w/images/$mode-ipc$ipc ] || continue
    ./build/lpld --quiet analyze --model $w/teacher.safetensors --images $w/images/$mode-ipc$ipc \
      --real fashion-mnist:train --json $w/analyze-$mode-ipc$ipc.json > /dev/null
  done
done
/usr/bin/python3 bench/fmnist_report.py $w "$config"
