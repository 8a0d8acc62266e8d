#!/usr/bin/env bash
# relabel on the CPU, a forward per core (each on one thread) against the forwards split over
# the cores op by op (the code before, given as OLD_PIP / OLD_DEBIAN binaries of an earlier
# commit). Two workloads: 1000 classes of 32 px (bench/scale.sh's IPC 10 relabel, E 2, batch
# 100) and Fashion-MNIST IPC 10 (E 300, batch 20: the demo's relabel). RUNS runs of each
# binary at --threads 1 and 2, interleaved; views/s from each run's JSON; whether the stores of
# 1 and 2 threads are the same bytes. Writes bench/results/relabel-cores.{md,json}.
# Usage: OLD_PIP=/tmp/bold/lpld OLD_DEBIAN=/tmp/bold-deb/lpld bench/relabel_cores.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
w=bench/work/relabel-cores
mkdir -p $w
declare -A bins=([new-pip]=$(realpath build/lpld))
[ -x build-debian/lpld ] && bins[new-debian]=$(realpath build-debian/lpld)
[ -n "${OLD_PIP:-}" ] && bins[old-pip]=$(realpath "$OLD_PIP")
[ -n "${OLD_DEBIAN:-}" ] && bins[old-debian]=$(realpath "$OLD_DEBIAN")
lpld=${bins[new-pip]}
if [ ! -d $w/data ]; then
  rm -rf $w/data.tmp && /usr/bin/python3 bench/scale_data.py $w/data.tmp 1000 10 32 2 >/dev/null && mv $w/data.tmp $w/data
fi
[ -f $w/t1000.pt ] || $lpld --quiet squeeze --data imagefolder:$w/data/train \
  --val imagefolder:$w/data/val --arch convnet-d2-w16 --epochs 3 --batch-size 100 --out $w/t1000.pt >/dev/null
[ -d $w/img1000 ] || $lpld --quiet recover --teacher $w/t1000.pt --ipc 10 --iterations 4 \
  --stall-restarts 0 --out $w/img1000 >/dev/null
[ -f $w/tfm.pt ] || $lpld --quiet squeeze --data fashion-mnist:train@12800 --epochs 1 \
  --batch-size 256 --out $w/tfm.pt >/dev/null
[ -d $w/imgfm ] || $lpld --quiet recover --teacher $w/tfm.pt --ipc 10 --iterations 100 --out $w/imgfm >/dev/null
declare -A args=([c1000]="--teacher $w/t1000.pt --images $w/img1000 --epochs 2 --batch-size 100"
                 [fmnist]="--teacher $w/tfm.pt --images $w/imgfm --epochs 300 --batch-size 20")
: > $w/runs.jsonl
for r in $(seq $runs); do
  for load in c1000 fmnist; do
    for name in "${!bins[@]}"; do
      for t in 1 2; do
        out=$w/$name-$load-t$t.lpld
        rm -f $out
        ${bins[$name]} --quiet --threads $t relabel ${args[$load]} --out $out --json $w/r.json >/dev/null
        python3 -c "import json,sys; j=json.load(open('$w/r.json')); print(json.dumps({'binary':'$name','load':'$load','threads':$t,'run':$r,'views_per_second':j['views_per_second'],'seconds':j['seconds']}))" >> $w/runs.jsonl
      done
    done
  done
done
same=""
for name in "${!bins[@]}"; do for load in c1000 fmnist; do
  cmp -s $w/$name-$load-t1.lpld $w/$name-$load-t2.lpld && s=true || s=false
  same+="$name $load $s;"
done; done
python3 - "$w/runs.jsonl" "$same" "$runs" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
same = {tuple(x.split()[:2]): x.split()[2] == "true" for x in sys.argv[2].split(";") if x}
keys = sorted({(r["load"], r["binary"], r["threads"]) for r in rows})
med = {k: statistics.median(r["views_per_second"] for r in rows if (r["load"], r["binary"], r["threads"]) == k) for k in keys}
md = ["# relabel on the CPU: a forward per core", "",
      "Command: `OLD_PIP=... OLD_DEBIAN=... bench/relabel_cores.sh` (RUNS=%s, interleaved; 2 cores)." % sys.argv[3],
      "c1000: 1000 classes of 32 px, IPC 10, convnet-d2-w16, E 2, batch 100 (bench/scale.sh's relabel);",
      "fmnist: Fashion-MNIST IPC 10, E 300, batch 20 (the demo's relabel). new = a forward per core,",
      "old = the commit before (c7c8c2e: each forward's ops split over the cores). views/s per run.", "",
      "| load | binary | threads | views/s per run | median | vs old same build, 2 threads | store at 1 and 2 threads |",
      "| --- | --- | --- | --- | --- | --- | --- |"]
for k in keys:
    load, b, t = k
    runs = [r["views_per_second"] for r in rows if (r["load"], r["binary"], r["threads"]) == k]
    ref = med.get((load, "old-" + b.split("-")[1], 2))
    ratio = "%.2fx" % (med[k] / ref) if ref and t == 2 else ""
    md.append("| %s | %s | %d | %s | %.0f | %s | %s |" % (load, b, t, " / ".join("%.0f" % v for v in runs), med[k], ratio,
              "same bytes" if same.get((b, load)) else "differ"))
open("bench/results/relabel-cores.md", "w").write("\n".join(md) + "\n")
json.dump({"runs": rows, "same_bytes_at_1_and_2_threads": {"%s %s" % k: v for k, v in same.items()}},
          open("bench/results/relabel-cores.json", "w"), indent=1)
print("\n".join(md))
PY
