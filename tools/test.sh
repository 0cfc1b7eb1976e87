#!/usr/bin/env bash
# The test command: the Python tests (then those marked slow, deselected by default) and the
# doctests against the installed package, the installed C++ package built into examples/cpp and
# run (tools/cpp_package.sh), then the C++ kernels under the CPU emulation of the CUDA grid with
# ThreadSanitizer and AddressSanitizer.
# Extra arguments go to pytest (e.g. `bash tools/test.sh -x -k kcenter`).
# ITERSELECT_TEST_STRICT=1 (set by .ci/run) makes a test that would skip for missing shared data,
# a missing emulation module or a missing optional dependency fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest tests "$@"
python -m pytest tests -m slow "$@" || [ $? -eq 5 ]   # 5: the arguments deselected every slow test
python -m pytest -q --doctest-modules --pyargs iterselect -p no:cacheprovider
bash tools/cpp_package.sh
bash tools/sanitize.sh
