#!/usr/bin/env bash
# Puts the pinned PyTorch from PyPI into the project's virtual environment (.venv, ignored by
# git): the libtorch of lpld's default build (LPLD_TORCH=pip) and the reference of its parity
# tests and benches. Idempotent: quick and silent when the pins are already installed.
# The wheel is PyTorch's CUDA build (its CUDA runtime comes as nvidia-* wheels, ~4 GB in all);
# every test runs it on the CPU. The pins match the GPU machine's PyTorch (scripts/gpu-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LPLD_VENV:-.venv}
pins=(torch==2.11.0 torchvision==0.26.0 numpy==2.4.6)
stamp="$venv/lpld-pins.txt"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ]; then
  exit 0
fi
# The first python3 on PATH (pyenv's 3.11 here), else Debian's (python3-venv installs its venv).
python=${LPLD_BASE_PYTHON:-python3}
echo "Installing ${pins[*]} into $venv (PyPI; a few minutes the first time)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input "${pins[@]}"
"$venv/bin/python" -c "import torch, torchvision, numpy" >/dev/null
echo "${pins[*]}" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
