#!/usr/bin/env bash
# bf16 autocast on the CPU against float32: Fashion-MNIST students (convnet-d3-w64, the small
# recipe, 300 epochs) trained from one demo run's images and 1x label store, SEEDS seeds each,
# with --amp off and --amp bf16 --channels-last. Needs `make demo` first (RUN=runs/demo) and the
# cores to itself. Writes bench/results/amp-cpu.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/demo}
SEEDS=${SEEDS:-"0 1 2"}
L=${BUILD:-build}/lpld
images=$(ls -d $RUN/images/*/ | head -1)
labels=$(ls $RUN/labels/*-r0.lpld 2>/dev/null | head -1 || true)  # the 1x store
[ -n "$labels" ] || labels=$(ls $RUN/labels/*.lpld | head -1)
w=bench/work/amp-cpu
rm -rf $w && mkdir -p $w
for s in $SEEDS; do
  for amp in off bf16; do
    extra=(); [ $amp = bf16 ] && extra=(--channels-last)
    $L --quiet train --images "$images" --labels "$labels" --val fashion-mnist:test \
      --recipe small --arch convnet-d3-w64 --seed $s --amp $amp "${extra[@]}" \
      --out $w/$amp-s$s --json $w/$amp-s$s.json >/dev/null
  done
done
python3 - $w "$SEEDS" "$images" "$labels" <<'PY'
import json, sys, statistics as st
w, seeds, images, labels = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
rows = [dict(amp=a, seed=int(s), **{k: json.load(open(f"{w}/{a}-s{s}.json"))[k]
        for k in ("top1", "train_seconds", "images_per_second")}) for s in seeds for a in ("off", "bf16")]
json.dump({"images": images, "labels": labels, "rows": rows}, open("bench/results/amp-cpu.json", "w"), indent=1)
m = {a: [r["top1"] for r in rows if r["amp"] == a] for a in ("off", "bf16")}
sp = {a: st.median(r["images_per_second"] for r in rows if r["amp"] == a) for a in ("off", "bf16")}
with open("bench/results/amp-cpu.md", "w") as f:
    f.write(f"# bf16 autocast on the CPU (bench/amp_cpu.sh)\n\nStudents from `{images}` with `{labels}`.\n\n")
    f.write("| amp | seed | top-1 | train s | img/s |\n|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['amp']} | {r['seed']} | {r['top1']:.2f} | {r['train_seconds']:.1f} | {r['images_per_second']:.0f} |\n")
    sd = lambda v: st.stdev(v) if len(v) > 1 else 0.0
    f.write(f"\nfloat32 {st.mean(m['off']):.2f} +- {sd(m['off']):.2f}, bf16 {st.mean(m['bf16']):.2f} +- {sd(m['bf16']):.2f} "
            f"(difference {st.mean(m['bf16']) - st.mean(m['off']):+.2f} points); median speed bf16 / float32 {sp['bf16']/sp['off']:.2f}x.\n")
print(open("bench/results/amp-cpu.md").read())
PY
