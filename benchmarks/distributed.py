"""Sharded k-center greedy on a local Ray cluster against single-process kcenter_greedy, same run,
same data: wall time, picks per round trip, round-trip latency, bytes moved per pick and each
actor's peak memory. The picks must be identical (the run stops with an error otherwise).

Data: rows of ../shared/bench/synth.py (MiniLM-like, 384 dims; the first --n rows of the
million), cached as .npy by the benchmarks' helpers and memory-mapped by every actor.

    python benchmarks/distributed.py                           # 100,000 rows, k = 1,000
    python benchmarks/distributed.py --n 1000000 --k 10000     # the issue's target size
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import CACHE, add_json_option, machine, print_table, synth_embeddings, timed, write_json

import iterselect
from iterselect import distributed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=1_000)
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local cluster (default: all)")
    ap.add_argument("--candidates", type=int, default=32)
    add_json_option(ap)
    args = ap.parse_args()

    import ray

    synth_embeddings(args.n, "float32")  # generated once into the cache
    path = CACHE / f"synth_embeddings_{args.n}_float32.npy"
    X = np.load(path, mmap_mode="r")
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ref, t_ref = timed(iterselect.kcenter_greedy, X, args.k, progress=False)
    rows = [dict(run="single process", seconds=f"{t_ref:.2f}", ratio="1.00")]
    results = dict(machine=machine(), n=args.n, d=int(X.shape[1]), k=args.k, single_seconds=t_ref, runs=[])
    for actors in args.actors:
        got, t = timed(distributed.kcenter_greedy, str(path), args.k, num_shards=actors,
                       candidates=args.candidates, progress=False)
        if not np.array_equal(got.indices, ref.indices):
            raise SystemExit(f"{actors} actors: picks differ from the single process's")
        s = got.stats
        run = dict(actors=actors, seconds=t, loop_seconds=s.seconds, ratio=t / t_ref, rounds=s.rounds,
                   picks_per_round=s.picks / s.rounds, round_trip_ms=1e3 * s.round_trip_seconds,
                   bytes_per_pick=(s.bytes_to_shards + s.bytes_from_shards) / s.picks,
                   peak_memory_mib=[m / 2**20 for m in s.peak_memory], identical=True)
        results["runs"].append(run)
        rows.append(dict(run=f"{actors} actor(s)", seconds=f"{t:.2f}", ratio=f"{t / t_ref:.2f}",
                         rounds=s.rounds, **{"picks/round": f"{run['picks_per_round']:.1f}",
                                             "round trip ms": f"{run['round_trip_ms']:.1f}",
                                             "bytes/pick": f"{run['bytes_per_pick']:.0f}",
                                             "peak MiB/actor": f"{max(run['peak_memory_mib']):.0f}"}))
    ray.shutdown()
    print(f"k-center greedy, {args.n:,} x {X.shape[1]} float32, k = {args.k:,}; {machine()}")
    print_table(rows, ["run", "seconds", "ratio", "rounds", "picks/round", "round trip ms", "bytes/pick",
                       "peak MiB/actor"])
    print("picks identical to the single process's in every run")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
