#!/usr/bin/env bash
# The C++ package as a consumer sees it: a C++-only build (-DITERSELECT_PYTHON=OFF) installed
# into a temporary prefix, then examples/cpp configured against it with find_package(iterselect),
# built and run. Run by tools/test.sh (and so by CI). Usage: bash tools/cpp_package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$work/build" "${generator[@]}" -DITERSELECT_PYTHON=OFF -DITERSELECT_ENABLE_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/build" -j "$jobs" >/dev/null
cmake --install "$work/build" >/dev/null
cmake -S examples/cpp -B "$work/example" "${generator[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/example" >/dev/null
"$work/example/select_example"
echo "C++ package: installed, found by find_package(iterselect), example built and run"
