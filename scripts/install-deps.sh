#!/usr/bin/env bash
# Installs the Debian packages lpld needs, only those missing. Idempotent: quick and
# silent when everything is there. Run as root (or with sudo available).
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config
      libtorch-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
      libpng-dev libjpeg-dev zlib1g-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev
      # the check of a torch.save archive's directory before libtorch reads it (core/torch_file.cpp)
      libzip-dev
      # the heap allocator of every lpld program (src/core/runtime.cpp, bench/results/allocator.md)
      libjemalloc-dev
      # the headers of the Gloo backend of c10d (multi-process runs, src/core/dist.h)
      libgloo-dev
      # an optimized BLAS behind libtorch's matrix products (the reference BLAS of a fresh
      # machine makes 1000-class heads a bottleneck: bench/results/scale.md)
      libopenblas0-pthread
      dataset-fashion-mnist gnuplot-nox
      # PyTorch itself, the reference of the parity suite (tests/test_parity.cpp) and of bench/
      python3-torch python3-torchvision python3-numpy
      # the virtual environment of the default build (scripts/install-venv.sh) on a Python without pyenv
      python3-venv
      # the libFuzzer targets (fuzz/, make fuzz): clang with its fuzzer and sanitizer runtimes
      clang-14 libfuzzer-14-dev libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing Debian packages: ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
