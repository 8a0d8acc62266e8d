#!/usr/bin/env bash
# Two processes against one (issue #13): each stage on Fashion-MNIST run as 1 process x 2
# threads and as `lpld launch -n 2` (2 processes x 1 thread, Gloo on 127.0.0.1), wall time
# from the stage's own JSON. Checks the equalities (recover images and label store byte for
# byte) and compares the students of 5 seeds each (E 300, IPC 10, the small recipe). The
# teacher and images of the 1-process runs feed the later stages of both. Writes
# bench/results/dist.{md,json}. About 15 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=$(realpath ${LPLD:-./build/lpld})
w=$(pwd)/bench/work/dist
rm -rf $w && mkdir -p $w && cd $w
SEEDS=${SEEDS:-"0 1 2 3 4"}
run() {  # run NAME EXT ARGS...: as 1 process x 2 threads (NAME-1EXT), as 2 x 1 (NAME-2EXT)
  local name=$1 ext=$2; shift 2
  "$lpld" --quiet --threads 2 "$@" --out $name-1$ext --json $name-1.json > /dev/null
  "$lpld" --quiet launch -n 2 -- "$@" --out $name-2$ext --json $name-2.json > /dev/null
}
run squeeze .safetensors squeeze --data fashion-mnist:train --val fashion-mnist:test --recipe small --epochs 2
run recover "" recover --teacher squeeze-1.safetensors --ipc 10 --iterations 300
run relabel .lpld relabel --teacher squeeze-1.safetensors --images recover-1 --epochs 300 --batch-size 20
for s in $SEEDS; do
  run train-s$s "" train --images recover-1 --labels relabel-1.lpld --val fashion-mnist:test --recipe small --seed $s
done
same_pngs() {
  diff <(cd $1 && find . -name '*.png' | sort | xargs sha1sum) \
       <(cd $2 && find . -name '*.png' | sort | xargs sha1sum) > /dev/null && echo true || echo false
}
echo "{\"recover_identical\": $(same_pngs recover-1 recover-2), \"relabel_identical\": $(cmp -s relabel-1.lpld relabel-2.lpld && echo true || echo false), \"seeds\": \"$SEEDS\"}" > checks.json
cd - > /dev/null
/usr/bin/python3 - "$w" <<'PY'
import json, statistics as st, sys, pathlib
w = pathlib.Path(sys.argv[1]); res = pathlib.Path("bench/results")
checks = json.loads((w / "checks.json").read_text())
j = lambda n: json.loads((w / f"{n}.json").read_text())
rows, out = [], {"checks": checks, "stages": {}}
for stage, key in [("squeeze", "seconds"), ("recover", "seconds"), ("relabel", "seconds")]:
    a, b = j(f"{stage}-1")[key], j(f"{stage}-2")[key]
    out["stages"][stage] = {"one_process_s": a, "two_processes_s": b, "ratio": b / a}
    rows.append((stage, a, b))
seeds = checks["seeds"].split()
t1 = [j(f"train-s{s}-1") for s in seeds]; t2 = [j(f"train-s{s}-2") for s in seeds]
a = st.median(r["seconds"] for r in t1); b = st.median(r["seconds"] for r in t2)
out["stages"]["train"] = {"one_process_s": a, "two_processes_s": b, "ratio": b / a,
                          "loop_one_s": st.median(r["train_seconds"] for r in t1),
                          "loop_two_s": st.median(r["train_seconds"] for r in t2)}
rows.append(("train (median of seeds)", a, b))
acc1 = [r["top1"] for r in t1]; acc2 = [r["top1"] for r in t2]
out["students"] = {"one_process_top1": acc1, "two_processes_top1": acc2}
out["teacher_top1"] = {"one_process": j("squeeze-1")["top1"], "two_processes": j("squeeze-2")["top1"]}
ms = lambda x: f"{st.mean(x):.2f} ± {st.stdev(x):.2f}" if len(x) > 1 else f"{x[0]:.2f}"
md = ["# Two processes against one (bench/dist.sh)", "",
      "Fashion-MNIST on this machine (2 cores): 1 process x 2 threads against `lpld launch -n 2`",
      "(2 processes x 1 thread, Gloo on 127.0.0.1). Seconds are each stage's own (its JSON).", "",
      "| stage | 1 process s | 2 processes s | ratio |", "| --- | --- | --- | --- |"]
md += [f"| {n} | {x:.1f} | {y:.1f} | {y / x:.2f} |" for n, x, y in rows]
tr = out["stages"]["train"]
md += ["", f"train's loop alone (median): {tr['loop_one_s']:.1f} s against {tr['loop_two_s']:.1f} s "
       f"({tr['loop_two_s'] / tr['loop_one_s']:.2f}).", "",
       f"- recover images byte-identical: {checks['recover_identical']}; label store byte-identical: "
       f"{checks['relabel_identical']}",
       f"- teacher top-1 (2 epochs): 1 process {out['teacher_top1']['one_process']:.2f}, "
       f"2 processes {out['teacher_top1']['two_processes']:.2f}",
       f"- student top-1 over seeds {checks['seeds']}: 1 process {ms(acc1)} ({', '.join(f'{x:.2f}' for x in acc1)}), "
       f"2 processes {ms(acc2)} ({', '.join(f'{x:.2f}' for x in acc2)})"]
(res / "dist.md").write_text("\n".join(md) + "\n")
(res / "dist.json").write_text(json.dumps(out, indent=1) + "\n")
print("\n".join(md))
PY
