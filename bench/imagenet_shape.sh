#!/usr/bin/env bash
# A rehearsal at ImageNet shape on this machine (issue: ImageNet-1K as a user meets it):
# generated JPEGs in ImageNet's own layout (train/<wnid>/, a flat val/ labelled by
# LOC_val_solution.csv), CLASSES classes at 224 px, a torchvision ResNet-18 written by PyTorch's
# torch.save and imported, then README "ImageNet-1K"'s commands with every stage at
# `--recipe auto` (the default) and only the iterations / epochs cut down (ITERATIONS, EPOCHS).
# Reports per-stage seconds per unit of work, peak RSS and disk, and extrapolates to ImageNet-1K
# IPC 10 and 50 on this CPU: bench/results/imagenet-shape.{md,json}. Needs `make build` and the
# cores to itself; about 10 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
CLASSES=${CLASSES:-100} TRAIN=${TRAIN:-5} VAL=${VAL:-3} IPC=${IPC:-2}
ITERATIONS=${ITERATIONS:-10} EPOCHS=${EPOCHS:-4}
L=build/lpld PY=.venv/bin/python
w=bench/work/imagenet-shape D=bench/work/imagenet-shape/imagenet
rm -rf $w && mkdir -p $w
$PY bench/imagenet_shape.py data $D $CLASSES $TRAIN $VAL 224
$PY bench/imagenet_shape.py teacher $w/resnet18.pth $CLASSES

stages=()
# stage NAME WORK UNITS SECONDS_KEY DISK_PATH -- command...: runs it under GNU time.
stage() {
  local name=$1 work=$2 units=$3 key=$4 disk=$5
  shift 6
  /usr/bin/time -v -o $w/$name.time "$@" --json $w/$name.json
  local mb
  mb=$(du -sm "$disk" | cut -f1)
  local s
  s=$($PY -c "import json,sys; print(json.load(open('$w/$name.json'))['$key'])")
  stages+=("{\"name\":\"$name\",\"work\":\"$work\",\"units\":$units,\"seconds\":$s,\"disk_mb\":$mb}")
}
train_images=$((CLASSES * TRAIN)) images=$((CLASSES * IPC))
stage import "a torch.save ResNet-18" 1 seconds $w/imported.safetensors -- \
  $L import --from $w/resnet18.pth --arch resnet18 --data imagenet:$D:val --norm imagenet \
  --out $w/imported.safetensors
stage squeeze "class statistics, image of train" $train_images stats_seconds $w/teacher.safetensors -- \
  $L squeeze --init $w/imported.safetensors --epochs 0 --data imagenet:$D:train \
  --val imagenet:$D:val --arch resnet18 --norm imagenet --out $w/teacher.safetensors
stage recover "image-iteration" $((images * ITERATIONS)) seconds $w/images -- \
  $L recover --teacher $w/teacher.safetensors --ipc $IPC --iterations $ITERATIONS --out $w/images
stage relabel "view labelled" $((images * EPOCHS)) seconds $w/labels.lpld -- \
  $L relabel --teacher $w/teacher.safetensors --images $w/images --epochs $EPOCHS \
  --out $w/labels.lpld
stage train "image trained" $((images * EPOCHS)) train_seconds $w/student -- \
  $L train --images $w/images --labels $w/labels.lpld --val imagenet:$D:val --arch resnet18 \
  --epochs $EPOCHS --out $w/student
(IFS=,; echo "[${stages[*]}]") > $w/stages.json
$PY bench/imagenet_shape.py report $w bench/results $CLASSES
