#!/usr/bin/env bash
# Development build: compiles the extension modules straight into python/iterselect, so that
# `PYTHONPATH=python pytest` tests the working tree. Usage: ./dev-build.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")"
cmake -S . -B build/dev -G Ninja -DITERSELECT_INPLACE=ON -DITERSELECT_CUDA_EMULATION=ON \
  -DITERSELECT_ENABLE_CUDA="${ITERSELECT_ENABLE_CUDA:-OFF}" \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "$@" >/dev/null
cmake --build build/dev
