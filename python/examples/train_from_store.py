"""Train a PyTorch student from an lpld image folder and label store, without lpld.

    /usr/bin/python3 python/examples/train_from_store.py IMAGES STORE [--epochs 300] [--val DIR]

Each training epoch draws batches-per-epoch label steps uniformly with replacement from the
store's pool (LPLD's "random / batch_to_epoch"), renders each step's views as lpld does
(bilinear crop-and-resize through one grid_sample, flips, CutMix paste; the plans come from
python/lpld_labels.py, which checks them against the store's digests) and minimizes
KL(teacher || student) at temperature T. The student is lpld's convnet-dD-wW."""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lpld_labels import LabelStore  # noqa: E402


def convnet(channels, size, classes, width=64, depth=3):
    layers = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                   nn.AvgPool2d(2)]
        channels, size = width, size // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * size * size, classes))


def load(folder, paths, channels):
    mode = "L" if channels == 1 else "RGB"
    arr = [np.asarray(Image.open(os.path.join(folder, p)).convert(mode)) for p in paths]
    t = torch.tensor(np.stack(arr))
    return t.unsqueeze(1) if channels == 1 else t.permute(0, 3, 1, 2)


def render(images_u8, plan, mean, std, size):
    """A step's batch as lpld renders it (src/data/augment.cpp render_views, apply_cutmix)."""
    x = (images_u8[plan["images"]].float() / 255 - mean) / std
    theta = []
    for (x0, y0, w, h), flip in plan["views"]:
        theta.append([[-w if flip else w, 0, 2 * x0 + w - 1], [0, h, 2 * y0 + h - 1]])
    grid = F.affine_grid(torch.tensor(theta, dtype=torch.float32), [x.shape[0], x.shape[1], size, size],
                         align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mix = plan["cutmix"]
    if mix is not None:
        x1, y1, x2, y2 = mix["box"]
        if x2 > x1 and y2 > y1:
            out[:, :, y1:y2, x1:x2] = out[mix["perm"]][:, :, y1:y2, x1:x2].clone()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images"), ap.add_argument("store")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", help="a labelled ImageFolder of the same size to evaluate on")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    store = LabelStore(args.store)
    h = store.header
    C, S, ch = h["num_classes"], h["image_size"], h["channels"]
    mean = torch.tensor(h["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(h["std"]).view(1, -1, 1, 1)
    images = load(args.images, h["images"], ch)
    model = convnet(ch, S, C)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    T = args.temperature
    for epoch in range(args.epochs):
        for g in opt.param_groups:
            g["lr"] = 0.5e-3 * (1 + math.cos(math.pi * epoch / args.epochs))
        model.train()
        total = 0.0
        for step in rng.integers(0, store.steps_kept, store.bpe):
            step = int(step)
            batch = render(images, store.plan(step), mean, std, S)
            target = torch.tensor(store.probs(step, T), dtype=torch.float32)
            loss = F.kl_div(F.log_softmax(model(batch) / T, 1), target, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: loss {total / store.bpe:.5f}", flush=True)
    if args.val:
        # lpld's dataset spec "imagefolder:DIR" and a plain DIR both name a class-per-folder tree.
        args.val = args.val.removeprefix("imagefolder:")
        classes = sorted(d for d in os.listdir(args.val) if not d.startswith("."))
        paths, labels = [], []
        for c, name in enumerate(classes):
            for f in sorted(os.listdir(os.path.join(args.val, name))):
                paths.append(os.path.join(name, f)), labels.append(c)
        x = (load(args.val, paths, ch).float() / 255 - mean) / std
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
        print(f"top-1 {100.0 * (pred == torch.tensor(labels)).float().mean().item():.2f}%")


if __name__ == "__main__":
    main()
