"""The PyTorch side of scripts/gpu-check.sh (run with the Python whose torch lpld was built
against). Subcommands:

  data DIR CLASSES PER_CLASS SIZE    generated JPEGs in an ImageFolder: DIR/<class>/<i>.jpg
  teacher FILE CLASSES               torch.save of a torchvision ResNet-18 state_dict (seeded)
  torch DEVICE SIZE BATCH STEPS OUT  PyTorch eager on the same work as lpld's stages: a
                                     ResNet-18 training step (AdamW, KD loss on soft labels) in
                                     float32 and bf16 autocast, and the authors' relabel loop
                                     (views rendered on the CPU by torchvision, then the
                                     teacher's forward on DEVICE); images/s as JSON
  report DIR OUT_DIR                 gpu.json and gpu.md from the lpld and PyTorch results
"""
import json
import os
import sys
import time

import numpy as np


def make_data(root, classes, per_class, size):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = os.path.join(root, f"c{c:04d}")
        os.makedirs(d, exist_ok=True)
        base = rng.integers(0, 256, size=3)
        for i in range(per_class):
            noise = rng.integers(-60, 60, size=(size, size, 3))
            img = np.clip(base + noise, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(os.path.join(d, f"{i:03d}.jpg"), quality=90)


def make_teacher(path, classes):
    import torch
    import torchvision
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=classes).state_dict(), path)


def sync(device):
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_rate(device, size, batch, steps, amp):
    """Images/s of ResNet-18 training steps: forward under autocast, KD loss, AdamW."""
    import torch
    import torch.nn.functional as F
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=100).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(batch, 3, size, size, device=device)
    soft = torch.randn(batch, 100, device=device)
    dtype = torch.bfloat16 if amp == "bf16" else None
    def step():
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            out = model(x)
        loss = F.kl_div(F.log_softmax(out.float() / 20, 1), F.softmax(soft / 20, 1),
                        reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return images_per_second(step, device, batch, steps, warm=3)


def images_per_second(step, device, batch, steps, warm):
    """`steps` calls of `step` of `batch` images each, after `warm` untimed ones."""
    for _ in range(warm):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - t)


def relabel_rate(device, size, batch, steps):
    """The authors' relabel loop: RandomResizedCrop + flip per image on the CPU (torchvision),
    then one forward of the teacher on DEVICE; images/s."""
    import torch
    import torchvision
    import torchvision.transforms as T
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=100).to(device).eval()
    images = [torch.rand(3, size, size) for _ in range(batch)]
    aug = T.Compose([T.RandomResizedCrop(size, scale=(0.08, 1)), T.RandomHorizontalFlip()])
    def step():
        views = torch.stack([aug(im) for im in images]).to(device)
        with torch.no_grad():
            return model(views).float().cpu()
    return images_per_second(step, device, batch, steps, warm=1)


def torch_bench(device, size, batch, steps, out):
    import torch
    r = {"torch": torch.__version__, "device": device, "size": size, "batch": batch,
         "steps": steps,
         "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
         "train_img_s": {a: train_rate(device, size, batch, steps, a) for a in ("off", "bf16")},
         "relabel_img_s": relabel_rate(device, size, batch, steps)}
    with open(out, "w") as f:
        json.dump(r, f, indent=1)
    print(json.dumps(r))


def report(w, out_dir):
    torch_r = json.load(open(os.path.join(w, "torch.json")))
    lpld = {}
    for amp in ("off", "bf16"):
        stage = {}
        for s in ("recover", "relabel", "train"):
            stage[s] = json.load(open(os.path.join(w, f"{s}-{amp}.json")))
        lpld[amp] = stage
    def rate(amp, s):
        j = lpld[amp][s]
        if s == "train":
            return j["images_per_second"]
        if s == "relabel":
            return j["views_per_second"]
        return j.get("images_per_second", 0.0)
    rows = []
    for amp in ("off", "bf16"):
        rows.append({"amp": amp,
                     "recover_s": lpld[amp]["recover"]["seconds"],
                     "relabel_views_s": rate(amp, "relabel"),
                     "train_img_s": rate(amp, "train"),
                     "torch_train_img_s": torch_r["train_img_s"][amp],
                     "train_vs_torch": rate(amp, "train") / torch_r["train_img_s"][amp],
                     "relabel_vs_authors": rate(amp, "relabel") / torch_r["relabel_img_s"]})
    result = {"torch": torch_r, "rows": rows,
              "bf16_over_fp32_train": rate("bf16", "train") / rate("off", "train"),
              "deterministic_over_default_train":
                  json.load(open(os.path.join(w, "train-det.json")))["images_per_second"]
                  / rate("off", "train"),
              "runtime": lpld["off"]["train"].get("runtime", {}),
              "setup": json.load(open(os.path.join(w, "setup.json"))),
              "lpld": lpld}
    os.makedirs(out_dir, exist_ok=True)
    json.dump(result, open(os.path.join(out_dir, "gpu.json"), "w"), indent=1)
    s = result["setup"]
    with open(os.path.join(out_dir, "gpu.md"), "w") as f:
        f.write(f"# GPU check (scripts/gpu-check.sh {s['mode']})\n\n")
        f.write(f"{torch_r['gpu']}, torch {torch_r['torch']}; ResNet-18 at {s['size']} px, "
                f"{s['classes']} classes, IPC {s['ipc']}, recover {s['iterations']} iterations, "
                f"relabel/train {s['epochs']} epochs at batch {s['batch']}.\n\n")
        f.write("| amp | recover s | relabel views/s | train img/s | PyTorch train img/s | "
                "train / PyTorch | relabel / authors' loop |\n|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['amp']} | {r['recover_s']:.1f} | {r['relabel_views_s']:.0f} | "
                    f"{r['train_img_s']:.0f} | {r['torch_train_img_s']:.0f} | "
                    f"{r['train_vs_torch']:.2f} | {r['relabel_vs_authors']:.2f} |\n")
        f.write(f"\nbf16 / fp32 train: {result['bf16_over_fp32_train']:.2f}x; "
                f"--deterministic / default (fp32): "
                f"{result['deterministic_over_default_train']:.2f}x. "
                f"The authors' relabel loop (CPU views): {torch_r['relabel_img_s']:.0f} img/s.\n")
    print(open(os.path.join(out_dir, "gpu.md")).read())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "data":
        make_data(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "teacher":
        make_teacher(args[0], int(args[1]))
    elif cmd == "torch":
        torch_bench(args[0], int(args[1]), int(args[2]), int(args[3]), args[4])
    elif cmd == "report":
        report(args[0], args[1])
    else:
        sys.exit(f"unknown subcommand {cmd}")
