#!/usr/bin/env bash
# The one prepared GPU check (README "GPU"): build lpld against the machine's own PyTorch, run
# the tests on the device, time recover/relabel/train at ImageNet shape in float32 and bf16,
# and PyTorch eager on the same work beside them.
#
#   scripts/gpu-check.sh prepare     here (Debian 12, with its package registry): downloads the
#                                    Debian packages lpld builds with into .debs/ (git ignores
#                                    it); the GPU machine has none of them and no network
#   scripts/gpu-check.sh run         on the GPU machine, as the device tool's
#                                    run(command="scripts/gpu-check.sh run", carry=[".debs"]):
#                                    ResNet-18 at 224 px, 100 classes, IPC 10; <= 8 minutes on
#                                    one H200 with 16 cores. Results: $OUT/gpu.{md,json}, logs
#   scripts/gpu-check.sh run --cpu   the same steps here on the CPU at small sizes (64 px,
#                                    4 classes, IPC 2), so that nothing visible here fails there
#
# The packages are unpacked into a prefix (never over /), found through CMAKE_PREFIX_PATH,
# pkg-config's sysroot and LD_LIBRARY_PATH; in --cpu mode CMake is kept from the system's
# own copies, so a package missing from .debs/ fails here first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
debs=$root/.debs
pkgs=(libcli11-dev libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libspdlog-dev libspdlog1.10
      libfmt-dev libfmt9 libpng-dev libpng16-16 libjpeg-dev libjpeg62-turbo-dev libjpeg62-turbo
      zlib1g-dev zlib1g libxxhash-dev libxxhash0 libgtest-dev libgmock-dev libbenchmark-dev
      libbenchmark1debian libzip-dev libzip4 libbz2-dev libbz2-1.0 libzstd-dev libzstd1 liblzma-dev
      liblzma5 libgnutls28-dev nettle-dev libgloo-dev libjemalloc-dev libjemalloc2 pkgconf
      pkgconf-bin libpkgconf3)

if [ "${1:-}" = prepare ]; then
  mkdir -p "$debs" && cd "$debs" && rm -f ./*.deb
  apt-get download "${pkgs[@]}" >/dev/null
  grep -qx '/.debs/' "$root/.git/info/exclude" 2>/dev/null || echo '/.debs/' >>"$root/.git/info/exclude"
  echo "$(ls | wc -l) packages, $(du -sh . | cut -f1) in $debs"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 prepare | run [--cpu]" >&2; exit 2; }
cpu=0; [ "${2:-}" = --cpu ] && cpu=1
if [ $cpu = 1 ]; then
  dev=cpu size=64 classes=4 ipc=2 iterations=3 epochs=2 batch=8 per_class=4 tsteps=2
  python=${LPLD_TORCH_PYTHON:-$root/.venv/bin/python}
  out=${OUT:-$root/bench/work/gpu-check-cpu}
  jobs=2
else
  dev=cuda size=224 classes=100 ipc=10 iterations=200 epochs=30 batch=128 per_class=4 tsteps=20
  python=${LPLD_TORCH_PYTHON:-$(command -v python3)}
  out=${OUT:?on the GPU machine the device tool sets OUT}
  jobs=$(nproc)
fi
w=${GPU_CHECK_WORK:-/tmp/lpld-gpu-check}
rm -rf "$w" && mkdir -p "$w" "$out"
log() { echo "[gpu-check $(date -u +%T)] $*"; }

# 1. The Debian packages, unpacked into a prefix.
P=$w/prefix
ls "$debs"/*.deb >/dev/null 2>&1 || { echo "no .deb files in $debs: run '$0 prepare' here first" >&2; exit 1; }
for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$P"; done
arch=x86_64-linux-gnu
export LD_LIBRARY_PATH=$P/usr/lib/$arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_SYSROOT_DIR=$P PKG_CONFIG_LIBDIR=$P/usr/lib/$arch/pkgconfig:$P/usr/share/pkgconfig
pkgconfig=$P/usr/bin/pkgconf
log "unpacked $(ls "$debs"/*.deb | wc -l) packages into $P"

# 2. lpld against this machine's torch.
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
flags=(-DCMAKE_BUILD_TYPE=Release -DLPLD_TORCH=pip -DLPLD_TORCH_PYTHON="$python"
       -DCMAKE_PREFIX_PATH="$P/usr" -DPKG_CONFIG_EXECUTABLE="$pkgconfig")
# here, only the prefix's copies of the packages (the compiler's own paths stay)
[ $cpu = 1 ] && flags+=(-DCMAKE_IGNORE_PREFIX_PATH=/usr)
t0=$(date +%s)
cmake -S . -B "$w/build" -G Ninja "${flags[@]}" >"$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; exit 1; }
cmake --build "$w/build" -j "$jobs" >"$out/build.log" 2>&1 || { grep -B2 -A8 error "$out/build.log" | head -60; exit 1; }
build_s=$(( $(date +%s) - t0 ))
log "built in ${build_s} s"
L=$w/build/lpld
$L --version

# 3. The tests, those that take a device on this one.
set +e
(cd "$w/build" && LPLD_TEST_DEVICE=$dev ctest -j "$jobs" --timeout 300 --output-on-failure \
  ${GPU_CHECK_CTEST_ARGS:-} >"$out/ctest.log" 2>&1)
ctest_rc=$?
set -e
grep -E "tests passed|tests failed" "$out/ctest.log" || true
grep -E "\((Failed|SEGFAULT|Timeout)\)" "$out/ctest.log" | head -20 || true

# 4. A short pipeline at ImageNet shape, float32 and bf16, and PyTorch beside it.
"$python" bench/gpu_check.py data "$w/data" $classes $per_class $size
"$python" bench/gpu_check.py teacher "$w/resnet18.pth" $classes
$L --quiet import --from "$w/resnet18.pth" --arch resnet18-imagenet --data "imagefolder:$w/data" \
  --norm imagenet --image-size $size --out "$w/teacher0.safetensors" >"$out/pipeline.log"
$L --quiet squeeze --init "$w/teacher0.safetensors" --epochs 0 --data "imagefolder:$w/data" \
  --val "imagefolder:$w/data" --device $dev --out "$w/teacher.safetensors" >>"$out/pipeline.log"
for amp in off bf16; do
  $L --quiet recover --teacher "$w/teacher.safetensors" --recipe imagenet1k --ipc $ipc \
    --iterations $iterations --device $dev --amp $amp --channels-last \
    --out "$w/images-$amp" --json "$w/recover-$amp.json" >>"$out/pipeline.log"
  $L --quiet relabel --teacher "$w/teacher.safetensors" --images "$w/images-$amp" --epochs $epochs \
    --batch-size $batch --device $dev --amp $amp --channels-last --out "$w/labels-$amp.lpld" \
    --json "$w/relabel-$amp.json" >>"$out/pipeline.log"
  $L --quiet train --images "$w/images-$amp" --labels "$w/labels-$amp.lpld" --val "imagefolder:$w/data" \
    --arch resnet18-imagenet --epochs $epochs --device $dev --amp $amp \
    --channels-last --out "$w/student-$amp" --json "$w/train-$amp.json" >>"$out/pipeline.log"
  log "pipeline with --amp $amp done"
done
# what --deterministic costs (README "CUDA and mixed precision"): the float32 training again
$L --quiet --deterministic train --images "$w/images-off" --labels "$w/labels-off.lpld" \
  --val "imagefolder:$w/data" --arch resnet18-imagenet --epochs $epochs --device $dev \
  --channels-last --out "$w/student-det" --json "$w/train-det.json" >>"$out/pipeline.log"
log "deterministic training done"
"$python" bench/gpu_check.py torch $dev $size $batch $tsteps "$w/torch.json"
printf '{"mode": "%s", "size": %s, "classes": %s, "ipc": %s, "iterations": %s, "epochs": %s, "batch": %s, "build_seconds": %s, "ctest_rc": %s}\n' \
  "$([ $cpu = 1 ] && echo --cpu || echo gpu)" $size $classes $ipc $iterations $epochs $batch $build_s $ctest_rc >"$w/setup.json"
"$python" bench/gpu_check.py report "$w" "$out"  # gpu.json also holds every stage's result
exit $ctest_rc
