#!/usr/bin/env bash
# Development build: compiles the extension modules straight into python/iterselect, so that
# `PYTHONPATH=python pytest` tests the working tree. Usage: ./dev-build.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")"
if ! pybind11_dir=$(python3 -m pybind11 --cmakedir 2>/dev/null); then
  echo "dev-build.sh: pybind11 is not installed for $(command -v python3); install it first:" >&2
  echo "    python3 -m pip install 'pybind11>=2.12' cmake ninja" >&2
  exit 1
fi
cmake -S . -B build/dev -G Ninja -DITERSELECT_INPLACE=ON -DITERSELECT_CUDA_EMULATION=ON \
  -DITERSELECT_ENABLE_CUDA="${ITERSELECT_ENABLE_CUDA:-OFF}" \
  -Dpybind11_DIR="$pybind11_dir" "$@" >/dev/null
cmake --build build/dev
