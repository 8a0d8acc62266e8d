# Checks and explains the rule-based pruning runs of bench/fmnist.sh (paper Table 5), from the
# files alone, without the C++ code paths that chose the pools:
#  1. the label logits are read with numpy (docs/label-store.md) and every rule's score is
#     recomputed per step; the resulting top / bottom floor((1-R) S) steps must equal the
#     `rule_pool.selected_steps` that `lpld train` reports for that run;
#  2. the pruned stores that the random baseline trains on must hold the same logits as the
#     first steps of the full store that the rules rank;
#  3. each pool (random = the first steps; each rule's selection) is described: CutMix mixing,
#     teacher confidence and entropy, how many distinct images and classes it covers; with the
#     student top-1 of that pool, this shows what the better pools have in common.
# Usage: /usr/bin/python3 bench/fmnist_rules_check.py bench/work/fmnist  (writes rules-check.json)
import glob, json, math, os, statistics as st, sys, zlib
import numpy as np

w = sys.argv[1]
RULES = ["correct", "diff", "diff_signed", "cut_ratio", "confidence"]


def load_label_store(path):  # as in docs/label-store.md (fp16 / fp32 stores)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if bytes(raw[:8]) != b"LPLDLBL1":
        raise SystemExit(f"{path}: not a label store")
    n = int(raw[8:16].view("<u8")[0])
    h = json.loads(zlib.decompress(bytes(raw[16:16 + n])))
    dt = {"fp16": "<f2", "fp32": "<f4"}[h["dtype"]]
    size = np.dtype(dt).itemsize
    bpe, B, C, N = h["batches_per_epoch"], h["batch_size"], h["num_classes"], h["num_images"]
    off, steps = 24 + n, []
    for s in range(h["steps_kept"]):
        rows = B if s % bpe < bpe - 1 else N - (bpe - 1) * B
        steps.append(np.asarray(raw[off:off + rows * C * size].view(dt), np.float64).reshape(rows, C))
        off += rows * C * size + 8
    if off != len(raw):
        raise SystemExit(f"{path}: {len(raw)} bytes, records end at {off}")
    return h, steps


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


h, logits = load_label_store(f"{w}/labels/class-ipc10-r0.lpld")
plans = [json.loads(l) for l in open(f"{w}/rules/steps-class-ipc10-r0.jsonl")]
assert len(plans) == len(logits) == h["total_steps"], "steps file and store disagree"
S = len(logits)
scores = {r: [] for r in RULES}
pasted, entropy = [], []
for s, (z, plan) in enumerate(zip(logits, plans)):
    assert plan["step"] == s and len(plan["images"]) == len(z)
    y = np.array([h["labels"][i] for i in plan["images"]])
    assert list(y) == plan["classes"]
    p = softmax(z)
    top2 = -np.sort(-p, 1)[:, :2]
    others = p.copy()
    others[np.arange(len(y)), y] = -1
    scores["correct"].append(float((p.argmax(1) == y).mean()))
    scores["confidence"].append(float(top2[:, 0].mean()))
    scores["diff"].append(float((top2[:, 0] - top2[:, 1]).mean()))
    scores["diff_signed"].append(float((p[np.arange(len(y)), y] - others.max(1)).mean()))
    scores["cut_ratio"].append(plan["cutmix"]["lambda"])
    pasted.append(plan["cutmix"]["pasted"])
    entropy.append(float(-(p * np.log(np.clip(p, 1e-30, 1))).sum(1).mean()))
# Pool statistics (this key order is the report's column order); three are rule scores.
stats = {"lambda": scores["cut_ratio"], "pasted": pasted, "max_prob": scores["confidence"],
         "entropy": entropy, "teacher_correct": scores["correct"]}


def select(sc, k, easy):  # stable: ties keep step order, as lpld does
    ids = sorted(range(len(sc)), key=lambda i: (-sc[i] if easy else sc[i], i))
    return sorted(ids[:k])


def describe(ids):
    d = {k: float(np.mean([v[i] for i in ids])) for k, v in stats.items()}
    imgs = [i for s in ids for i in plans[s]["images"]]
    d["distinct_images"] = len(set(imgs))
    counts = np.bincount([h["labels"][i] for i in imgs], minlength=h["num_classes"])
    d["class_count_min_max"] = [int(counts.min()), int(counts.max())]
    return d


def top1s(pattern):
    return [json.load(open(p))["top1"] for p in sorted(glob.glob(pattern))]


out = {"store_prefix_max_abs_diff": {}, "pools": [], "selection_checked": []}
for r in ["0.975", "0.99"]:
    hp, lp = load_label_store(f"{w}/labels/class-ipc10-r{r}.lpld")
    out["store_prefix_max_abs_diff"][r] = max(float(np.abs(a - b).max()) for a, b in zip(lp, logits))
for r in ["0.975", "0.99"]:
    k = math.floor((1 - float(r)) * S + 1e-9)
    seeds_random = top1s(f"{w}/runs/class-ipc10-r{r}-s*/result.json") + top1s(f"{w}/rules/random-r{r}-s*/result.json")
    out["pools"].append({"metric": "random", "prune_ratio": float(r), "steps": k, **describe(list(range(k))),
                         "top1": seeds_random})
    for rule in RULES:
        for side in ["easy", "hard"]:
            mine = select(scores[rule], k, side == "easy")
            reported = None
            for p in sorted(glob.glob(f"{w}/rules/{rule}_{side}-r{r}-s*/result.json")):
                rp = json.load(open(p)).get("rule_pool")
                if rp:
                    reported = rp["selected_steps"]
                    if reported != mine:
                        # a difference is only acceptable between float-tied scores
                        differ = [scores[rule][i] for i in set(mine) ^ set(reported)]
                        lo, hi = min(differ), max(differ)
                        out["selection_checked"].append({"run": p, "match": False, "tie_spread": hi - lo})
                    else:
                        out["selection_checked"].append({"run": p, "match": True})
            out["pools"].append({"metric": f"{rule}_{side}", "prune_ratio": float(r), "steps": k,
                                 **describe(mine), "top1": top1s(f"{w}/rules/{rule}_{side}-r{r}-s*/result.json")})
out["all_steps"] = describe(list(range(S)))
# How pool properties go with student top-1 across the pools of a ratio (Spearman's rho).
def rank(v):
    o = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    for pos, i in enumerate(o):
        r[i] = pos
    return r
out["spearman_with_top1"] = {}
for r in [0.975, 0.99]:
    pools = [p for p in out["pools"] if p["prune_ratio"] == r and p["top1"]]
    t = rank([st.mean(p["top1"]) for p in pools])
    out["spearman_with_top1"][str(r)] = {
        k: float(np.corrcoef(rank([p[k] for p in pools]), t)[0, 1])
        for k in ["lambda", "pasted", "max_prob", "entropy", "teacher_correct", "distinct_images"]}
json.dump(out, open(f"{w}/rules-check.json", "w"), indent=2)
bad = [c for c in out["selection_checked"] if not c["match"]]
print(f"selections checked: {len(out['selection_checked'])}, differing: {len(bad)}; "
      f"store prefix max |diff|: {out['store_prefix_max_abs_diff']}")
