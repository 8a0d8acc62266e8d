#!/usr/bin/env bash
# Teacher training on Fashion-MNIST: the issue's reference recipe (5 epochs, SGD lr 0.05,
# momentum 0.9, wd 5e-4, cosine, batch 256, RandomResizedCrop scale 0.5-1 + flip) and our
# default 28-32 px recipe, plus kernel throughput. Writes bench/results/squeeze.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/work/squeeze; mkdir -p "$out" bench/results
./build/lpld --quiet squeeze --epochs 5 --batch-size 256 --lr 0.05 --crop-scale-min 0.5 \
  --out "$out/reference.safetensors" --json "$out/reference.json"
./build/lpld --quiet squeeze --out "$out/default.safetensors" --json "$out/default.json"
./build/bench_kernels --benchmark_min_time=2 --benchmark_format=json > "$out/kernels.json"
./build/bench_kernels --benchmark_min_time=2 > bench/results/kernels.txt 2>&1 || true
/usr/bin/python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
ref, dflt, k = (json.load(open(f"{d}/{n}.json")) for n in ("reference", "default", "kernels"))
bm = {b["name"]: b for b in k["benchmarks"]}
conv = bm["BM_ConvThroughput/real_time"]["GFLOP/s"] / 1e9 if bm["BM_ConvThroughput/real_time"]["GFLOP/s"] > 1e6 else bm["BM_ConvThroughput/real_time"]["GFLOP/s"]
# convnet-d3-w64 on 28 px: forward MACs per image
macs = 1*64*9*28*28 + 64*64*9*14*14 + 64*64*9*7*7 + 576*10
train_flops = 3 * 2 * macs  # forward + two backward passes
res = {"reference": ref, "default": dflt, "conv_gflops": conv,
       "train_gflops_reference": ref["images_per_second"] * train_flops / 1e9,
       "train_gflops_default": dflt["images_per_second"] * train_flops / 1e9}
res["fraction_of_conv_reference"] = res["train_gflops_reference"] / conv
res["fraction_of_conv_default"] = res["train_gflops_default"] / conv
json.dump(res, open("bench/results/squeeze.json", "w"), indent=2)
md = f"""# squeeze: teacher training on Fashion-MNIST (convnet-d3-w64, 2 cores)

Command: `bench/squeeze.sh` (lpld {ref['config']['device']}, all cores).

| recipe | top-1 | train s | img/s (with loading) | img/s (step only) | total s |
| --- | --- | --- | --- | --- | --- |
| reference (5 ep, batch 256, scale 0.5-1) | {ref['top1']:.2f} | {ref['train_seconds']:.0f} | {ref['images_per_second']:.0f} | {ref['step_images_per_second']:.0f} | {ref['seconds']:.0f} |
| default ({dflt['config']['epochs']} ep, batch {dflt['config']['batch_size']}, scale {dflt['config']['crop_scale_min']}-1) | {dflt['top1']:.2f} | {dflt['train_seconds']:.0f} | {dflt['images_per_second']:.0f} | {dflt['step_images_per_second']:.0f} | {dflt['seconds']:.0f} |

PyTorch reference from the issue (python3-torch, 2 threads): 88.05% top-1, 1196 img/s step, 1040 img/s with loading.

Conv throughput of this machine (64->64 3x3 conv, 28x28, batch 64, forward + both backward convs,
counted as direct-convolution FLOPs; oneDNN may use cheaper algorithms, so this is an effective rate): {conv:.0f} GFLOP/s.
Training throughput as a fraction of it: reference {res['fraction_of_conv_reference']*100:.0f}%, default {res['fraction_of_conv_default']*100:.0f}%
({res['train_gflops_reference']:.0f} / {res['train_gflops_default']:.0f} GFLOP/s at {train_flops/1e6:.1f} MFLOP per image).
"""
open("bench/results/squeeze.md", "w").write(md)
print(md)
PY
