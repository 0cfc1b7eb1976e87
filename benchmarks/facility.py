#!/usr/bin/env python3
"""Facility location: iterselect's exact lazy greedy on a kNN graph against apricot's
FacilityLocationSelection (dense N x N similarities), same data, same run.

Data: MiniLM embeddings of Dolly 15k (../shared/data/embeddings/dolly_15k_minilm.npy, float16,
read as float32). Similarity: apricot's metric="euclidean" (its default): the largest squared
distance minus each squared distance. iterselect stores it for each point's n_neighbors nearest
points (faiss) and itself; apricot for every pair.

Part "full": all of Dolly, k = 1,000. Each selector runs in its own child process, so its time
(graph and greedy, apricot's numba compilation included) and its peak resident memory are its
own. Agreement: both pick sets are scored on apricot's dense objective,
F(S) = sum_i max_{j in S} (M - ||x_i - x_j||^2) = N M - cost(S), with cost(S) the sum of squared
distances to the nearest pick, computed blockwise in float64; the table gives each F relative
to apricot's.

Part "same-objective": the first --sub rows (float64), every pair stored on both sides
(n_neighbors = n - 1), so both optimize the same function: picks compared one by one (identical,
or the first differing step shown to be a tie of the two best gains to rounding), against
apricot's naive and lazy optimizers.

    python benchmarks/facility.py [--k 1000] [--neighbors 10,30,100] [--sub 2000] [--n ROWS] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from _common import DATA, machine, print_table

DOLLY = DATA / "embeddings" / "dolly_15k_minilm.npy"


def load(n: int | None = None, dtype=np.float32) -> np.ndarray:
    X = np.load(DOLLY)
    return np.ascontiguousarray((X if n is None else X[:n]).astype(dtype))


# ----------------------------------------------------------------------------- child processes

def worker(args) -> dict:
    """One selector on one data set; prints nothing but its JSON result."""
    X = load(args.n, np.float64 if args.float64 else np.float32)
    t0 = time.perf_counter()
    out = {}
    if args.worker == "apricot":
        # numba (under apricot) imports the coverage package, which benchmarks/coverage.py shadows
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        from apricot import FacilityLocationSelection

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # apricot compiles its numba kernels at every fit: a fit of 50 points shows that cost
            FacilityLocationSelection(5, metric="euclidean", optimizer=args.optimizer).fit(X[:50])
            out["tiny_fit_s"] = time.perf_counter() - t0
            sel = FacilityLocationSelection(args.k, metric="euclidean", optimizer=args.optimizer).fit(X)
        out.update(indices=np.asarray(sel.ranking).tolist(), gains=np.asarray(sel.gains, dtype=float).tolist())
    else:
        from iterselect.facility import facility_location_graph, knn_similarity_graph

        graph = knn_similarity_graph(X, args.neighbors, metric=args.metric)
        t_graph = time.perf_counter() - t0
        r = facility_location_graph(graph, args.k, progress=False)
        out.update(indices=r.indices.tolist(), gains=r.gains.tolist(), graph_s=t_graph, nnz=int(graph.nnz),
                   evaluations=r.evaluations)
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def run_worker(**kw) -> dict:
    cmd = [sys.executable, __file__, "--worker", kw.pop("worker")]
    for key, value in kw.items():
        if value is True:
            cmd.append(f"--{key.replace('_', '-')}")
        elif value is not None and value is not False:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(cmd + ["--result", f.name], check=True)
        return json.load(open(f.name))


# ----------------------------------------------------------------------------- agreement

def nearest_sq(X: np.ndarray, picks, block: int = 2048) -> np.ndarray:
    """min_{j in picks} ||x_i - x_j||^2 for every point, in float64 (blocks of points)."""
    X = X.astype(np.float64)
    C = X[np.asarray(picks)]
    cc = np.einsum("ij,ij->i", C, C)
    out = np.empty(len(X))
    for s in range(0, len(X), block):
        B = X[s:s + block]
        d = np.einsum("ij,ij->i", B, B)[:, None] + cc[None, :] - 2.0 * (B @ C.T)
        out[s:s + block] = np.maximum(d.min(axis=1), 0.0)
    return out


def nearest_cost(X: np.ndarray, picks) -> float:
    """sum_i min_{j in picks} ||x_i - x_j||^2."""
    return float(nearest_sq(X, picks).sum())


def largest_sq_distance(X: np.ndarray, block: int = 2048) -> float:
    X = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", X, X)
    best = 0.0
    for s in range(0, len(X), block):
        B = X[s:s + block]
        best = max(best, float((sq[s:s + block, None] + sq[None, :] - 2.0 * (B @ X.T)).max()))
    return best


def compare_picks(ours: dict, theirs: dict, X: np.ndarray) -> str:
    """'identical (k)', or where the picks first differ and whether that step is a tie of the two
    best gains to rounding (in float64, on the common prefix)."""
    a, b = np.asarray(ours["indices"]), np.asarray(theirs["indices"])
    diff = np.flatnonzero(a != b)
    if diff.size == 0:
        return f"identical ({len(a)})"
    t = int(diff[0])
    M = largest_sq_distance(X)
    current = np.zeros(len(X)) if t == 0 else M - nearest_sq(X, a[:t])
    D = ((X[:, None, :] - X[None, [a[t], b[t]], :]) ** 2).sum(axis=2)
    gains = np.maximum(M - D - current[:, None], 0).sum(axis=0)
    gap = abs(gains[0] - gains[1]) / max(abs(gains[0]), 1e-300)
    same = "identical rows" if np.array_equal(X[a[t]], X[b[t]]) else "different rows"
    return (f"first differs at pick {t}: {a[t]} vs {b[t]} ({same}), gains {gains[0]:.6g} vs {gains[1]:.6g} "
            f"(relative gap {gap:.1e})")


# ----------------------------------------------------------------------------- parts

def part_full(args, report: dict) -> None:
    X = load(args.n)
    n = len(X)
    print(f"\nPart full: Dolly {n} x {X.shape[1]}, k = {args.k}, similarity M - ||x_i - x_j||^2", flush=True)
    runs = {"apricot (dense, lazy)": run_worker(worker="apricot", k=args.k, optimizer="lazy", n=args.n)}
    for nb in args.neighbors:
        runs[f"iterselect kNN {nb}"] = run_worker(worker="iterselect", k=args.k, neighbors=nb, metric="euclidean",
                                                  n=args.n)
    M = largest_sq_distance(X)
    ref = runs["apricot (dense, lazy)"]
    ref_cost = nearest_cost(X, ref["indices"])
    ref_F = n * M - ref_cost
    rows = []
    for name, r in runs.items():
        cost = nearest_cost(X, r["indices"])
        F = n * M - cost
        common = len(set(r["indices"]) & set(ref["indices"]))
        row = {"selector": name, "time s": f"{r['seconds']:.2f}",
               "graph s": f"{r['graph_s']:.2f}" if "graph_s" in r else "-",
               "greedy s": f"{r['seconds'] - r['graph_s']:.2f}" if "graph_s" in r else "-",
               "50-point fit s": f"{r['tiny_fit_s']:.2f}" if "tiny_fit_s" in r else "-",
               "speed-up": f"{ref['seconds'] / r['seconds']:.1f}x",
               "peak RSS GiB": f"{r['peak_rss'] / 2**30:.2f}",
               "dense F / apricot's": f"{F / ref_F:.6f}",
               "cost / apricot's": f"{cost / ref_cost:.4f}",
               "common picks": f"{common}/{args.k}",
               "gain evals": f"{r['evaluations'] / (args.k * n):.1%}" if r.get("evaluations") else "-"}
        rows.append(row)
        report.setdefault("full", []).append({**{k: v for k, v in r.items() if k not in ("indices", "gains")},
                                               "selector": name, "dense_objective": F, "nearest_cost": cost,
                                               "common_picks": common})
    print_table(rows, list(rows[0].keys()))
    print(f"(M = {M:.4f}, the largest squared distance; F = N M - cost. apricot's time includes a fit "
          "of 50 points first, shown apart: it compiles its numba kernels at every fit. gain evals: gains "
          "computed by the lazy greedy relative to the plain greedy's k N.)")


def part_same_objective(args, report: dict) -> None:
    X = load(args.sub, np.float64)
    n = len(X)
    k = min(args.k, n - 1)
    print(f"\nPart same-objective: first {n} rows of Dolly (float64), k = {k}, every pair stored", flush=True)
    ours = run_worker(worker="iterselect", k=k, neighbors=n - 1, metric="euclidean", n=n, float64=True)
    M = largest_sq_distance(X)
    ours_F = n * M - nearest_cost(X, ours["indices"])
    rows = [{"selector": "iterselect (complete graph)", "time s": f"{ours['seconds']:.2f}", "50-point fit s": "-",
             "F / iterselect's": "1", "picks vs iterselect": "-", "max rel. gain diff": "-"}]
    for optimizer in args.optimizers.split(","):
        r = run_worker(worker="apricot", k=k, optimizer=optimizer, n=n, float64=True)
        g_a, g_o = np.asarray(r["gains"]), np.asarray(ours["gains"])
        same = np.asarray(r["indices"]) == np.asarray(ours["indices"])
        upto = len(same) if same.all() else int(np.argmin(same))
        rel = float(np.max(np.abs(g_a[:upto + 1] - g_o[:upto + 1]) / np.abs(g_o[:upto + 1]))) if upto else 0.0
        verdict = compare_picks(ours, r, X)
        F = n * M - nearest_cost(X, r["indices"])
        rows.append({"selector": f"apricot {optimizer}", "time s": f"{r['seconds']:.2f}",
                     "50-point fit s": f"{r['tiny_fit_s']:.2f}", "F / iterselect's": f"{F / ours_F:.9f}",
                     "picks vs iterselect": verdict, "max rel. gain diff": f"{rel:.1e}"})
        report.setdefault("same_objective", []).append({"optimizer": optimizer, "seconds": r["seconds"],
                                                         "compile_fit_seconds": r["tiny_fit_s"],
                                                         "objective_ratio": F / ours_F, "picks": verdict,
                                                         "max_rel_gain_diff": rel})
    report.setdefault("same_objective", []).append({"selector": "iterselect", "seconds": ours["seconds"]})
    print_table(rows, list(rows[0].keys()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["full", "same-objective", "all"], default="all")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--neighbors", default="10,30,100", help="comma list of n_neighbors for the full part")
    ap.add_argument("--sub", type=int, default=2000, help="rows of the same-objective part")
    ap.add_argument("--optimizers", default="naive,lazy", help="apricot optimizers in the same-objective part")
    ap.add_argument("--json", default=None, help="also write the results as JSON to this path")
    # the child processes' arguments
    ap.add_argument("--worker", choices=["apricot", "iterselect"], help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--optimizer", default="lazy", help=argparse.SUPPRESS)
    ap.add_argument("--metric", default="euclidean", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help="rows of Dolly in the full part (default: all)")
    ap.add_argument("--float64", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.neighbors = int(args.neighbors.split(",")[0])
        with open(args.result, "w") as f:
            json.dump(worker(args), f)
        return
    args.neighbors = [int(v) for v in args.neighbors.split(",")]
    report = {"machine": machine(), "load_average_at_start": os.getloadavg()[0], "k": args.k}
    print(f"machine: {report['machine']}; load average {report['load_average_at_start']:.1f} (shared machine: "
          "compare within a run)")
    if args.part in ("full", "all"):
        part_full(args, report)
    if args.part in ("same-objective", "all"):
        part_same_objective(args, report)
    if args.json:
        from iterselect.runs import atomic_write_json

        atomic_write_json(report, args.json)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
