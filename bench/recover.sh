#!/usr/bin/env bash
# recover on Fashion-MNIST: IPC 10, 1000 iterations, both modes, official per-batch
# augmentation and batch = IPC (the issue's reference: 128 s per mode in PyTorch, one class
# at a time), then packing K = 1, 2, 5, 10. Needs a teacher: bench/squeeze.sh first (or
# TEACHER=path). Writes bench/results/recover.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
teacher=${TEACHER:-bench/work/squeeze/reference.safetensors}
out=bench/work/recover; rm -rf "$out"; mkdir -p "$out" bench/results
for mode in class mixed; do
  ./build/lpld --quiet recover --teacher "$teacher" --ipc 10 --iterations 1000 --mode $mode \
    --pack 1 --out "$out/$mode" --json "$out/$mode.json"
done
for k in 2 5 10; do
  ./build/lpld --quiet recover --teacher "$teacher" --ipc 10 --iterations 1000 --mode class \
    --pack $k --out "$out/class-pack$k" --json "$out/class-pack$k.json"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
rows = []
for name in ["class", "mixed", "class-pack2", "class-pack5", "class-pack10"]:
    r = json.load(open(f"{d}/{name}.json"))
    rows.append((name, r))
json.dump({n: r for n, r in rows}, open("bench/results/recover.json", "w"), indent=2)
md = ["# recover: Fashion-MNIST, IPC 10, 1000 iterations (2 cores)", "",
      "Command: `bench/recover.sh` (teacher: the reference recipe of bench/squeeze.sh).", "",
      "| run | pack | seconds | unit-it/s | image-it/s | speed-up vs PyTorch 128 s | teacher top-1 on images |",
      "| --- | --- | --- | --- | --- | --- | --- |"]
for n, r in rows:
    md.append(f"| {n} | {r['pack']} | {r['seconds']:.1f} | {r['iterations_per_second']:.1f} | "
              f"{r['image_iterations_per_second']:.0f} | {128 / r['seconds']:.2f}x | {r['teacher_top1']:.1f}% |")
md += ["", "PyTorch reference from the issue: 128 s per mode (788 image-iterations/s, batch 10, one class at a time)."]
open("bench/results/recover.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
