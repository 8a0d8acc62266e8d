#!/usr/bin/env bash
# The student table of the pipeline issue: Fashion-MNIST IPC 10, class vs mixed mode,
# 1x / 10x / 40x, 5 student seeds, in the reference setting; then what a better teacher and
# per-image recover augmentation buy at 40x. Writes bench/results/pipeline.{json,md}.
# Runs are reused when their outputs exist (bench/work/pipeline-*), so it resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
for c in reference better-teacher per-image; do
  ./build/lpld --quiet pipeline --config bench/configs/fmnist-$c.yaml --out bench/work/pipeline-$c > /dev/null
done
# Within-class similarity of the reference setting's two image sets (teacher features).
for m in class mixed; do
  ./build/lpld --quiet analyze --model bench/work/pipeline-reference/teacher.safetensors \
    --images bench/work/pipeline-reference/images/$m-ipc10 --real fashion-mnist:train \
    --json bench/work/pipeline-reference/analyze-$m.json > /dev/null
done
/usr/bin/python3 - <<'PY'
import json, statistics as st
out, md = {}, ["# pipeline: Fashion-MNIST, IPC 10, convnet-d3-w64 teacher and student (2 cores)", "",
               "Command: `bench/pipeline.sh` (configs in `bench/configs/`). Student top-1 (%), mean ± std over 5 seeds.", ""]
ref = {("class", 0): "78.96 ± 0.47", ("class", 0.9): "76.59 ± 1.87", ("class", 0.975): "74.08 ± 2.27",
       ("mixed", 0): "76.86 ± 1.27", ("mixed", 0.9): "74.46 ± 1.07", ("mixed", 0.975): "70.82 ± 0.78"}
def cell(runs):
    v = [r["student_top1"] for r in runs]
    return f"{st.mean(v):.2f} ± {st.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"
for name in ["reference", "better-teacher", "per-image"]:
    s = json.load(open(f"bench/work/pipeline-{name}/summary.json"))
    out[name] = s
    md += [f"## {name}: teacher top-1 {s['teacher']['top1']:.2f}%", "",
           "| mode | labels | label bytes | lpld | authors' code in PyTorch (issue) | student s/run |", "| --- | --- | --- | --- | --- | --- |"]
    groups = {}
    for r in s["runs"]:
        groups.setdefault((r["mode"], r["prune_ratio"]), []).append(r)
    for (mode, ratio), runs in sorted(groups.items()):
        secs = st.mean(r["seconds"] for r in runs)
        md.append(f"| {mode} | {1/(1-ratio):g}x | {runs[0]['label_bytes']} | {cell(runs)} | "
                  f"{ref.get((mode, ratio), '') if name == 'reference' else ''} | {secs:.1f} |")
    sec = s["seconds"]
    md += ["", f"Compute seconds: squeeze {sec['squeeze']:.0f}, recover {sec['recover']:.0f}, relabel {sec['relabel']:.0f}, "
           f"train {sec['train']:.0f}, total {sec['total']:.0f}.", ""]
md += ["## Within-class similarity, reference setting", "",
       "Mean pairwise cosine similarity of the teacher's penultimate features within a class (`lpld analyze`; lower = more diverse).", "",
       "| image set | synthetic | real (same count per class) |", "| --- | --- | --- |"]
for m in ["class", "mixed"]:
    a = json.load(open(f"bench/work/pipeline-reference/analyze-{m}.json"))
    out[f"analyze-{m}"] = a
    md.append(f"| {m} | {a['synthetic_similarity']:.4f} | {a['real_similarity']:.4f} |")
json.dump(out, open("bench/results/pipeline.json", "w"), indent=2)
open("bench/results/pipeline.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
