#!/usr/bin/env bash
# libtorch 2.x (PyPI, build/) against Debian's 1.13 (build-debian/) on the same work in one
# sitting, alternated PAIRS times: the squeeze training step (the authors' teacher recipe,
# batch 256, 12,800 Fashion-MNIST images, 1 epoch) and a student's training (train, 20 epochs
# on a store made once by the 2.x build). Needs both builds (make build; make build
# TORCH=debian) and the cores to itself. Writes bench/results/torch-versions.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-2}
w=bench/work/torch-versions
rm -rf $w && mkdir -p $w
declare -A bin=([2.x]=build/lpld [1.13]=build-debian/lpld)
# Inputs of the train runs, made once: a teacher, 10 images per class, labels for 20 epochs.
L=build/lpld
$L --quiet squeeze --data fashion-mnist:train@6400 --val fashion-mnist:test@2000 --epochs 1 \
  --out $w/teacher.safetensors >/dev/null
$L --quiet recover --teacher $w/teacher.safetensors --ipc 10 --iterations 50 --out $w/images >/dev/null
$L --quiet relabel --teacher $w/teacher.safetensors --images $w/images --epochs 20 \
  --out $w/labels.lpld >/dev/null
for i in $(seq 1 $PAIRS); do
  for v in 2.x 1.13; do
    ${bin[$v]} --quiet squeeze --data fashion-mnist:train@12800 --epochs 1 --batch-size 256 \
      --crop-scale-min 0.5 --out $w/t-$v-$i.safetensors --json $w/squeeze-$v-$i.json >/dev/null
    ${bin[$v]} --quiet train --images $w/images --labels $w/labels.lpld --val fashion-mnist:test@2000 \
      --epochs 20 --out $w/s-$v-$i --json $w/train-$v-$i.json >/dev/null
  done
done
python3 - $w $PAIRS <<'PY'
import json, sys, statistics as st
w, pairs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, pairs + 1):
    for v in ("2.x", "1.13"):
        s = json.load(open(f"{w}/squeeze-{v}-{i}.json")); t = json.load(open(f"{w}/train-{v}-{i}.json"))
        rows.append({"libtorch": s["runtime"]["libtorch"], "build": v, "run": i,
                     "squeeze_step_img_s": s["step_images_per_second"],
                     "train_img_s": t["images_per_second"], "train_seconds": t["train_seconds"],
                     "runtime": s["runtime"]})
json.dump(rows, open("bench/results/torch-versions.json", "w"), indent=1)
med = lambda v, k: st.median(r[k] for r in rows if r["build"] == v)
with open("bench/results/torch-versions.md", "w") as f:
    f.write("# libtorch 2.x vs 1.13, same work, one sitting (bench/torch_versions.sh)\n\n")
    f.write("| libtorch | run | squeeze step img/s | train img/s | BLAS | allocator |\n|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['libtorch']} | {r['run']} | {r['squeeze_step_img_s']:.0f} | {r['train_img_s']:.0f} | "
                f"{r['runtime']['blas']} | {r['runtime']['allocator']['name']} |\n")
    f.write(f"\nMedian ratio 2.x / 1.13: squeeze step {med('2.x','squeeze_step_img_s')/med('1.13','squeeze_step_img_s'):.2f}x, "
            f"train {med('2.x','train_img_s')/med('1.13','train_img_s'):.2f}x.\n")
print(open("bench/results/torch-versions.md").read())
PY
