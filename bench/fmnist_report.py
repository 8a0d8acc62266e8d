# Builds bench/results/fmnist.{json,md,png} from the outputs of bench/fmnist.sh.
# Usage: /usr/bin/python3 bench/fmnist_report.py bench/work/fmnist
import functools, glob, json, os, statistics as st, subprocess, sys

w = sys.argv[1]
config = sys.argv[2] if len(sys.argv) > 2 else "bench/configs/fmnist-paper.yaml"
s = json.load(open(f"{w}/summary.json"))
ratios = [0, 0.9, 0.95, 0.975, 0.99]
def ms(v):
    return (st.mean(v), st.stdev(v) if len(v) > 1 else 0.0) if v else (float("nan"), 0.0)
cells = {}
for r in s["runs"]:
    cells.setdefault((r["mode"], r["ipc"], r["prune_ratio"]), []).append(r)
out = {"summary": s, "cells": [], "rules": [], "similarity": {}}
for (mode, ipc, ratio), runs in sorted(cells.items()):
    m, sd = ms([r["student_top1"] for r in runs])
    out["cells"].append({"mode": mode, "ipc": ipc, "prune_ratio": ratio, "top1_mean": m, "top1_std": sd,
                         "label_bytes": runs[0]["label_bytes"], "image_bytes": runs[0]["image_bytes"],
                         "seconds_per_run": st.mean(r["seconds"] for r in runs), "seeds": len(runs)})
def cell(mode, ipc, ratio):
    for c in out["cells"]:
        if (c["mode"], c["ipc"], c["prune_ratio"]) == (mode, ipc, ratio):
            return c
md = ["# The paper's comparison on Fashion-MNIST (convnet-d3-w64 teacher and student, 2 cores)", "",
      f"Command: `CONFIG={config} bench/fmnist.sh`. Teacher top-1 {s['teacher']['top1']:.2f}%.",
      "Student top-1 (%) on the real test set, mean ± std over 3 student seeds (one synthetic set and one",
      "label store per cell; seeds vary the student's init and the label-pool draws).", "",
      "## Student accuracy against label pruning (paper Tables 2-3)", "",
      "| mode | IPC | 1x | 10x | 20x | 40x | 100x | online labels |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for mode in ["class", "mixed"]:
    for ipc in [10, 50]:
        row = [mode + (" (LPLD)" if mode == "class" else " (SRe2L)"), str(ipc)]
        for r in ratios + [-1.0]:
            c = cell(mode, ipc, r)
            row.append(f"{c['top1_mean']:.2f} ± {c['top1_std']:.2f}" if c else "")
        md.append("| " + " | ".join(row) + " |")
missing = [f"{m} IPC {i}" for m in ["class", "mixed"] for i in [10, 50] if cell(m, i, 0) is None]
if missing:
    md += ["", f"**Not run yet:** {', '.join(missing)} (this config covers only part of the grid).", ""]
# Cost of a cell: its label store's relabel seconds (costs.json) and its student runs; the image
# set's recover seconds (sum over its class.json files) are shared by the cells of a row group.
costs = json.load(open(f"{w}/costs.json")) if os.path.exists(f"{w}/costs.json") else {}
@functools.lru_cache(maxsize=None)  # one image set serves the 6 cells of a mode and IPC
def recover_seconds(mode, ipc):
    return sum(json.load(open(f))["seconds"] for f in glob.glob(f"{w}/images/{mode}-ipc{ipc}/*/class.json"))
md += ["", "## Storage and cost per cell", "",
       "Seconds on this machine (2 cores). recover: the cell's image set, shared by the 6 cells of that",
       "mode and IPC; relabel: the cell's label store; cell = relabel + all its student runs.", "",
       "| mode | IPC | labels | label bytes | image bytes | labels / images | recover s | relabel s | s per student run | cell s |",
       "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for c in out["cells"]:
    lab = "online" if c["prune_ratio"] < 0 else f"{1/(1-c['prune_ratio']):g}x"
    c["recover_seconds"] = recover_seconds(c["mode"], c["ipc"])
    c["relabel_seconds"] = 0.0 if c["prune_ratio"] < 0 else costs.get(
        f"{w}/labels/{c['mode']}-ipc{c['ipc']}-r{c['prune_ratio']:g}.lpld", float("nan"))
    c["cell_seconds"] = c["relabel_seconds"] + c["seconds_per_run"] * c["seeds"]
    md.append(f"| {c['mode']} | {c['ipc']} | {lab} | {c['label_bytes']} | {c['image_bytes']} | "
              f"{c['label_bytes']/c['image_bytes']:.2f} | {c['recover_seconds']:.0f} | {c['relabel_seconds']:.1f} | "
              f"{c['seconds_per_run']:.1f} | {c['cell_seconds']:.0f} |")
sec = s["seconds"]
sec_total = sec["total"]
md += ["", f"Compute seconds of all cells: squeeze {sec['squeeze']:.0f}, recover {sec['recover']:.0f}, "
       f"relabel {sec['relabel']:.0f}, train {sec['train']:.0f}, total {sec['total']:.0f}.", ""]
# Table 1: similarity
md += ["## Within-class similarity (paper Table 1)", "",
       "Mean pairwise cosine similarity of the teacher's penultimate features within each class (lower = more diverse);",
       "real: the same number of training images per class.", "",
       "| mode | IPC | synthetic | real sample | teacher top-1 on synthetic |", "| --- | --- | --- | --- | --- |"]
for mode in ["class", "mixed"]:
    for ipc in [10, 50]:
        p = f"{w}/analyze-{mode}-ipc{ipc}.json"
        if os.path.exists(p):
            a = json.load(open(p))
            out["similarity"][f"{mode}-ipc{ipc}"] = a
            md.append(f"| {mode} | {ipc} | {a['synthetic_similarity']:.4f} | {a['real_similarity']:.4f} | {a['synthetic_top1']:.1f}% |")
# Table 5: rules. Seeds: 3 at 40x, 10 at 100x (bench/fmnist.sh); random's come from the pipeline
# runs (seeds 0-2) and rules/random-* (seeds 3-9).
def seeds_of(pattern):
    v = []
    for seed in range(20):
        p = pattern.format(seed=seed)
        if os.path.exists(p):
            v.append(json.load(open(p))["top1"])
    return v
def fmt(v):
    m, sd = ms(v)
    return f"{m:.2f} ± {sd:.2f} (n={len(v)})" if v else ""
md += ["", "## Rule-based pruning against random (paper Table 5; class mode, IPC 10)", "",
       "Student top-1 (%), mean ± std over n student seeds; the pool has the same size for every metric",
       "(floor((1-R) S) steps): random keeps the first steps, a rule the steps that score highest (easy)",
       "or lowest (hard) over all S steps of the full store.", "",
       "| metric | 40x easy | 40x hard | 100x easy | 100x hard |", "| --- | --- | --- | --- | --- |"]
rand = {r: [x["student_top1"] for x in s["runs"] if (x["mode"], x["ipc"], x["prune_ratio"]) == ("class", 10, r)]
        + seeds_of(f"{w}/rules/random-r{r}-s{{seed}}/result.json") for r in [0.975, 0.99]}
out["rules"].append({"rule": "random", "prune_ratio": 0.975, "top1": rand[0.975]})
out["rules"].append({"rule": "random", "prune_ratio": 0.99, "top1": rand[0.99]})
md.append(f"| random | {fmt(rand[0.975])} | | {fmt(rand[0.99])} | |")
for rule in ["correct", "diff", "diff_signed", "cut_ratio", "confidence"]:
    row = [rule]
    for r in ["0.975", "0.99"]:
        for side in ["easy", "hard"]:
            v = seeds_of(f"{w}/rules/{rule}_{side}-r{r}-s{{seed}}/result.json")
            out["rules"].append({"rule": rule, "side": side, "prune_ratio": float(r), "top1": v})
            row.append(fmt(v))
    md.append("| " + " | ".join(row) + " |")
rule_secs = [json.load(open(p))["seconds"] for p in glob.glob(f"{w}/rules/*/result.json")]
out["rules_seconds"] = sum(rule_secs)
md += ["", f"Cost: {len(rule_secs)} student runs, {sum(rule_secs):.0f} s ({st.mean(rule_secs):.1f} s each). "
       f"Whole bench: {sec_total + sum(rule_secs):.0f} s of compute ({(sec_total + sum(rule_secs))/3600:.2f} h; "
       "the pipeline cells above plus these runs; `lpld analyze` adds seconds)."]
if os.path.exists(f"{w}/rules-check.json"):
    rc = json.load(open(f"{w}/rules-check.json"))
    out["rules_check"] = rc
    sel = rc["selection_checked"]
    bad = [c for c in sel if not c["match"]]
    md += ["", "### Checking the rule-based runs (bench/fmnist_rules_check.py)", "",
           f"- Pools: for {len(sel)} runs that report their pool, the steps `lpld train` chose equal the ranking of",
           "  scores recomputed with numpy from the label store and the step descriptions of `lpld labels steps`"
           + (": all match." if not bad else f": {len(bad)} differ (largest score spread among the differing steps "
              f"{max(c['tie_spread'] for c in bad):.2e}, i.e. float ties)."),
           "- The pruned stores the random baseline trains on hold the first steps of the full store the rules rank: "
           "max |logit difference| " + ", ".join(f"{v:g} at R {k}" for k, v in rc["store_prefix_max_abs_diff"].items()) + ".",
           "", "What each pool holds (means over its steps; `pasted` = fraction of each image replaced by CutMix,",
           "after clipping; teacher statistics at T = 1; all steps: "
           + ", ".join(f"{k} {v:.3f}" for k, v in rc["all_steps"].items() if isinstance(v, float)) + "):", "",
           "| R | pool | top-1 | lambda | pasted | teacher max prob | entropy | teacher correct | distinct images |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in rc["pools"]:
        md.append(f"| {1/(1-p['prune_ratio']):.0f}x | {p['metric']} | {fmt(p['top1'])} | {p['lambda']:.3f} | {p['pasted']:.3f} | "
                  f"{p['max_prob']:.3f} | {p['entropy']:.3f} | {p['teacher_correct']:.3f} | {p['distinct_images']} |")
    md += ["", "Spearman correlation across pools between a pool property and mean student top-1: "
           + "; ".join(f"{1/(1-float(r)):.0f}x: " + ", ".join(f"{k} {v:+.2f}" for k, v in c.items())
                       for r, c in rc["spearman_with_top1"].items()) + "."]
# Where the claim holds (computed from the numbers above)
md += ["", "## Does class-wise synthesis make random pruning nearly free here?", ""]
for ipc in [10, 50]:
    c1, c40, m1, m40 = cell("class", ipc, 0), cell("class", ipc, 0.975), cell("mixed", ipc, 0), cell("mixed", ipc, 0.975)
    if all([c1, c40, m1, m40]):
        md.append(f"- IPC {ipc}: going from 1x to 40x loses {c1['top1_mean']-c40['top1_mean']:.2f} points in class mode "
                  f"and {m1['top1_mean']-m40['top1_mean']:.2f} in mixed mode; at 40x class mode leads mixed mode by "
                  f"{c40['top1_mean']-m40['top1_mean']:+.2f} points (1x: {c1['top1_mean']-m1['top1_mean']:+.2f}).")
# The reading of these numbers, written by hand after a run (kept next to this script so that
# regenerating the tables does not lose it; update it when the numbers change).
if os.path.exists("bench/fmnist_findings.md"):
    md += ["", open("bench/fmnist_findings.md").read().rstrip()]
json.dump(out, open("bench/results/fmnist.json", "w"), indent=2)
open("bench/results/fmnist.md", "w").write("\n".join(md) + "\n")
# Figure 1: top-1 against total storage, one line per mode (and IPC) that has results.
dat = f"{w}/plot.dat"
series = []
with open(dat, "w") as f:
    for mode in ["class", "mixed"]:
        for ipc in [10, 50]:
            pts = [cell(mode, ipc, r) for r in ratios]
            pts = [c for c in pts if c]
            if not pts:
                continue
            for c in pts:
                f.write(f"{(c['label_bytes'] + c['image_bytes'])/1e6} {c['top1_mean']} {c['top1_std']}\n")
            f.write("\n\n")
            series.append(f"{mode} ({'LPLD' if mode == 'class' else 'SRe2L'}) IPC {ipc}")
plots = ", ".join(f"'{dat}' index {i} with yerrorlines title '{t}'" for i, t in enumerate(series))
gp = f"""set terminal pngcairo size 900,600
set output 'bench/results/fmnist.png'
set logscale x
set xlabel 'total storage: images + labels (MB)'
set ylabel 'student top-1 (%)'
set title 'Fashion-MNIST: student accuracy against storage (points: 100x, 40x, 20x, 10x, 1x labels)'
set key bottom right
plot {plots}
"""
subprocess.run(["gnuplot"], input=gp.encode(), check=True)
print("\n".join(md))
