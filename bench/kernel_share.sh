#!/usr/bin/env bash
# Kernel (system) time per stage at batch 256 (issue #28's first target: <= 5 % of each stage's
# wall time at 28, 32 and 64 px). Each stage is one process timed by /usr/bin/time: wall,
# user, sys, peak RSS; sys share = sys / wall, CPU busy = (user + sys) / wall. 28 px:
# Fashion-MNIST (12,800 train images); 32 and 64 px: 20 classes x 640 RGB images from
# bench/scale_data.py. squeeze 1 epoch at batch 256 (teacher convnet-d3-w64), recover IPC 30 x
# 50 iterations, relabel E 100 at batch 256, train 20 epochs on an E 20 store (batch 256);
# `lpld --version` for the fixed cost of starting a process (loading libtorch).
# Writes bench/results/kernel-share.{md,json}. Usage: bench/kernel_share.sh
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=$(realpath ${LPLD:-./build/lpld})
w=bench/work/kernel-share
mkdir -p $w
for s in 32 64; do
  [ -d $w/data$s ] || { /usr/bin/python3 bench/scale_data.py $w/data$s.tmp 20 640 $s 20 >/dev/null && mv $w/data$s.tmp $w/data$s; }
done
declare -A data=([28]="fashion-mnist:train@12800" [32]="imagefolder:$w/data32/train --val imagefolder:$w/data32/val"
                 [64]="imagefolder:$w/data64/train --val imagefolder:$w/data64/val")
declare -A val=([28]="" [32]="--val imagefolder:$w/data32/val" [64]="--val imagefolder:$w/data64/val")
: > $w/runs.jsonl
timed() {  # SIZE STAGE CMD...
  local size=$1 stage=$2; shift 2
  /usr/bin/time -o $w/t.json -f '{"wall": %e, "user": %U, "sys": %S, "peak_rss_kb": %M}' "$@" > /dev/null
  python3 -c "import json; t=json.load(open('$w/t.json')); t.update(size=$size, stage='$stage'); print(json.dumps(t))" >> $w/runs.jsonl
}
timed 0 startup "$lpld" --version  # the fixed cost of a process: loading libtorch
for s in 28 32 64; do
  d=$w/s$s; rm -rf $d; mkdir -p $d
  timed $s squeeze "$lpld" --quiet squeeze --data ${data[$s]} --epochs 1 --batch-size 256 --out $d/t.pt
  timed $s recover "$lpld" --quiet recover --teacher $d/t.pt --ipc 30 --iterations 50 --out $d/img
  timed $s relabel "$lpld" --quiet relabel --teacher $d/t.pt --images $d/img --epochs 100 --batch-size 256 --out $d/l.lpld
  "$lpld" --quiet relabel --teacher $d/t.pt --images $d/img --epochs 20 --batch-size 256 --out $d/l20.lpld >/dev/null
  timed $s train "$lpld" --quiet train --images $d/img --labels $d/l20.lpld --epochs 20 ${val[$s]} --out $d/student
done
python3 - $w/runs.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
md = ["# Kernel time per stage at batch 256 (bench/kernel_share.sh)", "",
      "2 cores, 2 threads, lpld's jemalloc (decay off). One process per stage, /usr/bin/time;",
      "startup: `lpld --version` (loading libtorch), part of every row's sys.", "",
      "| px | stage | wall s | user s | sys s | sys / wall | CPU busy | peak RSS MB |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in rows:
    md.append("| %d | %s | %.1f | %.1f | %.2f | %.1f%% | %.2f | %d |" % (r["size"], r["stage"], r["wall"], r["user"], r["sys"],
              100 * r["sys"] / r["wall"], (r["user"] + r["sys"]) / r["wall"], r["peak_rss_kb"] // 1024))
worst = max((r for r in rows if r["stage"] != "startup"), key=lambda r: r["sys"] / r["wall"])
md += ["", "Largest sys share: %s at %d px, %.1f%% (target <= 5%%)." % (worst["stage"], worst["size"], 100 * worst["sys"] / worst["wall"])]
open("bench/results/kernel-share.md", "w").write("\n".join(md) + "\n")
json.dump(rows, open("bench/results/kernel-share.json", "w"), indent=1)
print("\n".join(md))
PY
