#!/usr/bin/env python3
"""The scikit-learn drop-ins against scikit-learn, measured in the same run.

AffinityPropagation: the MiniLM embeddings of the first N bundled Dolly records
(tests/data/dolly_minilm_3000.npy, float16 stored, used as float32), scikit-learn's defaults
(affinity="euclidean", damping 0.5) with random_state=0. iterselect.sklearn.AffinityPropagation
must return scikit-learn's exemplars, labels and iteration count exactly.

TfidfVectorizer: the responses of the bundled Dolly 15k, ``fit_transform`` on the first N and
``transform`` on the rest, for each n-gram range. The vocabulary must be scikit-learn's and the
values equal to rounding (largest relative difference reported).

Peak memory is the largest rise of the process's resident set during the call (sampled every
5 ms); times are wall clock, best of ``--repeats``. Ratios are scikit-learn's time over ours.

    python benchmarks/sklearn_dropins.py                   # AP at 1000, 2000, 3000; TF-IDF on 15k
    python benchmarks/sklearn_dropins.py --quick           # tiny sizes (what the smoke test runs)
    python benchmarks/sklearn_dropins.py --json out.json
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from _common import REPO, add_json_option, machine, peak_memory, print_table, timed, write_json  # noqa: E402


def best_of(repeats: int, fn):
    """(result of the last run, best seconds, largest peak memory rise) over ``repeats`` runs."""
    best, extra, result = float("inf"), 0, None
    for _ in range(repeats):
        with peak_memory() as mem:
            result, seconds = timed(fn)
        best, extra = min(best, seconds), max(extra, mem["extra"])
    return result, best, extra


def affinity_rows(sizes, repeats):
    import sklearn.cluster as skc

    from iterselect.sklearn import AffinityPropagation

    X_all = np.load(REPO / "tests" / "data" / "dolly_minilm_3000.npy").astype(np.float32)
    rows = []
    for n in sizes:
        X = X_all[:n]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, t_ours, m_ours = best_of(repeats, lambda: AffinityPropagation(random_state=0).fit(X))
            theirs, t_sk, m_sk = best_of(repeats, lambda: skc.AffinityPropagation(random_state=0).fit(X))
        same = (np.array_equal(ours.cluster_centers_indices_, theirs.cluster_centers_indices_)
                and np.array_equal(ours.labels_, theirs.labels_) and ours.n_iter_ == theirs.n_iter_)
        rows.append({"n": n, "clusters": len(theirs.cluster_centers_indices_), "n_iter": int(theirs.n_iter_),
                     "sklearn_s": round(t_sk, 3), "iterselect_s": round(t_ours, 3), "ratio": round(t_sk / t_ours, 2),
                     "sklearn_peak_mib": round(m_sk / 2**20), "iterselect_peak_mib": round(m_ours / 2**20),
                     "identical": bool(same)})
    return rows


def tfidf_rows(n_fit, ngram_ranges, repeats):
    import sklearn.feature_extraction.text as skt

    from iterselect.datasets import load_dolly
    from iterselect.sklearn import TfidfVectorizer

    texts = [r["output"] for r in load_dolly()]
    fit_texts, rest = texts[:n_fit], texts[n_fit:]
    rows = []
    for ngram in ngram_ranges:
        for what in ("fit_transform", "transform"):
            ours_vec, sk_vec = TfidfVectorizer(ngram_range=ngram), skt.TfidfVectorizer(ngram_range=ngram)
            if what == "fit_transform":
                ours, t_ours, m_ours = best_of(repeats, lambda: ours_vec.fit_transform(fit_texts))
                theirs, t_sk, m_sk = best_of(repeats, lambda: sk_vec.fit_transform(fit_texts))
                docs = len(fit_texts)
            else:
                if not rest:
                    continue
                ours_vec.fit(fit_texts)
                sk_vec.fit(fit_texts)
                ours, t_ours, m_ours = best_of(repeats, lambda: ours_vec.transform(rest))
                theirs, t_sk, m_sk = best_of(repeats, lambda: sk_vec.transform(rest))
                docs = len(rest)
            ours, theirs = ours.tocsr(copy=True), theirs.tocsr(copy=True)
            ours.sort_indices()
            theirs.sort_indices()  # scikit-learn leaves each row's columns in first-seen order
            same_structure = (ours_vec.vocabulary_ == sk_vec.vocabulary_
                              and np.array_equal(ours.indptr, theirs.indptr)
                              and np.array_equal(ours.indices, theirs.indices))
            rel = float(np.max(np.abs(ours.data - theirs.data) / np.abs(theirs.data))) if theirs.nnz else 0.0
            rows.append({"ngram_range": f"{ngram[0]}-{ngram[1]}", "call": what, "docs": docs,
                         "vocabulary": len(sk_vec.vocabulary_), "sklearn_s": round(t_sk, 3),
                         "iterselect_s": round(t_ours, 3), "ratio": round(t_sk / t_ours, 2),
                         "sklearn_peak_mib": round(m_sk / 2**20), "iterselect_peak_mib": round(m_ours / 2**20),
                         "same_vocabulary_and_structure": bool(same_structure), "max_rel_value_diff": rel})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ap-sizes", type=int, nargs="*", default=[1000, 2000, 3000])
    parser.add_argument("--tfidf-n", type=int, default=12000, help="documents to fit on (the rest are transformed)")
    parser.add_argument("--ngram", type=str, nargs="*", default=["1-1", "1-3"], help="n-gram ranges, e.g. 1-3")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: AP at 200, TF-IDF on 500 documents")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.ap_sizes, args.tfidf_n, args.ngram = [200], 500, ["1-2"]
    ngrams = [tuple(int(v) for v in g.split("-")) for g in args.ngram]
    import sklearn

    print(f"machine: {machine()}; scikit-learn {sklearn.__version__}")
    ap = affinity_rows(args.ap_sizes, args.repeats)
    print("\nAffinityPropagation (Dolly MiniLM embeddings, float32, random_state=0)")
    print_table(ap, list(ap[0]) if ap else [])
    tf = tfidf_rows(args.tfidf_n, ngrams, args.repeats)
    print("\nTfidfVectorizer (Dolly responses)")
    print_table(tf, list(tf[0]) if tf else [])
    write_json(args.json, {"machine": machine(), "sklearn": sklearn.__version__, "affinity_propagation": ap,
                           "tfidf": tf})
    ok = all(r["identical"] for r in ap) and all(r["same_vocabulary_and_structure"] for r in tf)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
