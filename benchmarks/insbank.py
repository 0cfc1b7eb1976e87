#!/usr/bin/env python3
"""InsBank/PIBE at the paper's scale: one round over 82,000 candidates (the paper's first round,
Self-Instruct's 82k), then a round with history over the bank and 52,002 new samples (Alpaca's
size), on this machine.

Data: shared/bench/synth.py's embeddings (the real MiniLM embeddings of Dolly 15k and Alpaca 52k,
cycled, each copy with Gaussian noise of norm ~0.1, unit length), rows 0..N-1 for the first round
and the next rows for the second; quality uniform in [0, 1) from seed 0. InsBank runs with the
paper's settings (Appendix A) and ``mode="auto"``, which picks the sparse mode when the dense
round does not fit (it says so). Peak memory is the largest rise of the process's resident set
during the call, sampled every 5 ms.

Reference, measured in the same run: the same InsBank round over the first ``--reference``
candidates in the dense mode and in the sparse mode, so the 82k round's time can be read as a
ratio against a round the dense mode can hold.

    python benchmarks/insbank.py                          # 82,000 then 6,000 + 52,002
    python benchmarks/insbank.py --second 0 --json out.json
"""
from __future__ import annotations

import argparse
import os
import platform
import warnings

import numpy as np

from _common import (add_json_option, machine, peak_memory, synth_embeddings,  # noqa: E402
                     timed, write_json)

import iterselect  # noqa: E402
from iterselect.methods.insbank import InsBank  # noqa: E402


def _round(ib, X, q, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with peak_memory() as mem:
            res, seconds = timed(ib.select_round, X, q, **kw)
    notes = [str(w.message) for w in caught]
    return res, {"n_candidates": int(res.candidate_scores.size), "mode": res.mode,
                 "seconds": round(seconds, 2), "peak_rss_rise_gib": round(mem["extra"] / 2**30, 3),
                 "n_iter": res.n_iter, "converged": res.converged, "used_history": res.used_history,
                 "n_exemplars": int(res.exemplars.size), "warnings": notes}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=82_000, help="candidates of the first round")
    ap.add_argument("--second", type=int, default=52_002, help="new samples of the second round (0: none)")
    ap.add_argument("--bank", type=int, default=6_000, help="bank size (the paper's m)")
    ap.add_argument("--neighbors", type=int, default=64, help="sparse mode: neighbours per candidate")
    ap.add_argument("--reference", type=int, default=8_000, help="dense and sparse reference round size (0: none)")
    add_json_option(ap)
    a = ap.parse_args()
    X = synth_embeddings(a.n + a.second)
    q = np.random.default_rng(0).random(a.n + a.second)
    out = {"machine": machine(), "iterselect": iterselect.__version__, "bank_size": a.bank,
           "n_neighbors": a.neighbors, "data": "shared/bench/synth.py embeddings (float32, 384-d)",
           "rounds": []}
    try:
        out["load_average_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    print(f"# InsBank at the paper's scale — {machine()}")
    if a.reference:
        bank = min(a.bank, a.reference)
        for mode in ("dense", "sparse"):
            ib = InsBank(bank, mode=mode, n_neighbors=a.neighbors, progress=False)
            _, row = _round(ib, X[:a.reference], q[:a.reference])
            out.setdefault("reference", []).append(row)
            print(f"reference {mode:6s} {a.reference:>7,} candidates: {row['seconds']:8.1f} s, "
                  f"peak RSS +{row['peak_rss_rise_gib']:.2f} GiB, {row['n_iter']} iterations", flush=True)
    ib = InsBank(a.bank, n_neighbors=a.neighbors, progress=False)
    first, row = _round(ib, X[:a.n], q[:a.n])
    out["rounds"].append(row)
    print(f"round 1: {row['n_candidates']:>7,} candidates, {row['mode']}: {row['seconds']:.1f} s, "
          f"peak RSS +{row['peak_rss_rise_gib']:.2f} GiB, {row['n_iter']} iterations, converged={row['converged']}",
          flush=True)
    for w in row["warnings"]:
        print(f"  ({w})")
    if a.second:
        second, row = _round(ib, X[a.n:], q[a.n:], bank=first.bank, bank_history=first.history)
        out["rounds"].append(row)
        print(f"round 2: {row['n_candidates']:>7,} candidates (bank + new, history), {row['mode']}: "
              f"{row['seconds']:.1f} s, peak RSS +{row['peak_rss_rise_gib']:.2f} GiB, {row['n_iter']} iterations, "
              f"converged={row['converged']}", flush=True)
    if a.reference:
        ref = next(r for r in out["reference"] if r["mode"] == "sparse")
        ratio = out["rounds"][0]["seconds"] / ref["seconds"] if ref["seconds"] else float("nan")
        out["round1_vs_sparse_reference"] = round(ratio, 2)
        print(f"round 1 took {ratio:.1f}x the sparse reference round ({a.reference:,} candidates; "
              f"{a.n / a.reference:.1f}x the candidates)")
    print(f"Python {platform.python_version()}; GPU: not used (InsBank runs on the CPU)")
    write_json(a.json, out)


if __name__ == "__main__":
    main()
