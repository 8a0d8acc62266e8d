# Tabulates bench/labels_frontier.sh: per data set and method, total label bytes (by part),
# compression against the 1x fp16 store, and student top-1 (mean +- std over seeds); plots
# top-1 against label bytes, one line per method. Usage: python3 ... bench/work/frontier
import glob, json, os, re, statistics as st, subprocess, sys

w = sys.argv[1]
out, md, plots = {}, ["# Soft-label storage frontier: pruning, quantization, LPQLD training", "",
       "Command: `LPLD_CIFAR10=DIR bench/labels_frontier.sh`. Class-mode images and teacher of lpld's",
       "defaults; relabel E 300 B 20; students convnet-d3-w64, recipe `small`, 3 seeds (mean ± std).",
       "Bytes: the whole store (header, values, quantization parameters, indices, per-step digest",
       "and checksum); compression against the 1× fp16 store of the same run. Methods: `prune` is",
       "LPLD's random pruning (fp16 logits); `quant-*` quantize every step's labels (int8/int4 with a",
       "scale and offset per row, top-k: LPQLD's MR-k); `prune+*` both; `dkr-ca`: LPQLD's step",
       "temperature schedule (20 · 0.7^(e // 30), ≥ 2) and searched student temperature; `fbNN`:",
       "NN % of the training steps render a pruned step's views, labelled from each image's whole-view",
       "labels (`relabel --image-labels`, one row per image in the store's codec, counted in the bytes;",
       "`train --fallback-share`); `TNN`: student temperature NN; `even`: the pool used evenly",
       "(`--granularity batch`); `lpqld-top2`: LPQLD's recipe (top-2 fp16 logits, DKR and CA).", ""], []
for setdir in sorted(glob.glob(f"{w}/*/")):
    set_ = os.path.basename(setdir.rstrip("/"))
    rows = []
    for store in sorted(glob.glob(f"{setdir}labels/*.lpld")):
        name, r = re.match(r".*/(.+)-r([0-9.]+)\.lpld$", store).groups()
        info = json.load(open(store + ".json"))
        runs = [json.load(open(f)) for f in glob.glob(f"{setdir}runs/{name}-r{r}-s*.json")]
        if not runs:
            continue
        top1 = [x["top1"] for x in runs]
        b = info["bytes"]
        rows.append({"method": name, "prune_ratio": float(r), "bytes": b, "total": b["total"],
                     "compression": b["compression_vs_fp16_1x"],
                     "relabel_seconds": info["seconds"], "top1": top1,
                     "mean": st.mean(top1), "std": st.stdev(top1) if len(top1) > 1 else 0.0})
    if rows:
        out[set_] = rows
# Rows measured before (the committed JSON) stay unless this work folder measured the same
# (set, method, ratio) again: a partial run (SETS/METHODS/RATIOS) adds to the table.
old = "bench/results/labels-frontier.json"
if os.path.exists(old):
    for set_, rows in json.load(open(old)).items():
        new = {(x["method"], x["prune_ratio"]) for x in out.get(set_, [])}
        out[set_] = [x for x in rows if (x["method"], x["prune_ratio"]) not in new] + out.get(set_, [])
for set_, rows in sorted(out.items()):
    setdir = f"{w}/{set_}/"
    os.makedirs(setdir, exist_ok=True)
    md += [f"## {set_}", "", "| method | prune ratio | label bytes | compression | values | params | indices | image labels | student top-1 | relabel s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in sorted(rows, key=lambda x: (x["method"], x["prune_ratio"])):
        b = x["bytes"]
        md.append(f"| {x['method']} | {x['prune_ratio']:g} | {x['total']} | {x['compression']:.1f}x | {b['values']} | "
                  f"{b['quantization_params']} | {b['indices']} | {b.get('image_labels', 0)} | {x['mean']:.2f} ± {x['std']:.2f} | {x['relabel_seconds']:.1f} |")
    md.append("")
    plots.append(set_)
    dat = ""
    for m in sorted({x["method"] for x in rows}):
        pts = sorted((x["total"], x["mean"]) for x in rows if x["method"] == m)
        dat += f"# {m}\n" + "\n".join(f"{t} {v}" for t, v in pts) + "\n\n\n"
    open(f"{setdir}plot.dat", "w").write(dat)
findings = "bench/labels_frontier_findings.md"
if os.path.exists(findings):
    md += [open(findings).read().rstrip()]
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/labels-frontier.json", "w"), indent=1)
open("bench/results/labels-frontier.md", "w").write("\n".join(md) + "\n")
if plots:
    gp = "set terminal pngcairo size 1400,500\nset output 'bench/results/labels-frontier.png'\n"
    gp += f"set multiplot layout 1,{len(plots)}\nset logscale x\nset xlabel 'label bytes'\nset ylabel 'student top-1 (%)'\nset key bottom right font ',8'\n"
    # one colour and point type per method in every panel (not its index within the panel)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"]
    every = sorted({x["method"] for rows in out.values() for x in rows})
    style = {m: f"lc rgb '{palette[k % len(palette)]}' pt {k % 13 + 1}" for k, m in enumerate(every)}
    for p in plots:
        methods = sorted({x["method"] for x in out[p]})
        series = ", ".join(f"'{w}/{p}/plot.dat' index {i} with linespoints {style[m]} title '{m}'"
                           for i, m in enumerate(methods))
        gp += f"set title '{p}'\nplot {series}\n"
    subprocess.run(["gnuplot"], input=gp.encode(), check=True)
print("\n".join(md))
