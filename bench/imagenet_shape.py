"""The Python side of bench/imagenet_shape.sh (run with the build's Python: .venv/bin/python).

  data DIR CLASSES TRAIN VAL SIZE   generated JPEGs in ImageNet's own layout: DIR/train/<wnid>/,
                                    a flat DIR/val/ of ILSVRC2012_val_*.JPEG labelled by
                                    DIR/LOC_val_solution.csv (the Kaggle release's format)
  teacher FILE CLASSES              torch.save of a torchvision ResNet-18 state_dict (seeded)
  report DIR OUT_DIR CLASSES        imagenet-shape.json / .md: per-stage seconds per image, peak
                                    RSS, disk, and the extrapolation to ImageNet-1K IPC 10 / 50
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from gpu_check import make_teacher  # noqa: E402  (one teacher generator for both checks)


def make_imagenet(root, classes, train, val, size):
    from PIL import Image
    rng = np.random.default_rng(0)
    wnids = [f"n{1440764 + 7919 * c:08d}" for c in range(classes)]
    bases = rng.integers(0, 256, size=(classes, 3))

    def image(c, h, w):
        noise = rng.integers(-60, 60, size=(h, w, 3))
        return Image.fromarray(np.clip(bases[c] + noise, 0, 255).astype(np.uint8))

    for c, wnid in enumerate(wnids):
        d = os.path.join(root, "train", wnid)
        os.makedirs(d, exist_ok=True)
        for i in range(train):  # ImageNet's sizes vary: a few aspect ratios around SIZE
            h, w = size + 32 * (i % 3), size + 48 * ((i + 1) % 2)
            image(c, h, w).save(os.path.join(d, f"{wnid}_{i}.JPEG"), quality=90)
    os.makedirs(os.path.join(root, "val"), exist_ok=True)
    lines = ["ImageId,PredictionString"]
    order = rng.permutation(classes * val)  # val files are not in class order
    for k, j in enumerate(order):
        c = int(j) % classes
        name = f"ILSVRC2012_val_{k + 1:08d}"
        image(c, size + 20, size + 60).save(os.path.join(root, "val", name + ".JPEG"), quality=90)
        lines.append(f"{name},{wnids[c]} 10 10 100 100")
    with open(os.path.join(root, "LOC_val_solution.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def peak_rss_mb(time_log):
    text = open(time_log).read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024


def report(w, out_dir, classes):
    stages = json.load(open(os.path.join(w, "stages.json")))
    rows = []
    for s in stages:
        r = json.load(open(os.path.join(w, s["name"] + ".json")))
        per = s["seconds"] / s["units"]
        rows.append(dict(s, result_seconds=r.get("seconds"), recipe=r.get("recipe"),
                         peak_rss_mb=peak_rss_mb(os.path.join(w, s["name"] + ".time")),
                         seconds_per_unit=per))
    train = json.load(open(os.path.join(w, "train.json")))
    by = {r["name"]: r for r in rows}
    # Extrapolation to ImageNet-1K on this CPU: the same per-unit costs, at the full recipe's
    # counts (recover 4000 iterations per image; relabel 300 epochs x IPC x 1000 views at 40x:
    # 2.5% of them; train 300 epochs over IPC x 1000 images; squeeze one pass of 1.28M images).
    ext = {}
    for ipc in (10, 50):
        n = 1000 * ipc
        ext[f"ipc{ipc}"] = {
            "squeeze_stats_hours": by["squeeze"]["seconds_per_unit"] * 1281167 / 3600,
            "recover_hours": by["recover"]["seconds_per_unit"] * n * 4000 / 3600,
            "relabel_hours_40x": by["relabel"]["seconds_per_unit"] * n * 300 * 0.025 / 3600,
            "train_hours": by["train"]["seconds_per_unit"] * n * 300 / 3600,
        }
    out = {"classes": classes, "stages": rows, "extrapolation": ext,
           "train_input_wait_seconds": train.get("input_wait_seconds"),
           "train_seconds": train.get("train_seconds"),
           "runtime": train.get("runtime")}
    json.dump(out, open(os.path.join(out_dir, "imagenet-shape.json"), "w"), indent=1)
    with open(os.path.join(out_dir, "imagenet-shape.md"), "w") as f:
        f.write("# ImageNet-shaped rehearsal (bench/imagenet_shape.sh)\n\n")
        f.write(f"{classes} classes of generated 224 px JPEGs in ImageNet's layout, a torchvision "
                "ResNet-18 imported from `torch.save`, every stage `--recipe auto` with its "
                "iterations / epochs cut down; 2 CPU cores.\n\n")
        f.write("| stage | recipe | work | units | seconds | s per unit | peak RSS MB | disk MB |\n"
                "|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['name']} | {r['recipe'] or '-'} | {r['work']} | {r['units']} | "
                    f"{r['seconds']:.1f} | {r['seconds_per_unit']:.4f} | {r['peak_rss_mb']:.0f} | "
                    f"{r['disk_mb']:.1f} |\n")
        wait, ts = train.get("input_wait_seconds", 0), train.get("train_seconds", 0)
        f.write(f"\nTrain: {ts:.1f} s of epochs, of which the steps waited {wait:.2f} s for their "
                f"inputs (--read-ahead: inline on the CPU by default): wall / compute = {ts / max(ts - wait, 1e-9):.3f}.\n\n")
        f.write("Extrapolated to ImageNet-1K on this CPU (hours; per-unit costs above times the "
                "full recipe's counts):\n\n| IPC | squeeze stats | recover | relabel 40x | train |\n"
                "|---|---|---|---|---|\n")
        for k, e in ext.items():
            f.write(f"| {k[3:]} | {e['squeeze_stats_hours']:.1f} | {e['recover_hours']:.0f} | "
                    f"{e['relabel_hours_40x']:.1f} | {e['train_hours']:.0f} |\n")
    print(open(os.path.join(out_dir, "imagenet-shape.md")).read())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "data":
        make_imagenet(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "teacher":
        make_teacher(args[0], int(args[1]))
    elif cmd == "report":
        report(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {cmd}")
