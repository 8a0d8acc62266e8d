#!/usr/bin/env bash
# A recover split over processes writes the bytes of one run (issue 29, item 5): for each mode,
# a whole run, then `--classes 0:1` and `--classes 1:10` into one folder, at the default
# settings (1000 iterations, IPC 10, automatic packing) on a Fashion-MNIST teacher; every PNG
# compared byte for byte. Needs `make build` and the cores to itself (~10 min on 2 cores).
# Writes bench/results/recover-split.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
L=build/lpld
w=bench/work/recover-split
if [ -z "${REPORT_ONLY:-}" ]; then  # REPORT_ONLY=1: only the tables, from the last runs
rm -rf $w && mkdir -p $w
$L --quiet squeeze --data fashion-mnist:train@2000 --epochs 1 --out $w/teacher.safetensors >/dev/null
for mode in class mixed; do
  $L --quiet recover --teacher $w/teacher.safetensors --mode $mode --out $w/whole-$mode \
    --json $w/whole-$mode.json >/dev/null
  $L --quiet recover --teacher $w/teacher.safetensors --mode $mode --out $w/split-$mode \
    --classes 0:1 --json $w/split-$mode-0.json >/dev/null
  $L --quiet recover --teacher $w/teacher.safetensors --mode $mode --out $w/split-$mode \
    --classes 1:10 --json $w/split-$mode-1.json >/dev/null
done
fi
.venv/bin/python - $w <<'PY'
import json, pathlib, sys
w = pathlib.Path(sys.argv[1])
rows = []
for mode in ("class", "mixed"):
    png = lambda d: {p.relative_to(d): p.read_bytes() for p in d.rglob("*.png")}
    a, b = png(w / f"whole-{mode}"), png(w / f"split-{mode}")
    runs = {k: json.load(open(w / f"{f}-{mode}{s}.json"))
            for k, f, s in (("whole", "whole", ""), ("split0", "split", "-0"),
                            ("split1", "split", "-1"))}
    rows.append({"mode": mode, "pngs_whole": len(a), "pngs_split": len(b),
                 "identical": sum(a[k] == b.get(k) for k in a),
                 **{f"{k}_seconds": r["seconds"] for k, r in runs.items()},
                 **{f"{k}_units_optimized": r["units_optimized"] for k, r in runs.items()},
                 **{f"{k}_units_outside": r["units_outside"] for k, r in runs.items()},
                 "runtime": runs["whole"].get("runtime")})
json.dump(rows, open("bench/results/recover-split.json", "w"), indent=1)
with open("bench/results/recover-split.md", "w") as f:
    f.write("# recover split by --classes vs one run (bench/recover_split.sh)\n\n")
    f.write("Fashion-MNIST teacher (convnet-d3-w64, 2000 images, 1 epoch), recover at its "
            "defaults (IPC 10, 1000 iterations, automatic packing), 2 CPU cores.\n\n")
    f.write("| mode | PNGs (whole / split) | byte-identical | whole s | 0:1 s (units made / outside) "
            "| 1:10 s (units made / outside) |\n|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['mode']} | {r['pngs_whole']} / {r['pngs_split']} | {r['identical']} "
                f"| {r['whole_seconds']:.1f} | {r['split0_seconds']:.1f} "
                f"({r['split0_units_optimized']} / {r['split0_units_outside']}) "
                f"| {r['split1_seconds']:.1f} ({r['split1_units_optimized']} / "
                f"{r['split1_units_outside']}) |\n")
print(open("bench/results/recover-split.md").read())
PY
