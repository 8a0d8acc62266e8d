#!/usr/bin/env bash
# lpld beside the authors' code on the same work, the same PyTorch and the same allocator
# (issue 28, item 3). The authors' code is the CPU port in ../shared/reference/official-harness
# (OFFICIAL overrides; run from there, never copied), at its SCALE=small: Fashion-MNIST, teacher
# convnet-d3-w64 1 epoch at batch 256, recover 100 iterations per mode (class, mixed), relabel
# E 300 B 20 at R 0 / 0.9 / 0.975, students 30 epochs, seed 0. It runs under this project's
# .venv Python (the PyTorch lpld builds against) with jemalloc preloaded at the setting lpld
# compiles in (dirty/muzzy decay off: bench/results/allocator.md), 2 threads each.
# lpld runs the same stages with the same settings, one process per stage as the harness does.
# Process wall seconds per stage. Needs `make build` and the cores to itself (~6 min).
# Writes bench/results/official-side-by-side.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OFFICIAL=${OFFICIAL:-$ROOT/../shared/reference/official-harness}
PY=$ROOT/.venv/bin/python
JEMALLOC=${JEMALLOC:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
L=$ROOT/build/lpld
w=$ROOT/bench/work/side-by-side
export OMP_NUM_THREADS=2
if [ -z "${REPORT_ONLY:-}" ]; then  # REPORT_ONLY=1: only the tables, from the last runs
rm -rf $w && mkdir -p $w/lpld

# the authors' code
# (PyTorch >= 2.6 loads checkpoints weights-only by default, which the harness's checkpoints,
# holding numpy scalars, do not pass: PyTorch's own switch restores the old default.)
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 \
LD_PRELOAD=$JEMALLOC MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 SCALE=small PY=$PY \
  THREADS=2 bash "$OFFICIAL/run_all.sh" $w/official > $w/official.log 2>&1

# lpld, stage by stage
: > $w/lpld/wall.tsv
stage() {  # NAME ARGS...
  local name=$1; shift
  local t0=$(date +%s.%N)
  $L --quiet --threads 2 "$@" --json $w/lpld/$name.json > $w/lpld/$name.log 2>&1
  echo -e "$name\t$(echo "$(date +%s.%N) - $t0" | bc)" >> $w/lpld/wall.tsv
}
stage squeeze squeeze --data fashion-mnist:train --val fashion-mnist:test --arch convnet-d3-w64 \
  --epochs 1 --batch-size 256 --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --crop-scale-min 0.5 \
  --out $w/lpld/teacher.safetensors
for mode in class mixed; do
  stage recover_$mode recover --teacher $w/lpld/teacher.safetensors --mode $mode --ipc 10 \
    --iterations 100 --lr 0.25 --r-bn 0.01 --jitter 2 --out $w/lpld/syn_$mode
  for r in 0 0.9 0.975; do
    stage relabel_${mode}_r$r relabel --teacher $w/lpld/teacher.safetensors \
      --images $w/lpld/syn_$mode --epochs 300 --batch-size 20 --prune-ratio $r \
      --out $w/lpld/labels_${mode}_r$r.lpld
    pool=()  # the harness trains on order/epoch at R = 0 and random/batch_to_epoch below
    [ $r = 0 ] && pool=(--granularity epoch --metric order)
    stage validate_${mode}_r${r}_s0 train --images $w/lpld/syn_$mode \
      --labels $w/lpld/labels_${mode}_r$r.lpld --val fashion-mnist:test --epochs 30 \
      --prune-ratio $r "${pool[@]}" --seed 0 --out $w/lpld/student_${mode}_r$r
  done
done
fi

$PY - $w <<'PY'
import json, sys
w = sys.argv[1]
off = json.load(open(f"{w}/official/timings.json"))
lp = dict(l.split("\t") for l in open(f"{w}/lpld/wall.tsv").read().split("\n") if l)
rows = []
for name, secs in off["process_wall_s"].items():
    rows.append({"stage": name, "official_s": secs, "lpld_s": float(lp[name]),
                 "ratio": secs / float(lp[name])})
acc = {}
for name in lp:
    if name.startswith("validate"):
        acc[name] = json.load(open(f"{w}/lpld/{name}.json"))["top1"]
teacher = json.load(open(f"{w}/lpld/squeeze.json"))["top1"]
group = lambda p: (sum(r["official_s"] for r in rows if r["stage"].startswith(p)),
                   sum(r["lpld_s"] for r in rows if r["stage"].startswith(p)))
out = {"rows": rows, "official_torch": off["machine"].get("torch"),
       "official_accuracies": off["accuracies"], "lpld_student_top1": acc, "lpld_teacher_top1": teacher,
       "lpld_runtime": json.load(open(f"{w}/lpld/squeeze.json")).get("runtime")}
json.dump(out, open("bench/results/official-side-by-side.json", "w"), indent=1)
with open("bench/results/official-side-by-side.md", "w") as f:
    f.write("# lpld beside the authors' code (bench/official_side_by_side.sh)\n\n")
    f.write(f"Same work (the harness's SCALE=small), same PyTorch ({off['machine'].get('torch')}), "
            "jemalloc for both (decay off), 2 threads, one process per stage; process wall seconds.\n\n")
    f.write("| stage | authors' code s | lpld s | lpld speed-up |\n|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['stage']} | {r['official_s']:.1f} | {r['lpld_s']:.1f} | {r['ratio']:.2f}x |\n")
    for p in ("squeeze", "recover", "relabel", "validate", ""):
        o, l = group(p)
        f.write(f"| **{p or 'all'}** | {o:.1f} | {l:.1f} | {o / l:.2f}x |\n")
    f.write(f"\nTeacher top-1: authors' {off['accuracies']['teacher']}, lpld {teacher:.2f}. "
            f"Students (seed 0): authors' {json.dumps(off['accuracies'])}; lpld "
            f"{json.dumps({k: round(v, 2) for k, v in acc.items()})}.\n")
print(open("bench/results/official-side-by-side.md").read())
PY
