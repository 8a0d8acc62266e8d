#!/usr/bin/env bash
# ImageNet-shaped scale bench (issue: ImageNet scale on one machine). 1000 classes of 32 px RGB
# images (this 2-core CPU cannot afford 224 px at IPC 200: recover alone would take days),
# made by bench/scale_data.py; a convnet-d2-w16 teacher (3 epochs); then for IPC 10, 50, 200:
# recover (class mode, few iterations), relabel and train (few epochs, batch 100), each timed
# by /usr/bin/time for wall seconds and peak RSS; throughput from each stage's JSON. Also the
# BLAS and thread settings of relabel and train at IPC 10 (reference BLAS vs OpenBLAS, 1 vs 2
# threads) to show there is no oversubscription, and SRe2L's mixed mode (100 classes per
# batch) at IPC 10. Writes bench/results/scale.{md,json,png} (bench/scale_report.py).
# Resumable: finished runs are kept. IPCS="10 50 200" ITERATIONS=4 EPOCHS=2 override.
set -euo pipefail
cd "$(dirname "$0")/.."
lpld=$(realpath ${LPLD:-./build/lpld})
w=bench/work/scale
ipcs=${IPCS:-10 50 200}
its=${ITERATIONS:-4}
epochs=${EPOCHS:-2}
mkdir -p $w
if [ ! -d $w/data ]; then
  rm -rf $w/data.tmp && /usr/bin/python3 bench/scale_data.py $w/data.tmp 1000 10 32 2 && mv $w/data.tmp $w/data
fi
val=imagefolder:$w/data/val
timed() {  # NAME CMD...: run once, keep /usr/bin/time's figures in NAME.time.json
  local name=$1; shift
  [ -f $w/$name.time.json ] && return 0
  /usr/bin/time -o $w/$name.time.tmp \
    -f '{"wall": %e, "user": %U, "sys": %S, "peak_rss_kb": %M, "involuntary_switches": %c, "voluntary_switches": %w}' \
    "$@" > /dev/null
  mv $w/$name.time.tmp $w/$name.time.json
}
timed squeeze "$lpld" --quiet squeeze --data imagefolder:$w/data/train --val $val \
  --arch convnet-d2-w16 --epochs 3 --batch-size 100 --out $w/teacher.safetensors --json $w/squeeze.json
for ipc in $ipcs; do
  timed recover-$ipc "$lpld" --quiet recover --teacher $w/teacher.safetensors --ipc $ipc \
    --iterations $its --stall-restarts 0 --out $w/img$ipc --json $w/recover-$ipc.json
  timed relabel-$ipc "$lpld" --quiet relabel --teacher $w/teacher.safetensors --images $w/img$ipc \
    --epochs $epochs --batch-size 100 --out $w/labels$ipc.lpld --json $w/relabel-$ipc.json
  timed train-$ipc "$lpld" --quiet train --images $w/img$ipc --labels $w/labels$ipc.lpld --val $val \
    --arch convnet-d2-w16 --epochs $epochs --out $w/student$ipc --json $w/train-$ipc.json
done
# SRe2L's mixed mode as it runs at ImageNet-1K: one image of each of 100 classes per batch
timed recover-mixed-10 "$lpld" --quiet recover --teacher $w/teacher.safetensors --mode mixed \
  --batch-size 100 --ipc 10 --iterations $its --stall-restarts 0 --out $w/mixed10 \
  --json $w/recover-mixed-10.json
# BLAS x threads at IPC 10: the reference BLAS is loaded instead of OpenBLAS by library path;
# "openblas-w" gives OpenBLAS a worker per thread (lpld's default keeps it on the caller's)
refblas=/usr/lib/$(gcc -print-multiarch)/blas
for cfg in reference-t1 reference-t2 openblas-t1 openblas-t2 openblas-w-t2; do
  t=${cfg##*-t}
  case $cfg in
    reference-*) env=(LD_LIBRARY_PATH=$refblas) ;;
    openblas-w-*) env=(OPENBLAS_NUM_THREADS=$t) ;;
    *) env=() ;;
  esac
  timed blas-$cfg-relabel env "${env[@]}" "$lpld" --quiet --threads $t relabel \
    --teacher $w/teacher.safetensors --images $w/img10 --epochs $epochs --batch-size 100 \
    --out $w/blas-$cfg.lpld --json $w/blas-$cfg-relabel.json
  timed blas-$cfg-train env "${env[@]}" "$lpld" --quiet --threads $t train \
    --images $w/img10 --labels $w/labels10.lpld --val $val --arch convnet-d2-w16 \
    --epochs $epochs --out $w/blas-$cfg-student --json $w/blas-$cfg-train.json
done
/usr/bin/python3 bench/scale_report.py $w bench/results "$ipcs" "$its" "$epochs"
