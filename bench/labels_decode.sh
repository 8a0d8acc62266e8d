#!/usr/bin/env bash
# What decoding a label codec costs a training epoch (issue #30's target: <= 5 %). One
# Fashion-MNIST IPC 10 image set and teacher (bench/labels_frontier.sh's fmnist-ipc10 base,
# made if missing); one unpruned store per codec (E 100, batch 20); a 100-epoch student on each,
# RUNS rounds (default 5) with the codecs interleaved. train_seconds from each run's JSON (the training
# loop alone, evaluation excluded); the median per codec and its ratio to fp16's.
# Writes bench/results/labels-decode.{md,json}. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=${LPLD:-./build/lpld}
runs=${RUNS:-5}
w=bench/work/labels-decode
base=bench/work/frontier/fmnist-ipc10/base
[ -f $base/teacher.safetensors ] || SETS=fmnist-ipc10 METHODS=none NO_REPORT=1 bench/labels_frontier.sh
images=$base/images/class-ipc10
mkdir -p $w
codecs="fp16 int8 int4-max int2-max fp16-top2"
for c in $codecs; do
  [ -f $w/$c.lpld ] && continue
  opts="--logits ${c%-top2}"
  [[ $c == *-top2 ]] && opts+=" --topk 2"
  "$lpld" --quiet relabel --teacher $base/teacher.safetensors --images $images --epochs 100 \
    --batch-size 20 $opts --out $w/$c.lpld > /dev/null
done
: > $w/runs.jsonl
for r in $(seq $runs); do
  for c in $codecs; do
    rm -rf $w/run
    "$lpld" --quiet train --images $images --labels $w/$c.lpld --val fashion-mnist:test@1000 \
      --recipe small --epochs 100 --seed 0 --out $w/run --json $w/r.json > /dev/null
    python3 -c "import json; j=json.load(open('$w/r.json')); print(json.dumps({'codec':'$c','run':$r,'train_seconds':j['train_seconds']}))" >> $w/runs.jsonl
  done
done
python3 - $w/runs.jsonl "$runs" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
codecs = list(dict.fromkeys(r["codec"] for r in rows))
med = {c: statistics.median(r["train_seconds"] for r in rows if r["codec"] == c) for c in codecs}
md = ["# What decoding a label codec costs a training epoch", "",
      f"Command: `bench/labels_decode.sh` (RUNS={sys.argv[2]}, codecs interleaved; 2 cores, nothing else running).",
      "Fashion-MNIST IPC 10 (bench/labels_frontier.sh's images and teacher), unpruned stores of E 100,",
      "batch 20; a 100-epoch `convnet-d3-w64` student (recipe `small`) on each. Training-loop seconds",
      "(`train_seconds`: evaluation excluded) per run.", "",
      "| codec | train seconds per run | median | vs fp16 |", "| --- | --- | --- | --- |"]
for c in codecs:
    per = ", ".join(f"{r['train_seconds']:.2f}" for r in rows if r["codec"] == c)
    md.append(f"| {c} | {per} | {med[c]:.2f} | {med[c] / med['fp16']:.3f} |")
open("bench/results/labels-decode.md", "w").write("\n".join(md) + "\n")
json.dump({"runs": rows, "median": med}, open("bench/results/labels-decode.json", "w"), indent=1)
print("\n".join(md))
PY
