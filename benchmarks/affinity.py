#!/usr/bin/env python3
"""Affinity propagation benchmark: iterselect against scikit-learn, measured in the same run.

Dense: the real MiniLM embeddings of Dolly 15k (shared/data/embeddings/dolly_15k_minilm.npy),
first N rows, S = -||x - y|| (InsBank's similarity). iterselect runs in float32 (default, no
noise) and in float64 with scikit-learn's noise (random_state=0), which must return
scikit-learn's exemplars exactly; scikit-learn runs on the same S (its time includes building S
with sklearn.metrics.pairwise_distances). Peak memory is the largest rise of the process's
resident set during the call, sampled every 10 ms. On a shared machine the load drifts, so each
of our runs is timed once before scikit-learn's and once after, and the two are averaged; wall
and process CPU time are both reported, with the load average over the rows. The header names
the vector path our kernels took (ITERSELECT_SIMD=scalar|avx2|avx512 forces one). The "memory
floor" row streams the bytes the same number of dense iterations must move at least (S, R and A
read once, R and A written once, by numpy on every core), without building S or computing
anything: scikit-learn's time over it estimates the largest speed-up this update order on three
N x N float32 matrices can show on this machine.

Sparse: shared/bench/synth.py's 1,000,000 x 384 embeddings, 32 neighbours; the kNN graph is
built by faiss (IVF-Flat, 4 sqrt(n) lists, 16 probed) and timed apart from the message passing.

    python benchmarks/affinity.py                      # dense 2k..15k (sklearn to 5k), sparse 1M
    python benchmarks/affinity.py --sklearn-max 10000  # sklearn up to 10k too (minutes)
    python benchmarks/affinity.py --sparse-n 0         # dense only
"""
from __future__ import annotations

import argparse
import os
import platform
import threading
import time
import warnings

import numpy as np

from _common import DATA, add_json_option, synth_embeddings, write_json  # noqa: E402

import iterselect  # noqa: E402
from iterselect._backends import core  # noqa: E402
from iterselect.affinity import affinity_propagation  # noqa: E402


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn):
    """(result, seconds, peak RSS rise in bytes, CPU seconds) of fn()."""
    base = rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t, c = time.perf_counter(), time.process_time()
    try:
        out = fn()
    finally:
        dt, dc = time.perf_counter() - t, time.process_time() - c
        stop.set()
        th.join()
    peak[0] = max(peak[0], rss())
    return out, dt, peak[0] - base, dc


def gib(b):
    return f"{b / 2**30:.2f}"


def stream_floor(n: int, threads: int, iterations: int = 10) -> float:
    """Seconds per iteration of the least memory traffic a dense iteration allows: S, R and A
    (n x n float32) read once, R and A written once, by numpy on ``threads`` threads over row
    blocks (each block's R is re-read from cache). No message passing: a floor, not a method."""
    S = np.ones((n, n), np.float32)
    R, A = np.zeros_like(S), np.zeros_like(S)
    rows = 32

    def stream(lo, hi):
        for r0 in range(lo, hi, rows):
            r1 = min(hi, r0 + rows)
            np.add(R[r0:r1], S[r0:r1], out=R[r0:r1])
            np.add(A[r0:r1], R[r0:r1], out=A[r0:r1])

    def one_iteration():
        parts = [threading.Thread(target=stream, args=(n * w // threads, n * (w + 1) // threads))
                 for w in range(threads)]
        for p in parts:
            p.start()
        for p in parts:
            p.join()

    one_iteration()  # first touch of the pages
    t = time.perf_counter()
    for _ in range(iterations):
        one_iteration()
    return (time.perf_counter() - t) / iterations


def dense(sizes, sklearn_max) -> list:
    from sklearn.cluster import affinity_propagation as sk_ap
    from sklearn.metrics import pairwise_distances

    X = np.load(DATA / "embeddings" / "dolly_15k_minilm.npy")
    print("\n## Dense: Dolly 15k MiniLM (float16 -> S = -||x-y||), first N rows\n")
    print("| N | method | time (s) | CPU (s) | iterations | converged | exemplars | peak RSS rise (GiB) "
          "| vs sklearn (time) | vs sklearn (CPU) | load average |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for n in sizes:
        Xn = np.ascontiguousarray(X[:n])

        def quiet(fn):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn()

        def build_s():
            return -pairwise_distances(Xn.astype(np.float64))

        ours = [(f"iterselect float32 (no noise), {os.cpu_count()} threads",
                 lambda: quiet(lambda: affinity_propagation(Xn, progress=False))),
                ("iterselect float32 (no noise), 1 thread",
                 lambda: quiet(lambda: affinity_propagation(Xn, progress=False, threads=1)))]
        if n <= sklearn_max:  # the same S as sklearn's, built and timed the same way
            ours.append(("iterselect float64, sklearn's S and noise",
                         lambda: quiet(lambda: affinity_propagation(build_s(), metric="precomputed", dtype=np.float64,
                                                                    random_state=0, progress=False))))
        loads = [os.getloadavg()[0]]
        first = [measure(fn) for _, fn in ours]
        loads.append(os.getloadavg()[0])
        sk = None
        if n <= sklearn_max:
            sk = measure(lambda: quiet(lambda: sk_ap(build_s(), random_state=0, return_n_iter=True)))
            loads.append(os.getloadavg()[0])
            second = [measure(fn) for _, fn in ours]
            loads.append(os.getloadavg()[0])
        else:
            second = first
        load = f"{min(loads):.1f}-{max(loads):.1f}"
        for (name, _), a, b in zip(ours, first, second):
            r = a[0]
            t, c, mem = (a[1] + b[1]) / 2, (a[3] + b[3]) / 2, max(a[2], b[2])
            vs = f"{sk[1] / t:.1f}x | {sk[3] / c:.1f}x" if sk else "- | -"
            print(f"| {n:,} | {name} | {t:.2f} | {c:.2f} | {r.n_iter} | {r.converged} | {len(r.exemplars)} | "
                  f"{gib(mem)} | {vs} | {load} |", flush=True)
            results.append({"n": n, "method": name, "seconds": t, "cpu_seconds": c, "n_iter": int(r.n_iter),
                            "converged": bool(r.converged), "exemplars": int(len(r.exemplars)),
                            "peak_rss_rise_bytes": int(mem), "simd_path": core.simd_info()["path"],
                            "sklearn_over_this": sk[1] / t if sk else None,
                            "load_average": [min(loads), max(loads)]})
        if sk:
            (c, labels, it), tsk, msk, csk = sk
            r64 = first[-1][0]
            same = np.array_equal(np.asarray(c), r64.exemplars) and np.array_equal(labels, r64.labels)
            print(f"| {n:,} | scikit-learn {__import__('sklearn').__version__} (float64)"
                  f"{', identical exemplars and labels' if same else ', DIFFERS'} | {tsk:.2f} | {csk:.2f} | {it} | "
                  f"n/a | {len(c)} | {gib(msk)} | 1.0x | 1.0x | {load} |", flush=True)
            results.append({"n": n, "method": "scikit-learn", "seconds": tsk, "cpu_seconds": csk, "n_iter": int(it),
                            "identical_to_iterselect_float64": bool(same), "load_average": [min(loads), max(loads)]})
        # the memory floor of the message passing (our float32 row above also builds S from X)
        threads = os.cpu_count()
        per_iter = stream_floor(n, threads)
        iters = first[0][0].n_iter
        floor = per_iter * iters
        vs = f"{sk[1] / floor:.1f}x | - " if sk else "- | -"
        print(f"| {n:,} | memory floor: S, R, A read and R, A written once per iteration (numpy, {threads} threads), "
              f"x {iters} iterations | {floor:.2f} | - | {iters} | - | - | - | {vs}| - |", flush=True)
        results.append({"n": n, "method": "memory floor", "seconds": floor, "seconds_per_iteration": per_iter,
                        "threads": threads, "n_iter": int(iters)})
    return results


def sparse(n, k) -> dict:
    from iterselect._knn import kneighbors

    print(f"\n## Sparse: synth.py embeddings {n:,} x 384, {k} neighbours\n")
    X, t_load, _, _ = measure(lambda: synth_embeddings(n))
    nb, t_knn, m_knn, _ = measure(lambda: kneighbors(X, k, index="ivf"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r, t_ap, m_ap, _ = measure(lambda: affinity_propagation(X, knn=nb, progress=False, return_messages=False))
    print("| step | time (s) | peak RSS rise (GiB) | notes |")
    print("|---|---:|---:|---|")
    print(f"| load / make embeddings | {t_load:.1f} | - | cached .npy after the first run |")
    print(f"| kNN graph (faiss IVF-Flat, {int(max(1, min(4 * np.sqrt(n), n // 39)))} lists, 16 probed) | {t_knn:.1f} | "
          f"{gib(m_knn)} | |")
    print(f"| sparse affinity propagation (float32) | {t_ap:.1f} | {gib(m_ap)} | {r.n_iter} iterations, converged="
          f"{r.converged}, {len(r.exemplars):,} exemplars |")
    return {"n": n, "neighbors": k, "load_seconds": t_load, "knn_seconds": t_knn, "knn_peak_rss_rise_bytes": int(m_knn),
            "ap_seconds": t_ap, "ap_peak_rss_rise_bytes": int(m_ap), "n_iter": int(r.n_iter),
            "converged": bool(r.converged), "exemplars": int(len(r.exemplars))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 5000, 10000, 15000])
    ap.add_argument("--sklearn-max", type=int, default=5000)
    ap.add_argument("--sparse-n", type=int, default=1_000_000)
    ap.add_argument("--neighbors", type=int, default=32)
    add_json_option(ap)
    a = ap.parse_args()
    print(f"# Affinity propagation — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, iterselect {iterselect.__version__}")
    simd = core.simd_info()
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "simd": simd}
    print(f"our vector path: {simd['path']} ({simd['flags']}); this CPU supports {', '.join(simd['supported'])}")
    load = os.getloadavg()
    print(f"(load average at start: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f})")
    if a.sizes:
        results["dense"] = dense(a.sizes, a.sklearn_max)
    if a.sparse_n:
        results["sparse"] = sparse(a.sparse_n, a.neighbors)
    print("\n## GPU\n")
    if iterselect.has_cuda():
        import torch

        X = torch.from_numpy(synth_embeddings(50_000)).cuda()
        r, t, _, _ = measure(lambda: affinity_propagation(X, progress=False))
        torch.cuda.synchronize()
        print(f"| 50,000 dense float32 on {torch.cuda.get_device_name()} | {t:.1f} s | {r.n_iter} iterations |")
        results["gpu"] = {"n": 50_000, "device": torch.cuda.get_device_name(), "seconds": t, "n_iter": int(r.n_iter)}
    else:
        print(f"| 50,000 dense | not run (no GPU: {iterselect.cuda_unavailable_reason()}) |")
        results["gpu"] = f"not run (no GPU: {iterselect.cuda_unavailable_reason()})"
    write_json(a.json, results)


if __name__ == "__main__":
    main()
