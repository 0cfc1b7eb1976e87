"""k-center greedy on a GPU, 1,000,000 x 768 in bfloat16:

- per pick, against the time to read X once at the GPU's memory bandwidth (target: within 1.5x);
- the warm start's pool pass (the min-distance of every point to a pool of --pool points, one
  blocked kernel), against torch's cdist (a cuBLAS GEMM) + min over the same pool, measured in
  the same run, with the picks checked equal to the CPU path's on a 100,000-row slice.

    python benchmarks/kcenter_gpu.py [--n 1000000] [--d 768] [--k 2000] [--pool 50000] [--json PATH]

Prints "not run" when no CUDA device (or no iterselect._cuda) is present (and writes
``{"run": false, "reason": ...}`` with --json).
"""
from __future__ import annotations

import argparse
import time

import iterselect

from _common import add_json_option, write_json  # noqa: E402  (benchmarks/_common.py)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--k", type=int, default=2000)
    ap.add_argument("--pool", type=int, default=50_000)
    add_json_option(ap)
    args = ap.parse_args()
    if not iterselect.has_cuda():
        reason = iterselect.cuda_unavailable_reason()
        print(f"GPU k-center benchmark (per pick; pool pass of {args.pool:,}): not run ({reason})")
        write_json(args.json, {"run": False, "reason": reason})
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
    pool = pool_pass(X, args.pool)
    write_json(args.json, {"run": True, "device": torch.cuda.get_device_name(), "n": args.n, "d": args.d,
                           "k": args.k, "read_seconds": read, "per_pick_seconds": per_pick,
                           "per_pick_over_read": per_pick / read, **pool})


def pool_pass(X, size):
    """The warm start's pool pass (k = 1 after a pool) against cdist + min on the same pool."""
    import numpy as np
    import torch

    pool = np.random.default_rng(0).choice(X.shape[0], size, replace=False)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    iterselect.kcenter_greedy(X, 1, selected=pool, progress=False)
    torch.cuda.synchronize()
    ours = time.perf_counter() - t0
    P = X[torch.from_numpy(pool).cuda()].float()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for r0 in range(0, X.shape[0], 65536):  # blocks of rows keep the distance tile in memory
        torch.cdist(X[r0:r0 + 65536].float(), P).min(dim=1)
    torch.cuda.synchronize()
    ref = time.perf_counter() - t0
    sl = X[:100_000]
    small = pool[pool < 100_000]
    same = np.array_equal(iterselect.kcenter_greedy(sl, 50, selected=small, progress=False).indices.cpu().numpy(),
                          iterselect.kcenter_greedy(sl.cpu(), 50, selected=small, progress=False).indices.numpy())
    print(f"pool pass:   {ours * 1e3:.1f} ms for {size:,} pool points; torch cdist + min {ref * 1e3:.1f} ms; "
          f"ratio {ours / ref:.2f}x; picks equal to the CPU path on 100,000 rows: {same}")
    return {"pool": size, "pool_pass_seconds": ours, "cdist_min_seconds": ref, "identical": same}


if __name__ == "__main__":
    main()
