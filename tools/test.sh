#!/usr/bin/env bash
# The test command: the Python tests and doctests against the installed package, then the C++
# kernels under the CPU emulation of the CUDA grid with ThreadSanitizer and AddressSanitizer.
# Extra arguments go to pytest (e.g. `bash tools/test.sh -x -k kcenter`).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest tests "$@"
python -m pytest -q --doctest-modules --pyargs iterselect -p no:cacheprovider
bash tools/sanitize.sh
