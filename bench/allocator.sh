#!/usr/bin/env bash
# The heap allocator's share of a training step (issue: "stop paying the kernel for every
# activation"): the same squeeze run (the authors' teacher recipe at batch 256 on 12,800
# Fashion-MNIST images, 1 epoch) with lpld as built (jemalloc, decay off: src/core/runtime.cpp),
# with jemalloc at its own default decay (MALLOC_CONF), and relinked without jemalloc (glibc
# with lpld's mallopt tuning), alternated PAIRS times in one sitting. Needs the cores to
# itself. Writes bench/results/allocator.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}
PAIRS=${PAIRS:-3}
w=bench/work/allocator
rm -rf $w && mkdir -p $w
# The glibc variant: lpld's own link command without libjemalloc.
(cd $B && eval "$(ninja -t commands lpld | tail -1 | sed 's| [^ ]*libjemalloc[^ ]*||g; s|-o lpld |-o lpld-glibc |')")
run() {  # name binary [env...]
  local name=$1 bin=$2 i=$3; shift 3
  env "$@" /usr/bin/time -f '{"wall": %e, "user": %U, "sys": %S, "maxrss_kb": %M}' -o $w/$name-$i.time \
    $bin squeeze --data fashion-mnist:train@12800 --epochs 1 --batch-size 256 \
    --crop-scale-min 0.5 --out $w/t-$name-$i.safetensors --quiet --json $w/$name-$i.json >/dev/null
}
for i in $(seq 1 $PAIRS); do
  run glibc $B/lpld-glibc $i
  run jemalloc $B/lpld $i
  run jemalloc-default-decay $B/lpld $i MALLOC_CONF=dirty_decay_ms:10000,muzzy_decay_ms:0
done
python3 - $w $PAIRS <<'PY'
import json, sys, os
w, pairs = sys.argv[1], int(sys.argv[2])
rows = []
for name in ["glibc", "jemalloc", "jemalloc-default-decay"]:
    for i in range(1, pairs + 1):
        r = json.load(open(f"{w}/{name}-{i}.json")); t = json.load(open(f"{w}/{name}-{i}.time"))
        rows.append({"allocator": name, "run": i, "step_img_per_s": r["step_images_per_second"],
                     "train_seconds": r["train_seconds"], "wall": t["wall"], "user": t["user"],
                     "sys": t["sys"], "sys_share": t["sys"] / t["wall"], "maxrss_mb": t["maxrss_kb"] / 1024,
                     "runtime": r["runtime"]})
os.makedirs("bench/results", exist_ok=True)
json.dump(rows, open("bench/results/allocator.json", "w"), indent=1)
with open("bench/results/allocator.md", "w") as f:
    f.write("# Heap allocator: squeeze, 12,800 FMNIST images, batch 256, 1 epoch (bench/allocator.sh)\n\n")
    f.write(f"libtorch {rows[0]['runtime']['libtorch']}, {rows[0]['runtime']['threads']} threads, "
            f"BLAS {rows[0]['runtime']['blas']}. Runs alternated in one sitting.\n\n")
    f.write("| allocator | run | step img/s | train s | wall s | user s | sys s | sys share | peak RSS MB |\n")
    f.write("|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['allocator']} | {r['run']} | {r['step_img_per_s']:.0f} | {r['train_seconds']:.1f} | "
                f"{r['wall']:.1f} | {r['user']:.1f} | {r['sys']:.2f} | {100*r['sys_share']:.1f}% | {r['maxrss_mb']:.0f} |\n")
    import statistics as st
    med = {n: st.median([r["step_img_per_s"] for r in rows if r["allocator"] == n]) for n in ["glibc", "jemalloc", "jemalloc-default-decay"]}
    f.write(f"\nMedian step rate: jemalloc (lpld's setting) / glibc = {med['jemalloc']/med['glibc']:.2f}x; "
            f"jemalloc at its default decay / glibc = {med['jemalloc-default-decay']/med['glibc']:.2f}x.\n")
print(open("bench/results/allocator.md").read())
PY
