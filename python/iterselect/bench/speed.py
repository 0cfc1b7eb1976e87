"""The speed suite: each kernel against its reference on the same data, in the same process.

One job runs in its own worker process per (kernel, N), so its memory is its own: the data are
built (not timed), ours runs, then the reference, each measured by :func:`~.measure.measure`.
A reference that would run past the job's time box is cut short and extrapolated, marked so
with how (:class:`~.measure.Measured`):

* greedy loops (k-center, coverage, the IFD loop) run steps until the box is spent; every step
  costs the same, so the full time is the time per step times the steps;
* iterative ones (scikit-learn's affinity propagation and k-means) are timed at 1 and at 1 + j
  iterations, which gives the setup and the time per iteration;
* the others (scikit-learn's TfidfVectorizer, apricot, vendi-score) are predicted from the last
  size measured in this run (or a smaller calibration run) by their growth in N, and run only
  when the prediction fits the box and half the free memory.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import Source, load_embeddings, load_records, response_texts
from .machine import instruction_path
from .measure import Measured, available_memory, load_average, measure, power_law_estimate, scaled
from .report import seconds as seconds_text
from .references import (NumpyCoverage, NumpyKCenter, OneExampleIFD, compare_greedy, compare_kcenter,
                         dense_facility_objective, largest_sq_distance)

# a job per worker: tfidf and coverage share one (the greedy runs on the TF-IDF matrix)
# and silhouette runs on k-means' labels
JOB_OF = {"kcenter": "kcenter", "tfidf": "text", "coverage": "text", "affinity": "affinity",
          "facility": "facility", "kmeans": "kmeans", "silhouette": "kmeans", "vendi": "vendi", "ifd": "ifd"}
KERNELS = tuple(JOB_OF)
CALIBRATION_ROWS = {"tfidf": 20_000, "vendi": 100_000, "facility": 2_000}
AP_NEIGHBORS = 32
COVERAGE_DECAY = 0.1
KMEANS_ITER = 25
SILHOUETTE_SAMPLE = 10_000  # rows of the silhouette sample (scikit-learn's is N x N in memory)
IFD_MAX_LENGTH = 512
# kernels whose CPU code takes a vector path chosen at run time (reported in their rows)
VECTOR_PATH_KERNELS = ("kcenter", "affinity", "ifd")


@dataclass
class Job:
    """What one worker runs: ``job`` (a value of :data:`JOB_OF`) at ``n`` rows with budget ``k``."""

    job: str
    n: int
    k: int
    box: float
    kernels: tuple
    source: Source
    options: dict = field(default_factory=dict)
    prior: dict = field(default_factory=dict)  # label -> last full reference run in this suite
    cache: str | None = None


def _embeddings(job: Job) -> np.ndarray:
    """The job's rows, float32; the synthetic set is made once per size into the run's cache."""
    if job.source.embeddings is not None or job.cache is None:
        return load_embeddings(job.source, job.n)
    from .._files import atomic_file

    path = Path(job.cache) / f"synthetic_{job.n}_seed{job.source.seed}.npy"
    if path.exists():
        return np.load(path)
    X = load_embeddings(job.source, job.n)
    with atomic_file(path, "wb") as f:
        np.save(f, X)
    return X


def row(job: Job, kernel: str, ours: Measured, reference: Measured, ref_name: str, agreement: dict,
        *, config: str, n: int | None = None, k=None, notes: str = "") -> dict:
    """One line of the speed table (see :mod:`iterselect.bench.report` for its columns)."""
    ratio = None
    if ours.seconds and reference.seconds:
        ratio = reference.seconds / ours.seconds
    return {"suite": "speed", "kernel": kernel, "n": job.n if n is None else n, "k": k, "config": config,
            "ours": ours.to_dict(), "reference": {"name": ref_name, **reference.to_dict()}, "ratio": ratio,
            "ratio_extrapolated": bool(ours.extrapolated or reference.extrapolated), "agreement": agreement,
            "instruction_path": instruction_path(kernel) if kernel in VECTOR_PATH_KERNELS else None,
            "load_average": load_average(), "notes": notes}


def _not_compared(why: str) -> dict:
    return {"summary": f"not compared ({why})", "identical": None, "max_error": None}


def _extrapolated_reference_agreement() -> dict:
    return _not_compared("the reference was extrapolated, not run")


def _predict(job: Job, label: str, time_power: float, memory_power: float) -> Measured | None:
    """The reference's cost at ``job.n`` predicted from its last full run in this suite."""
    prior = job.prior.get(label)
    if not prior:
        return None
    return power_law_estimate(prior["n"], Measured(**prior["reference"]), job.n, time_power, memory_power)


def _fits(job: Job, m: Measured) -> bool:
    return m.seconds <= job.box and (m.peak_bytes or 0) <= available_memory() // 2


def _size_boxed(job: Job, label: str, run, time_power: float, memory_power: float):
    """``(result or None, Measured)``: run ``run(n_rows)`` at ``job.n`` when the prediction fits
    the box, else extrapolate. Without a prediction from this suite, a run on the first
    ``CALIBRATION_ROWS[label]`` rows calibrates it first."""
    predicted = _predict(job, label, time_power, memory_power)
    if predicted is None and job.n > CALIBRATION_ROWS.get(label, job.n):
        n0 = CALIBRATION_ROWS[label]
        _, m0 = measure(run, n0)
        predicted = power_law_estimate(n0, m0, job.n, time_power, memory_power)
    if predicted is not None and not _fits(job, predicted):
        if (predicted.peak_bytes or 0) > available_memory() // 2:
            predicted.how += f"; the run would need about {predicted.peak_bytes / 2**30:.1f} GiB"
        return None, predicted
    return measure(run, job.n)


def _iteration_boxed(job: Job, run, iterations: int):
    """``(result or None, Measured)`` of ``run(max_iter)`` for ``iterations`` iterations: timed at
    1 and at 1 + j iterations, which give the setup and the time per iteration; run in full when
    the prediction fits the box, else extrapolated as setup + time per iteration x iterations."""
    _, one = measure(run, 1)
    j = max(1, min(iterations - 1, int(job.box / 3 / max(one.seconds, 1e-9))))
    out, more = measure(run, 1 + j)
    if 1 + j >= iterations:
        return out, more
    per_iter = max((more.seconds - one.seconds) / j, 0.0)
    setup = max(one.seconds - per_iter, 0.0)
    if setup + per_iter * iterations <= job.box:
        return measure(run, iterations)
    m = Measured(setup + per_iter * iterations, max(one.peak_bytes or 0, more.peak_bytes or 0),
                 extrapolated=True, status="extrapolated",
                 how=f"timed at 1 and {1 + j} iterations: setup {setup:.2f} s + {per_iter:.3g} s per iteration "
                     f"x {iterations}")
    return None, m


def _stepwise(job: Job, make, unit: str):
    """``(reference, Measured)``: build the :class:`~.references.Stepwise` reference ``make()``
    and run it in the job's box; cut short, its time is the setup plus the time per step times
    all the steps."""
    holder = {}

    def reference():
        holder["ref"] = make()
        holder["ref"].run(job.box)

    _, m = measure(reference)
    ref = holder["ref"]
    if ref.done:
        return ref, m
    setup = max(m.seconds - ref.seconds, 0.0)
    full = setup + ref.full_seconds()
    how = (f"{ref.steps:,} of {ref.total:,} {unit}s in the {job.box:g} s box: setup {setup:.2f} s + "
           f"{ref.seconds / ref.steps:.3g} s per {unit} x {ref.total:,}")
    return ref, Measured(full, m.peak_bytes, None, True, how, "extrapolated")


# ------------------------------------------------------------------------------------ the jobs

def run_kcenter(job: Job, emit) -> None:
    from ..kcenter import kcenter_greedy

    X = _embeddings(job)
    k = job.k
    kcenter_greedy(X[:100], 2, progress=False)  # first-call costs, untimed
    r, ours = measure(kcenter_greedy, X, k, progress=False)
    ref, reference_m = _stepwise(job, lambda: NumpyKCenter(X, k), "pick")
    emit(row(job, "kcenter", ours, reference_m, "numpy farthest-first loop (float32)",
             compare_kcenter(X, r.indices, r.radii, ref), config="euclidean, float32, lazy", k=k,
             notes=f"distance evaluations {r.distance_evaluations / (k * len(X)):.0%} of the plain loop's"))


def run_text(job: Job, emit) -> None:
    from ..coverage import coverage_greedy, tfidf_matrix

    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = response_texts(load_records(job.source, job.n))
    tfidf_matrix(texts[:20], progress=False)  # first-call costs (imports, thread pool) are not timed
    TfidfVectorizer(ngram_range=(1, 3)).fit_transform(texts[:20])
    tf, ours = measure(tfidf_matrix, texts, progress=False)
    if "tfidf" in job.kernels:
        def sklearn_tfidf(n):
            vec = TfidfVectorizer(ngram_range=(1, 3))
            return vec, vec.fit_transform(texts[:n])

        out, reference = _size_boxed(job, "tfidf", sklearn_tfidf, 1.0, 1.0)
        if out is None:
            agreement = _extrapolated_reference_agreement()
        else:
            vec, Y = out
            Y.sort_indices()
            same = tf.vocabulary.tolist() == vec.get_feature_names_out().tolist()
            err = float(abs(tf.matrix - Y).max()) if same else None
            agreement = {"identical": same, "max_error": err, "max_error_of": "TF-IDF value, absolute",
                         "summary": (f"same vocabulary ({tf.matrix.shape[1]:,} n-grams), max abs. difference {err:.1e}"
                                     if same else "DIFFERENT vocabulary")}
            del out, vec, Y
        emit(row(job, "tfidf", ours, reference, "scikit-learn TfidfVectorizer", agreement,
                 config="1-3-grams, float64", notes=f"nnz {tf.matrix.nnz:,}"))
    if "coverage" in job.kernels:
        k = job.k
        weights = np.random.default_rng(job.source.seed).uniform(0.2, 1.0, job.n)
        g, ours_g = measure(coverage_greedy, tf.matrix, k, weights=weights, decay=COVERAGE_DECAY,
                            progress=False)
        ref, reference_m = _stepwise(job, lambda: NumpyCoverage(tf.matrix, k, weights, COVERAGE_DECAY), "pick")
        emit(row(job, "coverage", ours_g, reference_m, "numpy greedy, one sparse mat-vec per pick",
                 compare_greedy(g.indices, g.gains, ref), k=k,
                 config=f"decay {COVERAGE_DECAY}, weights U(0.2, 1)",
                 notes=f"lazy refreshes {g.refreshes:,}"))


def run_affinity(job: Job, emit) -> None:
    from ..affinity import affinity_propagation

    X = _embeddings(job)
    n = job.n
    dense_max = job.options.get("ap_dense_max", 10_000)
    warnings.simplefilter("ignore")
    if n > dense_max:
        r, ours = measure(affinity_propagation, X, n_neighbors=AP_NEIGHBORS, progress=False,
                          return_messages=False)
        prior = job.prior.get("affinity")
        need = 3 * n * n * 8
        if prior:
            reference = power_law_estimate(prior["n"], Measured(**prior["reference"]), n, 2.0, 2.0)
            reference.how += (f" (as many iterations assumed); its S, R and A would take "
                              f"{need / 2**30:,.0f} GiB")
        else:
            reference = Measured.not_run(f"dense S, R and A would take {need / 2**30:,.0f} GiB")
        emit(row(job, "affinity", ours, reference, "scikit-learn affinity_propagation (dense)",
                 _not_compared("our sparse mode against the dense reference"),
                 config=f"sparse, {AP_NEIGHBORS} neighbours (faiss), float32",
                 notes=f"{r.n_iter} iterations, {len(r.exemplars):,} exemplars, converged {r.converged}"))
        return
    from sklearn.cluster import affinity_propagation as sk_ap
    from sklearn.metrics import pairwise_distances

    def similarities():
        return -pairwise_distances(X.astype(np.float64))

    def ours_run():
        return affinity_propagation(similarities(), metric="precomputed", dtype=np.float64, random_state=0,
                                    progress=False)

    r, ours = measure(ours_run)

    def sklearn_run(max_iter):
        return sk_ap(similarities(), random_state=0, max_iter=max_iter, return_n_iter=True)

    out, reference = _iteration_boxed(job, sklearn_run, r.n_iter if r.converged else 200)
    if out is None:
        agreement = _extrapolated_reference_agreement()
    else:
        centers, labels, n_iter = out
        same = np.array_equal(np.asarray(centers), r.exemplars) and np.array_equal(labels, r.labels)
        agreement = {"identical": bool(same), "max_error": None,
                     "summary": (f"identical exemplars ({len(r.exemplars):,}) and labels" if same
                                 else f"DIFFERENT exemplars: {len(centers)} vs our {len(r.exemplars)}"),
                     "reference_iterations": int(n_iter)}
    reference.extra["per_iteration_basis"] = r.n_iter
    emit(row(job, "affinity", ours, reference, "scikit-learn affinity_propagation (dense)", agreement,
             config="dense, float64, scikit-learn's S = -||x - y|| and noise (random_state=0)",
             notes=f"{r.n_iter} iterations, {len(r.exemplars):,} exemplars; both times include building S"))


def _apricot():
    try:
        from apricot import FacilityLocationSelection
    except Exception as exc:  # apricot's numba import can fail in other ways than ImportError
        return None, f"apricot-select is not importable ({type(exc).__name__}: {exc})"
    return FacilityLocationSelection, None


def run_facility(job: Job, emit) -> None:
    from ..facility import facility_location, facility_location_graph, knn_similarity_graph

    X = _embeddings(job)
    k = job.k
    neighbors = job.options.get("facility_neighbors", 32)
    r, ours = measure(facility_location, X, k, n_neighbors=neighbors, metric="euclidean", progress=False)
    config = f"kNN graph of {neighbors} neighbours (faiss), M - ||x - y||^2"
    FacilityLocationSelection, why = _apricot()
    if FacilityLocationSelection is None:
        emit(row(job, "facility", ours, Measured.not_run(why), "apricot FacilityLocationSelection (dense)",
                 _not_compared("apricot not installed"), config=config, k=k))
        return
    warnings.simplefilter("ignore")
    def apricot_run(n):
        kk = min(k, n - 1)
        return FacilityLocationSelection(kk, metric="euclidean", optimizer="lazy").fit(X[:n])

    out, reference = _size_boxed(job, "facility", apricot_run, 2.0, 2.0)
    if out is None:
        agreement = _extrapolated_reference_agreement()
    else:
        theirs = np.asarray(out.ranking)
        M = largest_sq_distance(X)
        ratio = dense_facility_objective(X, r.indices, M) / dense_facility_objective(X, theirs, M)
        common = len(set(r.indices.tolist()) & set(theirs.tolist()))
        agreement = {"identical": None, "max_error": abs(ratio - 1.0),
                     "max_error_of": "apricot's dense objective F, ours relative to apricot's",
                     "objective_ratio": ratio, "common_picks": common,
                     "summary": f"dense F = {ratio:.5f} x apricot's, {common:,}/{k:,} picks in common"}
    # on a complete graph both optimise the same function: the picks must be the same
    m = min(job.n, 400)
    kk = min(k, 25, m - 1)
    Xs = X[:m].astype(np.float64)
    mine = facility_location_graph(knn_similarity_graph(Xs, m - 1, metric="euclidean"), kk,
                                   progress=False).indices
    theirs = np.asarray(FacilityLocationSelection(kk, metric="euclidean", optimizer="naive").fit(Xs).ranking)
    same = np.array_equal(mine, theirs)
    agreement["complete_graph_identical"] = bool(same)
    agreement["summary"] += (f"; complete graph of the first {m} rows: "
                             f"{'identical' if same else 'DIFFERENT'} picks ({kk})")
    if agreement.get("identical") is None and out is None:
        agreement["identical"] = bool(same)
    emit(row(job, "facility", ours, reference, "apricot FacilityLocationSelection (dense, lazy)", agreement,
             config=config, k=k, notes="apricot's time includes compiling its numba kernels, which it "
                                       "does at every fit"))


def run_kmeans(job: Job, emit) -> None:
    from ..cluster import kmeans

    X = _embeddings(job)
    clusters = min(job.options.get("clusters", 256), job.n)
    kmeans(X[:max(clusters, 64)], min(clusters, 8), niter=1, seed=0, gpu=False)  # faiss's first call, untimed
    r, ours = measure(kmeans, X, clusters, niter=KMEANS_ITER, seed=0, gpu=False)
    if "kmeans" in job.kernels:
        emit(_kmeans_row(job, X, clusters, r, ours))
    if "silhouette" in job.kernels:
        emit(_silhouette_row(job, X, np.asarray(r.labels)))


def _kmq_note(job: Job, labels: np.ndarray, kmeans_seconds: float) -> str:
    """kMQ's draw costs a small fraction of the k-means it samples from."""
    budget = max(1, job.n // 20)
    quality = np.random.default_rng(job.source.seed + 1).random(job.n)
    from ..cluster import kmq_sample

    _, m = measure(kmq_sample, labels, budget, quality=quality, seed=0)
    return f"one kMQ draw of {budget:,} (N/20, by quality): {m.seconds * 1000:.3g} ms, " \
           f"{m.seconds / kmeans_seconds:.2%} of the k-means time"


def _kmeans_row(job: Job, X: np.ndarray, clusters: int, r, ours: Measured) -> dict:
    from sklearn.cluster import KMeans

    def sklearn_run(max_iter):
        return KMeans(clusters, init="random", n_init=1, max_iter=max_iter, tol=0.0, random_state=0,
                      algorithm="lloyd").fit(X)

    warnings.simplefilter("ignore")
    out, reference = _iteration_boxed(job, sklearn_run, KMEANS_ITER)
    if out is None:
        agreement = _extrapolated_reference_agreement()
    else:
        ratio = r.inertia / out.inertia_
        agreement = {"identical": None, "max_error": None, "inertia_ratio": ratio,
                     "summary": f"inertia {ratio:.4f} x scikit-learn's ({out.n_iter_} iterations)"}
    return row(job, "kmeans", ours, reference, "scikit-learn KMeans (lloyd, random init)", agreement,
               config=f"{clusters} clusters, {KMEANS_ITER} iterations", k=clusters,
               notes=f"faiss trains on at most {256 * clusters:,} rows (256 a cluster), scikit-learn on all; "
                     + _kmq_note(job, np.asarray(r.labels), ours.seconds))


def _silhouette_row(job: Job, X: np.ndarray, labels: np.ndarray) -> dict:
    """Exact silhouette of a row sample against scikit-learn's silhouette_score on the same rows
    (cosine, the metric of the embeddings)."""
    from sklearn.metrics import silhouette_score

    from ..metrics import silhouette

    sample = min(job.n, SILHOUETTE_SAMPLE)
    res, ours = measure(silhouette, X, labels, metric="cosine", sample_size=sample, seed=0, progress=False)
    idx = np.asarray(res.indices)
    Xs, ls = X[idx], labels[idx]
    ref, reference = measure(silhouette_score, Xs, ls, metric="cosine")
    err = abs(res.score - float(ref))
    agreement = {"identical": None, "max_error": err, "max_error_of": "silhouette score, absolute",
                 "summary": f"score {res.score:.5f}, absolute difference {err:.1e}"}
    return row(job, "silhouette", ours, reference, "scikit-learn silhouette_score", agreement,
               config=f"cosine, exact, a sample of {sample:,} rows, labels of the k-means above",
               k=int(labels.max()) + 1)


def run_vendi(job: Job, emit) -> None:
    from ..metrics import vendi_score

    X = _embeddings(job)
    vendi_score(X[:50])  # first-call costs, untimed
    v, ours = measure(vendi_score, X)
    v32, ours32 = measure(vendi_score, X, dtype="float32")
    float32_note = (f"float32 block products: {seconds_text(ours32.seconds)}, relative difference "
                    f"{abs(v32.score / v.score - 1):.1e}")
    try:
        from vendi_score import vendi
    except ImportError as exc:
        emit(row(job, "vendi", ours, Measured.not_run(f"vendi-score is not installed ({exc})"),
                 "vendi-score score_dual", _not_compared("vendi-score not installed"), config="cosine, q = 1"))
        return
    vendi.score_dual(X[:50])  # first-call costs, untimed
    out, reference = _size_boxed(job, "vendi", lambda n: vendi.score_dual(X[:n]), 1.0, 1.0)
    if out is None:
        agreement = _extrapolated_reference_agreement()
    else:
        err = abs(v.score / float(out) - 1.0)
        agreement = {"identical": None, "max_error": err, "max_error_of": "Vendi score, relative",
                     "summary": f"score {v.score:.6g}, relative difference {err:.1e}"}
    emit(row(job, "vendi", ours, reference, "vendi-score score_dual", agreement, config="cosine, q = 1, float64",
             notes=f"score {v.score:.6g}; {float32_note}"))


def run_ifd(job: Job, emit) -> None:
    """IFD once on ``options['ifd_examples']`` records; one row per N of the ladder, scaled
    linearly in the number of examples where N differs."""
    try:
        import torch
        import transformers  # noqa: F401  (the models below need it)
    except ImportError as exc:
        for n in job.options["ladder"]:
            emit(row(job, "ifd", Measured.not_run(f"needs torch and transformers ({exc})"),
                     Measured.not_run("needs torch and transformers"), "one-example loop",
                     _not_compared("not run"), config="", n=n))
        return
    from ..scoring import format_examples, ifd_scores
    from ..scoring.ifd import ifd_sequences, prior_start_id
    from ..scoring.toy import toy_causal_lm, toy_tokenizer

    # one thread for both: a model this small gains nothing from more, and torch's waiting
    # threads make timings erratic on a machine that other jobs share
    torch.set_num_threads(1)

    m = min(job.options.get("ifd_examples", 2000), max(job.options["ladder"]))
    records = load_records(job.source, m)
    texts = [f"{r.get('instruction', '')}\n{r.get('input', '')}\n{r.get('output', '')}" for r in records]
    tok = toy_tokenizer(texts, vocab_size=4096)
    model = toy_causal_lm(tok, "llama", hidden_size=64, layers=2, max_positions=IFD_MAX_LENGTH)
    warm = records[:8]
    ifd_scores(model, tok, warm, max_length=IFD_MAX_LENGTH, progress=False)  # first-call setup, not timed
    res, ours = measure(ifd_scores, model, tok, records, max_length=IFD_MAX_LENGTH, progress=False)
    cond, prior, _ = ifd_sequences(tok, format_examples(records), IFD_MAX_LENGTH, prior_start_id(tok, "bench"))
    ref, ref_full = _stepwise(job, lambda: OneExampleIFD(model, cond, prior), "example")
    done = ref.steps
    theirs, mine = ref.ifd[:done], res.ifd[:done]
    ok = ~np.isnan(theirs) & ~np.isnan(mine)
    err = float(np.max(np.abs(mine[ok] - theirs[ok]) / np.abs(theirs[ok]))) if ok.any() else None
    agreement = {"identical": None, "max_error": err, "max_error_of": "IFD, relative",
                 "examples_compared": int(ok.sum()),
                 "summary": (f"max relative IFD difference {err:.1e} over {int(ok.sum()):,} examples"
                             if err is not None else "no example compared")}
    config = (f"toy Llama (hidden 64, 2 layers, {len(tok):,}-token BPE), max_length {IFD_MAX_LENGTH}, "
              "1 torch thread")
    for n in job.options["ladder"]:
        o, t = ours, ref_full
        if n != m:
            how = f"measured on {m:,} examples, scaled linearly to {n:,}"
            o = scaled(ours, n / m, how)
            t = scaled(ref_full, n / m, (ref_full.how + "; " if ref_full.how else "") + how)
        emit(row(job, "ifd", o, t, "one-example loop (the published IFD code's two forwards)", agreement,
                 config=config, n=n, notes="tokenization inside ours, outside the loop's"))


JOBS = {"kcenter": run_kcenter, "text": run_text, "affinity": run_affinity, "facility": run_facility,
        "kmeans": run_kmeans, "vendi": run_vendi, "ifd": run_ifd}
