#!/usr/bin/env python3
"""Benchmark: k-means, kMQ sampling, silhouette and the Vendi score at a million rows.

Data: synth.py embeddings (the real MiniLM embeddings of Dolly 15k + Alpaca 52k, cycled, with
noise of norm ~0.1, unit length, float32, 384-d), the same for every benchmark at this scale.

    PYTHONPATH=python python benchmarks/cluster.py                       # full size (minutes)
    PYTHONPATH=python python benchmarks/cluster.py --n 50000 --k 64 --sil-sample 5000 --quick

Rows of the table:
  kmeans          faiss k-means of N x 384 into k clusters (CPU; GPU when faiss-gpu and CUDA)
  kmq_sample      one kMQ draw of --budget rows (each `within` mode); ratio = its time as a
                  fraction of the k-means time (target < 5%)
  silhouette      exact, blocked, on a --sil-sample row sample (euclidean and cosine); reference:
                  scikit-learn's silhouette_score on the same --ref-sample rows
  vendi_score     exact cosine Vendi score of all N rows (target < 10 s), float64 and float32
                  block products; reference: vendi-score's
                  score_dual (the same d x d trick on a normalized float64 copy) on the same rows,
                  and its N x N score_K on --vendi-nxn rows
kmq_sample and vendi_score report the best of --repeat runs (the machine may be shared).
Peak memory: the process's peak RSS (ru_maxrss) after each stage, and the peak of numpy/python
allocations in the stage (tracemalloc; faiss's own buffers are not traced).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import time
import tracemalloc

import numpy as np
import scipy.linalg.blas  # noqa: F401  (imported here so no timing includes the import)

from _common import SHARED, add_json_option, write_json
from iterselect._faiss import faiss_num_gpus, import_faiss
from iterselect.cluster import kmeans, kmq_sample
from iterselect.metrics import silhouette, vendi_score

ROWS = []
RESULTS = []  # the same rows for --json, with numbers as numbers


def load_synth(path):
    spec = importlib.util.spec_from_file_location("synth", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(fn, *args, repeat=1, **kw):
    """(result, best wall time of `repeat` runs, traced peak MiB of the first run)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    best = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return out, best, peak / 2**20


def row(stage, size, cpu_s, gpu, reference, ratio, traced_mb, note="", difference=None):
    """One table row; ``difference``: its |difference| against the reference, when it has one."""
    ROWS.append((stage, size, f"{cpu_s:.3f}" if isinstance(cpu_s, float) else cpu_s, gpu, reference,
                 ratio, f"{traced_mb:.0f}", f"{peak_rss_mb():.0f}", note))
    RESULTS.append({"stage": stage, "size": size, "seconds": cpu_s, "gpu": gpu, "reference": reference,
                    "ratio": ratio, "traced_mib": traced_mb, "note": note, "difference": difference})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    ap.add_argument("--k", type=int, default=1024, help="k-means clusters (default 1,024)")
    ap.add_argument("--niter", type=int, default=25)
    ap.add_argument("--budget", type=int, default=None, help="kMQ budget (default N / 20)")
    ap.add_argument("--sil-sample", type=int, default=50_000, help="silhouette sample (default 50,000)")
    ap.add_argument("--ref-sample", type=int, default=10_000, help="sklearn reference sample")
    ap.add_argument("--vendi-nxn", type=int, default=2_000, help="rows for vendi-score's N x N check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth", default=os.environ.get("ITERSELECT_SYNTH", str(SHARED / "bench" / "synth.py")))
    ap.add_argument("--quick", action="store_true", help="skip the scikit-learn/vendi references")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of the cheap stages (kmq_sample, vendi_score); the best is reported")
    ap.add_argument("--stages", default="kmeans,kmq,silhouette,vendi",
                    help="comma-separated subset to run (kmq and silhouette need kmeans)")
    add_json_option(ap)
    a = ap.parse_args()
    stages = set(a.stages.split(","))
    if stages & {"kmq", "silhouette"}:
        stages.add("kmeans")
    budget = a.budget or max(1, a.n // 20)

    faiss = import_faiss("benchmarks/cluster.py")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}, faiss {faiss.__version__}, faiss GPUs {faiss_num_gpus(faiss)}, "
          f"load average {os.getloadavg()[0]:.1f}")
    synth = load_synth(a.synth)
    t0 = time.perf_counter()
    X = synth.embeddings(a.n, a.seed)
    print(f"data: synth.py embeddings({a.n}, seed={a.seed}) {X.shape} {X.dtype}, "
          f"{X.nbytes / 2**20:.0f} MiB, made in {time.perf_counter() - t0:.1f} s")

    if "kmeans" in stages:
        run_kmeans_stages(a, X, faiss, budget, stages)
    if "vendi" in stages:
        run_vendi(a, X)
    print_table(X)
    write_json(a.json, {"n": a.n, "d": X.shape[1], "k": a.k, "rows": RESULTS})


def run_kmeans_stages(a, X, faiss, budget, stages):
    km, t_km, tr = timed(kmeans, X, a.k, niter=a.niter, seed=a.seed, gpu=False)
    gpu_note = "not run (no GPU)"
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda and faiss_num_gpus(faiss) > 0:
        Xg = torch.from_numpy(X).cuda()
        _, t_gpu, _ = timed(kmeans, Xg, a.k, niter=a.niter, seed=a.seed, gpu=True)
        gpu_note = f"{t_gpu:.3f}"
        del Xg
    elif cuda:
        gpu_note = "not run (faiss has no GPU support)"
    sizes = np.bincount(km.labels, minlength=a.k)
    row("kmeans", f"{a.n:,} x {X.shape[1]}, k={a.k}", t_km, gpu_note, "-", "-", tr,
        f"{km.objective.size} iters, inertia {km.inertia:.4g}, sizes {sizes.min()}..{sizes.max()}")

    if "kmq" in stages:
        run_kmq(a, km, t_km, budget)
    if "silhouette" in stages:
        run_silhouette(a, X, km)


def run_kmq(a, km, t_km, budget):
    quality = np.random.default_rng(a.seed + 1).random(a.n)
    for within in ("multinomial", "softmax", "uniform"):
        q = None if within == "uniform" else quality
        res, t, tr = timed(kmq_sample, km.labels, budget, quality=q, within=within, seed=a.seed,
                           repeat=a.repeat)
        assert res.indices.size == budget
        row(f"kmq_sample {within}", f"budget {budget:,} of {a.n:,}", t, "-", "kmeans time",
            f"{100 * t / t_km:.2f}%", tr)


def run_silhouette(a, X, km):
    s = min(a.sil_sample, a.n)
    for metric in ("euclidean", "cosine"):
        res, t, tr = timed(silhouette, X, km.labels, metric=metric, sample_size=s, seed=a.seed,
                           progress=False)
        row(f"silhouette {metric}", f"sample {s:,}", t, "-", "-", "-", tr, f"score {res.score:.5f}")
    if not a.quick:
        from sklearn.metrics import silhouette_score

        r = min(a.ref_sample, a.n)
        for metric in ("euclidean", "cosine"):
            ours, t_ours, tr = timed(silhouette, X, km.labels, metric=metric, sample_size=r,
                                     seed=a.seed, progress=False)
            idx = ours.indices
            ref, t_ref, _ = timed(silhouette_score, X[idx], km.labels[idx], metric=metric)
            row(f"silhouette {metric}", f"sample {r:,}", t_ours, "-", f"sklearn {t_ref:.3f} s",
                f"{t_ref / t_ours:.1f}x faster", tr, f"|diff| {abs(ours.score - ref):.1e}",
                difference=abs(ours.score - ref))


def run_vendi(a, X):
    res, t_v, tr = timed(vendi_score, X, repeat=a.repeat)
    row("vendi_score", f"{a.n:,} x {X.shape[1]}", t_v, "-", "-", "-", tr,
        f"score {res.score:.6f} ({'under' if t_v < 10 else 'OVER'} 10 s)")
    res32, t_v32, tr = timed(vendi_score, X, dtype="float32", repeat=a.repeat)
    row("vendi_score float32", f"{a.n:,} x {X.shape[1]}", t_v32, "-", "float64 blocks",
        f"{t_v / t_v32:.1f}x faster", tr, f"score {res32.score:.6f} "
        f"({'under' if t_v32 < 10 else 'OVER'} 10 s), |rel diff| {abs(res32.score / res.score - 1):.1e}",
        difference=abs(res32.score / res.score - 1))
    if not a.quick:
        from vendi_score import vendi
        from sklearn.preprocessing import normalize

        ref, t_ref, tr_ref = timed(vendi.score_dual, X, repeat=a.repeat)
        row("vendi_score", f"{a.n:,} x {X.shape[1]}", t_v, "-", f"score_dual {t_ref:.3f} s",
            f"{t_ref / t_v:.1f}x faster", tr, f"|rel diff| {abs(res.score / ref - 1):.1e}; "
            f"score_dual traced {tr_ref:.0f} MiB", difference=abs(res.score / ref - 1))
        m = min(a.vendi_nxn, a.n)
        Xs = normalize(X[:m].astype(np.float64))
        ref, t_ref, _ = timed(lambda: vendi.score_K(Xs @ Xs.T))
        ours, t_o, tr = timed(vendi_score, X[:m], repeat=a.repeat)
        row("vendi_score", f"{m:,} x {X.shape[1]}", t_o, "-", f"N x N score_K {t_ref:.3f} s",
            f"{t_ref / t_o:.0f}x faster", tr, f"|rel diff| {abs(ours.score / ref - 1):.1e}",
            difference=abs(ours.score / ref - 1))


def print_table(X):
    head = ("stage", "size", "CPU s", "GPU s", "reference", "ratio", "traced MiB", "peak RSS MiB", "notes")
    table = [head] + ROWS
    w = [max(len(str(r[i])) for r in table) for i in range(len(head))]
    print()
    for i, r in enumerate(table):
        print(" | ".join(str(c).ljust(w[j]) for j, c in enumerate(r)))
        if i == 0:
            print("-+-".join("-" * x for x in w))
    print(f"\npeak RSS of the process: {peak_rss_mb():.0f} MiB (input X: {X.nbytes / 2**20:.0f} MiB); "
          f"load average at the end {os.getloadavg()[0]:.1f} (other jobs share the CPUs)")


if __name__ == "__main__":
    main()
