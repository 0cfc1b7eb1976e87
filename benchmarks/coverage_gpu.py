#!/usr/bin/env python3
"""Weighted coverage greedy (IterIT's diversity selection) on a GPU against the CPU path.

The TF-IDF matrix of the 52,002 Alpaca responses (1-3 grams, built once on the CPU) is moved to
the GPU as a torch CSR tensor; both paths pick k = 2,600 rows (decay 0.1, row weights uniform in
[0.2, 1], seed 0). Reported: each path's time, the ratio, and whether the picks, gains and column
weights are identical (they must be, bit for bit). --synthetic N does the same on N synthetic
documents (../shared/bench/synth.py texts) with k = N / 20.

    python benchmarks/coverage_gpu.py [--k 2600] [--synthetic N] [--json PATH]

Prints "not run" when no CUDA device (or no iterselect._cuda) is present (and writes
``{"run": false, "reason": ...}`` with --json).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import iterselect
from iterselect.coverage import coverage_greedy, tfidf_matrix

from _common import DATA, add_json_option, load_outputs, synth_texts, write_json  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=2600)
    ap.add_argument("--synthetic", type=int, default=0, help="N synthetic documents instead of Alpaca")
    add_json_option(ap)
    a = ap.parse_args()
    what = f"{a.synthetic:,} synthetic documents" if a.synthetic else "Alpaca responses"
    if not iterselect.has_cuda():
        reason = iterselect.cuda_unavailable_reason()
        print(f"GPU coverage benchmark ({what}): not run ({reason})")
        write_json(a.json, {"run": False, "reason": reason})
        return
    import torch

    if a.synthetic:
        texts = load_outputs(synth_texts(), a.synthetic)
    else:
        texts = load_outputs(DATA / "alpaca_52k.jsonl.gz")
    k = a.k if not a.synthetic else a.synthetic // 20
    X = tfidf_matrix(texts, progress=False).matrix
    w = np.random.default_rng(0).uniform(0.2, 1.0, X.shape[0])
    t0 = time.perf_counter()
    cpu = coverage_greedy(X, k, weights=w, progress=False)
    t_cpu = time.perf_counter() - t0
    T = torch.sparse_csr_tensor(*(torch.from_numpy(v) for v in (X.indptr, X.indices, X.data)), size=X.shape).cuda()
    wg = torch.from_numpy(w).cuda()
    coverage_greedy(T, 10, weights=wg, progress=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    gpu = coverage_greedy(T, k, weights=wg, progress=False)
    torch.cuda.synchronize()
    t_gpu = time.perf_counter() - t0
    same = all(np.array_equal(getattr(gpu, f).cpu().numpy(), getattr(cpu, f)) for f in ("indices", "gains", "alpha"))
    print(f"{what}: n = {X.shape[0]:,}, nnz {X.nnz:,}, k = {k:,}; device {torch.cuda.get_device_name()}")
    print("| path | time | refreshes |\n| --- | --- | --- |")
    print(f"| CPU (C++, all threads) | {t_cpu:.3f} s | {cpu.refreshes:,} |")
    print(f"| GPU | {t_gpu:.3f} s ({t_cpu / t_gpu:.1f}x) | {gpu.refreshes:,} |")
    print(f"identical picks, gains and column weights: {same}")
    write_json(a.json, {"run": True, "data": what, "device": torch.cuda.get_device_name(), "n": X.shape[0],
                        "nnz": X.nnz, "k": k, "cpu_seconds": t_cpu, "gpu_seconds": t_gpu,
                        "cpu_refreshes": cpu.refreshes, "gpu_refreshes": gpu.refreshes, "identical": same})


if __name__ == "__main__":
    main()
