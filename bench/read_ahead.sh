#!/usr/bin/env bash
# What reading ahead gains on the CPU (issue: an input pipeline that keeps up): a student's
# training with each step's images and stored labels read inline (--read-ahead 0, the CPU's
# default) and two steps ahead on a helper thread (--read-ahead 2, a GPU's), alternated PAIRS times in one
# sitting on the same store. `input_wait_seconds` is the time the steps waited for their inputs
# (inline: all of the input work); compute = train_seconds - input_wait_seconds.
# Fashion-MNIST, IPC 10 (SIZE=28) by default; needs `make build` and the cores to itself.
# Writes bench/results/read-ahead.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-3} EPOCHS=${EPOCHS:-30}
L=build/lpld
w=bench/work/read-ahead
rm -rf $w && mkdir -p $w
$L --quiet squeeze --data fashion-mnist:train@6400 --val fashion-mnist:test@2000 --epochs 1 \
  --out $w/teacher.safetensors >/dev/null
$L --quiet recover --teacher $w/teacher.safetensors --ipc 10 --iterations 50 --out $w/images >/dev/null
$L --quiet relabel --teacher $w/teacher.safetensors --images $w/images --epochs $EPOCHS \
  --out $w/labels.lpld >/dev/null
for i in $(seq 1 $PAIRS); do
  for ahead in 0 2; do
    $L --quiet train --images $w/images --labels $w/labels.lpld --val fashion-mnist:test@2000 \
      --epochs $EPOCHS --read-ahead $ahead --out $w/s-$ahead-$i --json $w/train-$ahead-$i.json >/dev/null
  done
done
.venv/bin/python - $w $PAIRS <<'PY'
import json, sys, statistics as st
w, pairs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, pairs + 1):
    for ahead in (0, 2):
        t = json.load(open(f"{w}/train-{ahead}-{i}.json"))
        rows.append({"read_ahead": ahead, "run": i, "train_seconds": t["train_seconds"],
                     "input_wait_seconds": t["input_wait_seconds"], "top1": t["top1"],
                     "runtime": t["runtime"]})
json.dump(rows, open("bench/results/read-ahead.json", "w"), indent=1)
med = lambda a, k: st.median(r[k] for r in rows if r["read_ahead"] == a)
with open("bench/results/read-ahead.md", "w") as f:
    f.write("# Reading a student's inputs ahead of its steps (bench/read_ahead.sh)\n\n")
    f.write("Fashion-MNIST IPC 10, convnet-d3-w64 student, batch 20, one sitting, 2 CPU cores.\n\n")
    f.write("| --read-ahead | run | train s | steps waited for inputs s | compute s | top-1 |\n"
            "|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['read_ahead']} | {r['run']} | {r['train_seconds']:.2f} | "
                f"{r['input_wait_seconds']:.2f} | {r['train_seconds'] - r['input_wait_seconds']:.2f} | "
                f"{r['top1']:.2f} |\n")
    inline, ahead = med(0, "train_seconds"), med(2, "train_seconds")
    f.write(f"\nMedians: inline {inline:.2f} s (input {med(0, 'input_wait_seconds'):.2f} s), "
            f"read ahead {ahead:.2f} s (waiting {med(2, 'input_wait_seconds'):.2f} s): "
            f"{inline / ahead:.2f}x. The same top-1 in every run: "
            f"{len(set(r['top1'] for r in rows)) == 1}.\n")
print(open("bench/results/read-ahead.md").read())
PY
