"""k-center greedy on a GPU: time per pick against the time to read X once at the GPU's memory
bandwidth (target: within 1.5x), 1,000,000 x 768 in bfloat16, plus the CPU path's picks.

    python benchmarks/kcenter_gpu.py [--n 1000000] [--d 768] [--k 2000]

Prints "not run" when no CUDA device (or no iterselect._cuda) is present.
"""
from __future__ import annotations

import argparse
import time

import iterselect


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--k", type=int, default=2000)
    args = ap.parse_args()
    if not iterselect.has_cuda():
        print(f"GPU k-center benchmark: not run ({iterselect.cuda_unavailable_reason()})")
        return
    import torch

    g = torch.Generator(device="cuda").manual_seed(0)
    X = torch.randn(args.n, args.d, device="cuda", generator=g).to(torch.bfloat16)
    X /= X.float().norm(dim=1, keepdim=True).to(torch.bfloat16)
    # bandwidth: time a full read of X (a sum over it) as the floor for one pick
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        X.sum(dtype=torch.float32)
    torch.cuda.synchronize()
    read = (time.perf_counter() - t0) / 10
    iterselect.kcenter_greedy(X, 10, progress=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    iterselect.kcenter_greedy(X, args.k, progress=False)
    torch.cuda.synchronize()
    per_pick = (time.perf_counter() - t0) / args.k
    print(f"device: {torch.cuda.get_device_name()}  X: {args.n} x {args.d} bfloat16 ({X.numel() * 2 / 1e9:.2f} GB)")
    print(f"read X once: {read * 1e3:.3f} ms ({X.numel() * 2 / read / 1e9:.0f} GB/s)")
    print(f"per pick:    {per_pick * 1e3:.3f} ms  ratio {per_pick / read:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
