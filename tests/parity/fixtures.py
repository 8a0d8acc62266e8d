"""PyTorch side of lpld's parity suite (tests/test_parity.cpp). Each case writes, into DIR,
inputs and PyTorch's outputs for lpld to reproduce: weights as torch.save files, arrays as
safetensors (written here with numpy: Debian has no python3-safetensors).

Usage: /usr/bin/python3 tests/parity/fixtures.py CASE DIR [ARGS]
Cases: models, bnstats, recover, render, evalcrop, kd, read (ARGS: checkpoint label-store),
teacher (ARGS: train-images test-images epochs).
Everything is seeded; 2 threads."""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF

torch.set_num_threads(2)

DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64",
          np.dtype("int32"): "I32", np.dtype("float16"): "F16", np.dtype("uint8"): "U8"}


def save_safetensors(path, arrays, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, a in arrays.items():
        a = np.array(a.detach().cpu().numpy() if torch.is_tensor(a) else a, order="C")  # keeps 0-d
        b = a.tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def convnet(channels=1, size=28, width=64, depth=3, classes=10):
    """convnet-dD-wW as lpld defines it (src/models/convnet.cpp), same parameter names."""
    layers = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                   nn.AvgPool2d(2)]
        channels, size = width, size // 2

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(width * size * size, classes)

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))
    return ConvNet()


def randomize_bn(model, gen):
    """Non-trivial running statistics and affine parameters, so eval-mode BN is tested."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def case_models(out):
    """Random-weight torchvision ResNets (ImageNet stem), a Tiny-ImageNet-style small stem, and
    convnet-d3-w64; state_dict() by torch.save; logits of a fixed input in eval mode."""
    gen = torch.Generator().manual_seed(0)
    models = {
        "resnet18-imagenet": (torchvision.models.resnet18(num_classes=10), 64, 3),
        "resnet34-imagenet": (torchvision.models.resnet34(num_classes=10), 64, 3),
        "resnet50-imagenet": (torchvision.models.resnet50(num_classes=10), 64, 3),
        "resnet18-small": (torchvision.models.resnet18(num_classes=200), 32, 3),
        "convnet-d3-w64": (convnet(1, 28), 28, 1),
    }
    small = models["resnet18-small"][0]
    small.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    small.maxpool = nn.Identity()
    for name, (model, size, ch) in models.items():
        torch.manual_seed(1)
        randomize_bn(model, gen)
        model.eval()
        x = torch.randn(2, ch, size, size, generator=gen)
        with torch.no_grad():
            logits = model(x)
        torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
        save_safetensors(os.path.join(out, name + "-io.safetensors"), {"input": x, "logits": logits},
                         {"size": str(size), "channels": str(ch), "classes": str(logits.shape[1])})
    # A training script's checkpoint: weights under "model" with DDP's "module." prefix.
    m = models["convnet-d3-w64"][0]
    torch.save({"epoch": 3, "best_acc1": 0.5, "arch": "convnet",
                "model": {"module." + k: v for k, v in m.state_dict().items()},
                "optimizer": torch.optim.SGD(m.parameters(), lr=0.1).state_dict()},
               os.path.join(out, "convnet-ddp-checkpoint.pth"))


def bn_inputs(model, x):
    captured = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    logits = model(x)
    for h in hooks:
        h.remove()
    return logits, captured


def case_bnstats(out):
    """Class-wise mean and biased variance of every BN layer's input over one batch."""
    gen = torch.Generator().manual_seed(2)
    model = convnet(1, 28)
    randomize_bn(model, gen)
    model.eval()
    x = torch.randn(12, 1, 28, 28, generator=gen)
    y = torch.tensor([0, 1, 2, 1, 0, 3, 3, 1, 2, 0, 1, 3])
    with torch.no_grad():
        _, inputs = bn_inputs(model, x)
    arrays = {"input": x, "labels": y}
    for l, a in enumerate(inputs):
        a = a.double()
        arrays[f"mean.{l}"] = torch.stack([a[y == c].mean((0, 2, 3)) for c in range(4)]).float()
        arrays[f"var.{l}"] = torch.stack([a[y == c].var((0, 2, 3), unbiased=False)
                                          for c in range(4)]).float()
    torch.save(model.state_dict(), os.path.join(out, "bnstats.pth"))
    save_safetensors(os.path.join(out, "bnstats.safetensors"), arrays)


def case_recover(out):
    """One recover step (METHOD.md Stage 2): CE + r_bn * sum_l w_l (||mean_l - mu_l|| +
    ||var_l - var*_l||), w_0 = 10, for one class-mode batch after a circular roll; the loss and
    its gradient with respect to the images."""
    gen = torch.Generator().manual_seed(3)
    model = convnet(1, 28)
    randomize_bn(model, gen)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    target_mean = [torch.randn(64, generator=gen) * 0.3 for _ in range(3)]
    target_var = [torch.rand(64, generator=gen) + 0.5 for _ in range(3)]
    x = torch.randn(4, 1, 28, 28, generator=gen).requires_grad_(True)
    xin = torch.roll(x, shifts=(2, -1), dims=(2, 3))
    logits, inputs = bn_inputs(model, xin)
    ce = F.cross_entropy(logits, torch.full((4,), 3, dtype=torch.long))
    bn = 0
    for l, a in enumerate(inputs):
        mean, var = a.mean((0, 2, 3)), a.var((0, 2, 3), unbiased=False)
        term = torch.norm(mean - target_mean[l], 2) + torch.norm(var - target_var[l], 2)
        bn = bn + (10.0 if l == 0 else 1.0) * term
    loss = ce + 0.05 * bn
    loss.backward()
    torch.save(model.state_dict(), os.path.join(out, "recover.pth"))
    arrays = {"images": x.detach(), "loss": loss.detach().reshape(1), "ce": ce.detach().reshape(1),
              "bn": bn.detach().reshape(1), "grad": x.grad}
    for l in range(3):
        arrays[f"target_mean.{l}"] = target_mean[l]
        arrays[f"target_var.{l}"] = target_var[l]
    save_safetensors(os.path.join(out, "recover.safetensors"), arrays)


def case_render(out):
    """torchvision's resized_crop + hflip (bilinear, no antialias: the tensor path) and a CutMix
    paste on fixed parameters."""
    gen = torch.Generator().manual_seed(4)
    img = torch.rand(3, 3, 32, 32, generator=gen)
    boxes = [(4, 6, 20, 18, False), (0, 0, 32, 32, True), (10, 3, 9, 12, True)]  # top left h w flip
    outs = []
    for i, (t, l, h, w, flip) in enumerate(boxes):
        r = TF.resized_crop(img[i], t, l, h, w, [32, 32], interpolation=TF.InterpolationMode.BILINEAR)
        outs.append(TF.hflip(r) if flip else r)
    views = torch.stack(outs)
    perm, (x1, y1, x2, y2) = [2, 0, 1], (5, 8, 21, 30)
    mixed = views.clone()
    mixed[:, :, y1:y2, x1:x2] = views[perm][:, :, y1:y2, x1:x2]
    save_safetensors(os.path.join(out, "render.safetensors"),
                     {"images": img, "boxes": np.array([b[:4] for b in boxes], dtype=np.int64),
                      "flips": np.array([b[4] for b in boxes], dtype=np.int64),
                      "views": views, "perm": np.array(perm, dtype=np.int64),
                      "box": np.array([x1, y1, x2, y2], dtype=np.int64), "mixed": mixed})


def case_evalcrop(out):
    """torchvision's ImageNet evaluation transform on PIL images: Resize(256) (bilinear,
    antialiased) -> CenterCrop(224) -> ToTensor, for a landscape and a portrait image."""
    import torchvision.transforms as T
    from PIL import Image
    rng = np.random.default_rng(6)
    arrays = {}
    for name, (h, w) in {"landscape": (300, 411), "portrait": (437, 250)}.items():
        # smooth content (a random walk) plus noise, as photographs have both
        walk = np.cumsum(rng.normal(size=(h, w, 3)), axis=1) * 4 + 128
        img = np.clip(walk + rng.normal(size=(h, w, 3)) * 20, 0, 255).astype(np.uint8)
        ref = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])(Image.fromarray(img))
        arrays[name] = torch.tensor(img).permute(2, 0, 1).contiguous()
        arrays[name + ".ref"] = ref
    save_safetensors(os.path.join(out, "evalcrop.safetensors"), arrays)


def case_kd(out):
    """KL(softmax(t/T) || softmax(s/T)), batch mean, with and without T^2 (F.kl_div)."""
    gen = torch.Generator().manual_seed(5)
    s, t = torch.randn(6, 10, generator=gen) * 3, torch.randn(6, 10, generator=gen) * 3
    T = 4.0
    kd = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    save_safetensors(os.path.join(out, "kd.safetensors"),
                     {"student": s, "teacher": t, "T": np.array([T], dtype=np.float32),
                      "kd": kd.reshape(1), "kd_squared": (kd * T * T).reshape(1)})


def case_read(out, checkpoint, store):
    """What numpy reads from an lpld checkpoint (safetensors) and a label store (through
    python/lpld_labels.py), written back for lpld to compare bit for bit."""
    with open(checkpoint, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    rev = {v: k for k, v in DTYPES.items()}
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arrays["ckpt." + name] = np.frombuffer(data[a:b], dtype=rev[info["dtype"]]).reshape(info["shape"])
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    import lpld_labels
    st = lpld_labels.LabelStore(store)
    for step in range(st.steps_kept):
        arrays[f"store.{step}"] = st.rows(step)[0]
    save_safetensors(os.path.join(out, "read.safetensors"), arrays)


def case_store(out, store):
    """What python/lpld_labels.py reads from a label store, step by step: the codec's rows,
    the views regenerated from the seed (and the stored ones), the digest, the probabilities."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    import lpld_labels
    s = lpld_labels.LabelStore(store)
    arrays = {}
    for step in range(s.steps_kept):
        values, indices = s.rows(step)
        arrays[f"{step}.values"] = values
        if indices is not None:
            arrays[f"{step}.indices"] = indices
        arrays[f"{step}.probs"] = s.probs(step, 4.0).astype(np.float32)
        plans = {"plan": s.plan(step)}
        if s.views_stored:
            plans["stored"] = s.stored_views(step)
        for name, p in plans.items():
            arrays[f"{step}.{name}.images"] = np.array(p["images"], dtype=np.int64)
            arrays[f"{step}.{name}.boxes"] = np.array([v[0] for v in p["views"]], dtype=np.float32)
            arrays[f"{step}.{name}.flips"] = np.array([v[1] for v in p["views"]], dtype=np.int64)
            if p["cutmix"] is not None:
                arrays[f"{step}.{name}.box"] = np.array(p["cutmix"]["box"], dtype=np.int64)
                arrays[f"{step}.{name}.perm"] = np.array(p["cutmix"]["perm"], dtype=np.int64)
                arrays[f"{step}.{name}.lambda"] = np.array([p["cutmix"]["lambda"]], dtype=np.float64)
        arrays[f"{step}.digest"] = np.array([s.digest(step)], dtype=np.uint64).view(np.int64)
    if s.image_labels:
        values, indices = s.image_rows()
        arrays["image.values"] = values
        if indices is not None:
            arrays["image.indices"] = indices
        arrays["image.probs"] = s.image_probs(4.0).astype(np.float32)
    save_safetensors(os.path.join(out, "store.safetensors"), arrays)


def case_teacher(out, train_n, test_n, epochs):
    """A convnet-d3-w64 teacher trained briefly by PyTorch on Fashion-MNIST (Debian's files),
    saved as a state_dict, with its top-1 on the first `test_n` test images."""
    import gzip

    def idx(name):
        with gzip.open(f"/usr/share/datasets/fashion-mnist/{name}.gz") as f:
            raw = f.read()
        dims = raw[3]
        shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
        return np.frombuffer(raw[4 + 4 * dims:], dtype=np.uint8).reshape(shape)
    norm = lambda a: (torch.tensor(a, dtype=torch.float32).unsqueeze(1) / 255 - 0.2860) / 0.3530
    xtr, ytr = norm(idx("train-images-idx3-ubyte")[:train_n]), torch.tensor(idx("train-labels-idx1-ubyte")[:train_n], dtype=torch.long)
    xte, yte = norm(idx("t10k-images-idx3-ubyte")[:test_n]), torch.tensor(idx("t10k-labels-idx1-ubyte")[:test_n], dtype=torch.long)
    torch.manual_seed(0)
    model = convnet(1, 28)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(train_n)
        for i in range(0, train_n - 63, 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item()
                      for i in range(0, test_n, 500))
    torch.save(model.state_dict(), os.path.join(out, "teacher.pth"))
    with open(os.path.join(out, "teacher.json"), "w") as f:
        json.dump({"top1": 100.0 * correct / test_n, "test_images": test_n}, f)


if __name__ == "__main__":
    case, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    # Models' initial weights come from the global generator: seeded, so every fixture is the
    # same each run (LPLD_FIXTURE_SEED draws others, to look for cases that break a tolerance).
    torch.manual_seed(int(os.environ.get("LPLD_FIXTURE_SEED", "0")))
    {"models": lambda: case_models(out), "bnstats": lambda: case_bnstats(out),
     "recover": lambda: case_recover(out), "render": lambda: case_render(out),
     "kd": lambda: case_kd(out), "evalcrop": lambda: case_evalcrop(out),
     "store": lambda: case_store(out, *args), "read": lambda: case_read(out, *args),
     "teacher": lambda: case_teacher(out, *map(int, args))}[case]()
