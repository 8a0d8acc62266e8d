#!/usr/bin/env bash
# relabel on Fashion-MNIST IPC 10 (100 images), E = 300, B = 20, CutMix: seconds and bytes
# at R = 0, 0.9, 0.975, against the official one-file-per-batch format. Needs the class-mode
# images of bench/recover.sh. Writes bench/results/relabel.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
teacher=${TEACHER:-bench/work/squeeze/reference.safetensors}
images=${IMAGES:-bench/work/recover/class}
out=bench/work/relabel; rm -rf "$out"; mkdir -p "$out" bench/results
for r in 0 0.9 0.975; do
  ./build/lpld --quiet relabel --teacher "$teacher" --images "$images" --epochs 300 --batch-size 20 \
    --prune-ratio $r --out "$out/r$r.lpld" --json "$out/r$r.json"
done
for fb in 20 40 100 320; do
  ./build/lpld --quiet relabel --teacher "$teacher" --images "$images" --epochs 300 --batch-size 20 \
    --forward-batch $fb --out "$out/fb$fb.lpld" --json "$out/fb$fb.json"
done
batch_bytes=$(/usr/bin/python3 bench/reference/official_batch_bytes.py 20 10)
/usr/bin/python3 - "$out" "$batch_bytes" <<'PY'
import json, sys
d, batch_bytes = sys.argv[1], int(sys.argv[2])
rows = {r: json.load(open(f"{d}/r{r}.json")) for r in ["0", "0.9", "0.975"]}
fb = {f: json.load(open(f"{d}/fb{f}.json")) for f in ["20", "40", "100", "320"]}
json.dump({"ratios": rows, "forward_batch": fb, "official_batch_file_bytes": batch_bytes},
          open("bench/results/relabel.json", "w"), indent=2)
md = ["# relabel: Fashion-MNIST IPC 10 (100 images), E = 300, B = 20, CutMix (2 cores)", "",
      "Command: `bench/relabel.sh`.", "",
      "| R | steps kept | seconds | views/s | label bytes | logits | metadata | metadata / logits | official format bytes | official / lpld |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r, x in rows.items():
    official = x["steps_kept"] * batch_bytes
    md.append(f"| {r} | {x['steps_kept']} / {x['total_steps']} | {x['seconds']:.2f} | {x['views_per_second']:.0f} | "
              f"{x['label_bytes']} | {x['logit_bytes']} | {x['metadata_bytes']} | {100*x['metadata_bytes']/x['logit_bytes']:.1f}% | "
              f"{official} | {official / x['label_bytes']:.1f}x |")
md += ["", f"Synthetic image set: {rows['0']['image_bytes']} bytes (PNG).",
       f"Official format: one `torch.save` file per batch of {batch_bytes} bytes (measured with python3-torch:"
       " crop coords, flips, CutMix index/lambda/box, fp16 logits), times the kept steps; file-system blocks not counted.",
       "", "Teacher forward batch (several label batches per forward), R = 0:", "",
       "| forward batch | seconds | views/s |", "| --- | --- | --- |"]
for f, x in fb.items():
    md.append(f"| {f} | {x['seconds']:.2f} | {x['views_per_second']:.0f} |")
md += ["", "Official code on this machine (issue): 20.8 s at 1x (1521 images/s)."]
open("bench/results/relabel.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
