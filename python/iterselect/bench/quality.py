"""The quality suite: every selector and baseline on one pool and budget, and the diversity and
coverage of what each picks, by the measures the papers use.

Measures of a subset S of the pool P (embeddings X, responses, optional quality q):

* Vendi score of S (cosine kernel, q = 1; DiverseEvol's diversity): the effective number of
  distinct samples, 1 to min(|S|, d).
* covering radius: max over P of the distance to the nearest pick (k-center's objective;
  smaller covers better).
* n-gram coverage: the share of P's distinct word 1-3-grams (scikit-learn's tokens) that occur
  in S's responses (IterIT's diversity works on these n-grams).
* cluster entropy: the entropy of S's k-means cluster labels (faiss k-means of P) over the
  log of the number of clusters: 1 when S spreads evenly over P's clusters (kMQ's premise).
* mean quality of S, when quality scores are given; mean response length in characters.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from .data import quality_pool, response_texts
from .references import nearest_sq

AP_DENSE_MAX = 20_000
FACILITY_NEIGHBORS = 100


def _entropy(labels: np.ndarray, clusters: int) -> float:
    counts = np.bincount(labels, minlength=clusters).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(clusters)) if clusters > 1 else 0.0


def measures(idx, X, ngrams, labels, clusters, quality, lengths) -> dict:
    """The suite's measures of the subset ``idx`` of the pool."""
    from ..metrics import vendi_score

    idx = np.asarray(idx, dtype=np.int64)
    out = {"size": int(idx.size), "vendi": float(vendi_score(X[idx]).score),
           "covering_radius": float(np.sqrt(nearest_sq(X, idx).max())),
           "ngram_coverage": float(np.unique(ngrams[idx].indices).size / max(ngrams.shape[1], 1)),
           "cluster_entropy": _entropy(labels[idx], clusters),
           "mean_length": float(lengths[idx].mean())}
    out["mean_quality"] = None if quality is None else float(quality[idx].mean())
    return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.lexsort((np.arange(scores.size), -scores))[:k]


def selectors(X, records, texts, quality, k, clusters, labels_of):
    """``[(name, what, function returning indices)]``: every selector that applies to this pool
    (those that need quality only when it is given)."""
    from .. import (affinity_propagation, coverage_greedy, facility_location, kcenter_greedy,
                    representation_scores, tfidf_matrix)
    from ..cluster import kmq_sample
    from ..methods import baselines

    n = len(X)

    def ap_representation():
        kw = {} if n <= AP_DENSE_MAX else {"n_neighbors": 32}
        r = affinity_propagation(X, return_messages=True, progress=False, **kw)
        return _top(representation_scores(r.responsibility, r.availability), k)

    out = [
        ("random", "uniform, seed 0", lambda: baselines.random_select(n, k, seed=0).indices),
        ("longest", "longest responses first", lambda: baselines.longest_response(texts, k).indices),
        ("kNN", "farthest from the nearest neighbour first", lambda: baselines.knn_distance(X, k).indices),
        ("k-center", "farthest-first, euclidean", lambda: kcenter_greedy(X, k, progress=False).indices),
        ("coverage", "IterIT's TF-IDF n-gram coverage greedy, decay 0.1, uniform weights",
         lambda: coverage_greedy(tfidf_matrix(texts, progress=False).matrix, k, progress=False).indices),
        ("facility location", f"QDIT's diversity, cosine kNN graph of {FACILITY_NEIGHBORS}",
         lambda: facility_location(X, k, n_neighbors=min(FACILITY_NEIGHBORS, n - 1), progress=False).indices),
        ("AP representation", "InsBank's representation score of affinity propagation, top k",
         ap_representation),
        ("kM-Random", f"k-means ({clusters} clusters), uniform within clusters",
         lambda: kmq_sample(labels_of(), k, within="uniform", seed=0).indices),
    ]
    if quality is not None:
        q_nonneg = quality - min(0.0, float(quality.min()))
        out += [
            ("kMQ", f"k-means ({clusters} clusters), drawn by quality within clusters",
             lambda: kmq_sample(labels_of(), k, quality=q_nonneg, seed=0).indices),
            ("quality top-k", "highest quality first", lambda: _top(quality, k)),
            ("DEITA", "by quality, skipping cosine >= 0.9 to a kept sample",
             lambda: baselines.deita_select(X, k, quality=quality, allow_fewer=True).indices),
        ]
    return out


def run_quality(spec: dict, emit) -> None:
    """Compute the pool once, then each selector's picks (timed) and their measures; one row a
    selector, emitted as soon as it is done."""
    from ..cluster import kmeans
    from ..coverage import tfidf_matrix
    from .data import Source

    warnings.simplefilter("ignore")
    source = Source(**spec["source"])
    X, records, quality, what = quality_pool(source, spec.get("pool"))
    n = len(X)
    k = min(spec["k"], n - 1)
    clusters = max(2, min(spec.get("clusters", 100), n // 2))
    texts = response_texts(records)
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    ngrams = tfidf_matrix(texts, progress=False).matrix
    labels = np.asarray(kmeans(X, clusters, seed=0, gpu=False).labels)
    emit({"suite": "quality", "event": "pool", "pool": what, "n": n, "k": k, "clusters": clusters,
          "has_quality": quality is not None,
          "measures": measures(np.arange(n), X, ngrams, labels, clusters, quality, lengths)})

    def labels_of():  # kMQ's selectors include their own k-means in their time
        return np.asarray(kmeans(X, clusters, seed=0, gpu=False).labels)

    for name, what_it_is, select in selectors(X, records, texts, quality, k, clusters, labels_of):
        t = time.perf_counter()
        try:
            idx = np.asarray(select(), dtype=np.int64)
        except Exception as exc:  # one selector's failure is reported in its row, not fatal
            emit({"suite": "quality", "selector": name, "what": what_it_is, "seconds": None,
                  "error": f"{type(exc).__name__}: {exc}", "measures": None})
            continue
        seconds = time.perf_counter() - t
        emit({"suite": "quality", "selector": name, "what": what_it_is, "seconds": seconds,
              "measures": measures(idx, X, ngrams, labels, clusters, quality, lengths)})
