"""k-means, kMQ sampling and the cluster re-weighting of iterative kMQ.

"Diversify and Conquer" (Yu et al., 2024) clusters embeddings with k-means, gives each cluster a
budget proportional to its size and samples inside a cluster with probability weighted by a
quality score (kMQ). Its iterative variant re-weights the clusters every round from a scorer
(Eq. 5-6, :func:`cluster_weights_update`) and picks k by the silhouette (:func:`choose_k`).

* :func:`kmeans` runs faiss (an optional extra: ``pip install iterselect[faiss]``).
* :func:`kmq_sample` allocates the budget across clusters (largest-remainder rounding, caps,
  overflow redistributed) and draws inside each cluster without replacement, vectorized over all
  clusters at once (exponential races, see :func:`kmq_sample`).
* :func:`cluster_weights_update` is Eq. 5-6, with negative and all-zero scores defined.
* :func:`choose_k` runs :func:`kmeans` for each candidate k and scores it with
  :func:`iterselect.metrics.silhouette` on one shared sample.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._arrays import Matrix, as_matrix, like_input, to_float32
from ._validation import check_choice, check_indices, check_int, param_error

__all__ = [
    "KMeansResult",
    "KMQSample",
    "ClusterWeights",
    "ChooseKResult",
    "kmeans",
    "kmq_sample",
    "cluster_weights_update",
    "choose_k",
]

_INSTALL_HINT = "pip install iterselect[faiss]"


# --------------------------------------------------------------------------------------------
# result types
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes
    ----------
    centroids : (k, d) float32 array, in the input's kind and device.
    labels : (N,) int64 array, the nearest centroid of every row (squared L2).
    inertia : float, sum over all N rows of the squared L2 distance to the nearest centroid
        (scikit-learn's ``inertia_``).
    objective : float64 numpy array, faiss's objective (sum of squared distances on the training
        sample, see ``max_points_per_centroid``) after every iteration of every redo it ran, at
        most ``niter * nredo`` values (faiss stops a run once the objective stops changing).
    gpu : bool, whether faiss ran on the GPU.
    """

    centroids: object
    labels: object
    inertia: float
    objective: np.ndarray
    gpu: bool


@dataclass(frozen=True)
class KMQSample:
    """Result of :func:`kmq_sample`.

    Attributes
    ----------
    indices : (budget,) int64 array of sample indices, never in ``selected``, no repeats. The
        clusters are interleaved so that every prefix stays close to the allocation's proportions
        (the picks are ordered by ``(rank_in_cluster + 0.5) / per_cluster[j]``, ties by cluster
        id); inside a cluster the picks keep their draw order.
    per_cluster : (n_clusters,) int64 array, how many samples each cluster contributed; it sums
        to the budget.
    """

    indices: np.ndarray
    per_cluster: np.ndarray


@dataclass(frozen=True)
class ClusterWeights:
    """Result of :func:`cluster_weights_update`.

    Attributes
    ----------
    weights : (k,) float64 array, the new weights ``w_j = s_j / sum_c s_c * w_prev_j`` (Eq. 6).
    cluster_scores : (k,) float64 array, ``s_j`` as used in Eq. 6: the mean score of cluster j
        (Eq. 5) after the shift for negative scores, and the mean of the scored clusters for a
        cluster with no scored sample.
    counts : (k,) int64 array, how many scored samples fell in each cluster.
    shift : float, what was added to every cluster mean to make the smallest one zero (0.0 when
        no cluster mean was negative).
    """

    weights: np.ndarray
    cluster_scores: np.ndarray
    counts: np.ndarray
    shift: float


@dataclass(frozen=True)
class ChooseKResult:
    """Result of :func:`choose_k`.

    Attributes
    ----------
    k : int, the candidate with the highest silhouette (the smallest such k on ties).
    candidates : (m,) int64 array, the candidate values of k, in the order given.
    scores : (m,) float64 array, the silhouette of the clustering for each candidate.
    kmeans : KMeansResult, the clustering for ``k``.
    indices : (s,) int64 array, the rows on which every silhouette was measured.
    """

    k: int
    candidates: np.ndarray
    scores: np.ndarray
    kmeans: KMeansResult
    indices: np.ndarray


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def import_faiss(func: str):
    """Import faiss or raise an ImportError that says how to install it."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            f"{func} needs faiss, which is not installed. Install it with "
            f"`{_INSTALL_HINT}` (faiss-cpu; or a faiss-gpu build for CUDA inputs)."
        ) from exc
    return faiss


def faiss_num_gpus(faiss) -> int:
    """Number of GPUs faiss can use (0 for CPU-only builds)."""
    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None else 0
    except Exception:  # a GPU build on a machine without a driver
        return 0


def host_vector(values, name: str, func: str, *, kind: str) -> np.ndarray:
    """A 1-D host numpy array from numpy / list / torch (any device) / cupy input.

    1-D vectors (labels, scores) are small next to the (N, d) embeddings, so a CUDA vector is
    copied to the host here.
    """
    mod = type(values).__module__.split(".")[0]
    if mod == "torch":
        values = values.detach().cpu().numpy()
    elif mod == "cupy":
        values = values.get()
    try:
        arr = np.asarray(values)
    except Exception as exc:
        raise param_error(func, name, f"a 1-D array of {kind}", type(values).__name__, TypeError) from exc
    if arr.ndim != 1:
        raise param_error(func, name, f"a 1-D array of {kind}", f"an array of shape {arr.shape}")
    return arr


def check_labels(labels, func: str, *, n: int | None = None, name: str = "labels",
                 what: str = "one cluster id per sample") -> np.ndarray:
    """Non-negative int64 cluster ids, of length ``n`` when given."""
    arr = host_vector(labels, name, func, kind="non-negative integer cluster ids")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise param_error(func, name, "a 1-D array of non-negative integer cluster ids",
                          f"an array of dtype {arr.dtype}", TypeError)
    arr = arr.astype(np.int64, copy=False)
    if n is not None and arr.shape[0] != n:
        raise param_error(func, name, f"a 1-D array of length {n} ({what})",
                          f"an array of length {arr.shape[0]}")
    if arr.size == 0:
        raise param_error(func, name, "a non-empty 1-D array of cluster ids", "an empty array")
    neg = np.flatnonzero(arr < 0)
    if neg.size:
        raise param_error(func, name, "non-negative integer cluster ids",
                          f"{int(arr[neg[0]])} at position {int(neg[0])}")
    return arr


def check_float_vector(values, name: str, func: str, n: int, *, nonnegative: bool,
                       what: str) -> np.ndarray:
    """A finite float64 vector of length ``n`` (and >= 0 when ``nonnegative``)."""
    arr = host_vector(values, name, func, kind="floats")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise param_error(func, name, "a 1-D array of floats", f"an array of dtype {arr.dtype}", TypeError)
    arr = arr.astype(np.float64, copy=False)
    if arr.shape[0] != n:
        raise param_error(func, name, f"a 1-D array of length {n} ({what})",
                          f"an array of length {arr.shape[0]}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise param_error(func, name, "finite (no NaN or inf)",
                          f"{arr[bad[0]]} at position {int(bad[0])}")
    if nonnegative:
        neg = np.flatnonzero(arr < 0)
        if neg.size:
            raise param_error(func, name, "non-negative", f"{arr[neg[0]]} at position {int(neg[0])}")
    return arr


def check_seed(seed, func: str, high: int | None = None) -> int:
    return check_int(seed, "seed", func, 0, high)


def _check_gpu(gpu, func: str):
    if isinstance(gpu, (bool, np.bool_)):
        return bool(gpu)
    if isinstance(gpu, str) and gpu == "auto":
        return "auto"
    raise param_error(func, "gpu", "one of {'auto', True, False}", gpu)


def _host_float32(m: Matrix) -> np.ndarray:
    """A C-contiguous float32 host array of ``m``; CUDA inputs are copied to the host (once)."""
    if not m.on_cuda:
        return np.ascontiguousarray(to_float32(m))
    if m.kind == "torch":
        return m.obj.detach().float().cpu().numpy()
    import cupy  # noqa: PLC0415

    return cupy.asnumpy(m.obj.astype(cupy.float32))


# --------------------------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------------------------
def kmeans(X, k, *, niter=25, nredo=1, seed=0, spherical=False, max_points_per_centroid=256,
           gpu="auto") -> KMeansResult:
    """k-means clustering with faiss (Lloyd's iterations on a training sample, then every row
    assigned to its nearest centroid).

    Parameters
    ----------
    X : (N, d) array
        numpy, torch or cupy; float16, bfloat16, float32 or float64. faiss works in float32, so
        other dtypes are converted to a float32 host copy.
    k : int in [1, N]
        Number of clusters.
    niter : int >= 1, default 25
        Lloyd iterations per run.
    nredo : int >= 1, default 1
        Runs with different initialisations; the one of lowest objective is kept.
    seed : int in [0, 2**31 - 1], default 0
        faiss's seed (initial centroids and training sample); the same seed gives the same result.
    spherical : bool, default False
        Normalize the centroids to unit length after every iteration (for cosine geometry on
        unit-norm embeddings). Labels and inertia still use squared L2 distances.
    max_points_per_centroid : int >= 1, default 256
        faiss trains on a random sample of ``k * max_points_per_centroid`` rows when N is larger
        (faiss's default); every row is then assigned to its nearest final centroid.
    gpu : {"auto", True, False}, default "auto"
        "auto" runs on the GPU when ``X`` is on CUDA and faiss has GPU support; True requires
        faiss GPU support; False runs on the CPU and refuses CUDA inputs. faiss's k-means reads
        its training vectors from host memory, so a CUDA ``X`` is copied to the host once
        (N * d * 4 bytes) before faiss moves the training sample to the GPU.

    Returns
    -------
    KMeansResult
        ``centroids``, ``labels`` (int64) and ``inertia``, in the input's kind and device.

    Raises
    ------
    ImportError
        When faiss is not installed (``pip install iterselect[faiss]``).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import kmeans
    >>> X = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0]])
    >>> res = kmeans(X, 2, seed=0)
    >>> bool(res.labels[0] == res.labels[1] != res.labels[2] == res.labels[3])
    True
    >>> round(res.inertia, 3)
    0.01
    """
    func = "kmeans"
    m = as_matrix(X, "X", func)
    n, d = m.shape
    k = check_int(k, "k", func, 1, n)
    niter = check_int(niter, "niter", func, 1)
    nredo = check_int(nredo, "nredo", func, 1)
    seed = check_seed(seed, func, 2**31 - 1)
    if not isinstance(spherical, (bool, np.bool_)):
        raise param_error(func, "spherical", "a bool", spherical, TypeError)
    max_points_per_centroid = check_int(max_points_per_centroid, "max_points_per_centroid", func, 1)
    gpu = _check_gpu(gpu, func)

    faiss = import_faiss(func)
    n_gpus = faiss_num_gpus(faiss)
    if gpu is True and n_gpus == 0:
        raise param_error(func, "gpu", "False or 'auto' when faiss has no GPU support "
                          "(faiss.get_num_gpus() is 0; install a faiss-gpu build)", True)
    if m.on_cuda and gpu is False:
        raise param_error(func, "X", "a CPU array when gpu=False (or pass gpu='auto' to run "
                          "faiss on the GPU)", f"a {m.kind} array on CUDA")
    if m.on_cuda and n_gpus == 0:
        raise param_error(func, "X", "a CPU array: this faiss build has no GPU support "
                          "(install faiss-gpu, or pass X.cpu())", f"a {m.kind} array on CUDA")
    use_gpu = bool(gpu is True or (gpu == "auto" and m.on_cuda))

    x = _host_float32(m)
    km = faiss.Kmeans(d, k, niter=niter, nredo=nredo, seed=seed, spherical=bool(spherical),
                      max_points_per_centroid=max_points_per_centroid,
                      min_points_per_centroid=1,  # only silences faiss's "too few points" warning
                      verbose=False, gpu=use_gpu)
    km.train(x)
    dist, lab = km.index.search(x, 1)
    labels = lab[:, 0].astype(np.int64, copy=False)
    inertia = float(np.sum(dist[:, 0], dtype=np.float64))
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    objective = np.asarray(km.obj, dtype=np.float64)
    return KMeansResult(centroids=like_input(centroids, m), labels=like_input(labels, m),
                        inertia=inertia, objective=objective, gpu=use_gpu)


# --------------------------------------------------------------------------------------------
# budget allocation
# --------------------------------------------------------------------------------------------
def _water_fill(budget: int, v: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Real shares ``x_j = min(cap_j, lam * v_j)`` with ``sum x = budget`` (all v > 0).

    Requires ``budget <= cap.sum()``. Clusters are capped in order of ``cap_j / v_j``: with them
    sorted, the first m are capped for the smallest m whose level ``lam_m = (budget - sum of the
    m caps) / (sum of the other v)`` does not exceed the next cluster's ``cap / v``.
    """
    if budget >= cap.sum():
        return cap.astype(np.float64)
    t = cap / v
    order = np.argsort(t, kind="stable")
    cap_cum = np.concatenate(([0.0], np.cumsum(cap[order], dtype=np.float64)[:-1]))
    v_suffix = np.cumsum(v[order][::-1])[::-1]
    lam = (budget - cap_cum) / v_suffix
    m = int(np.argmax(lam <= t[order]))  # exists because budget < cap.sum()
    x = np.empty_like(v, dtype=np.float64)
    x[order[:m]] = cap[order[:m]]
    rest = order[m:]
    x[rest] = np.minimum(lam[m] * v[rest], cap[rest])
    return x


def _round_shares(budget: int, x: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of real shares ``x`` (sum = budget) within the caps.

    Every cluster gets ``floor(x_j)``; the units left go one each to the clusters of largest
    fractional part that are below their cap (ties to the lowest cluster id).
    """
    base = np.minimum(np.floor(x + 1e-9 * (x > 0)), cap).astype(np.int64)
    # x within 1e-9 below an integer counts as that integer (rounding noise of the water level)
    left = int(budget - base.sum())
    if left > 0:
        frac = x - base
        cand = np.flatnonzero(base < cap)
        order = cand[np.lexsort((cand, -frac[cand]))]
        base[order[:left]] += 1
    return base


def allocate(budget: int, size: np.ndarray, cap: np.ndarray, weights: np.ndarray,
             allocation: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer per-cluster budgets and the ideal real shares they round.

    ``size`` is each cluster's full size, ``cap`` what it has left (not yet selected), and the
    share of cluster j is proportional to ``size_j * w_j`` ("proportional") or ``w_j``
    ("equal"), capped at ``cap_j`` with the overflow redistributed (water-filling). Clusters of
    zero weight are used only when all the others are exhausted, then in proportion to their
    size ("proportional") or equally ("equal").
    """
    v = size * weights if allocation == "proportional" else weights.astype(np.float64)
    x = np.zeros(cap.shape[0], dtype=np.float64)
    pos = np.flatnonzero((v > 0) & (cap > 0))
    take = min(budget, int(cap[pos].sum()))
    if take > 0:
        x[pos] = _water_fill(take, v[pos], cap[pos].astype(np.float64))
    rest = budget - take
    if rest > 0:  # every positive-weight cluster is exhausted: fall back to zero-weight ones
        zero = np.flatnonzero((v <= 0) & (cap > 0))
        vz = size[zero].astype(np.float64) if allocation == "proportional" else np.ones(zero.size)
        x[zero] = _water_fill(rest, vz, cap[zero].astype(np.float64))
    return _round_shares(budget, x, cap), x


# --------------------------------------------------------------------------------------------
# kMQ sampling
# --------------------------------------------------------------------------------------------
def kmq_sample(labels, budget, *, quality=None, cluster_weights=None, selected=None,
               allocation="proportional", within="multinomial", seed=0) -> KMQSample:
    """Sample ``budget`` points across clusters: kMQ of "Diversify and Conquer".

    Each cluster j gets a budget, then draws that many of its not-yet-selected points without
    replacement.

    Budgets. ``allocation="proportional"`` (the paper): ``b_j`` is proportional to
    ``|C_j| * w_j``, where ``|C_j|`` is the cluster's full size (``selected`` included) and
    ``w_j = cluster_weights[j]`` (1 when not given; iterative kMQ's Alg. 1 passes the weights of
    :func:`cluster_weights_update`). ``"equal"`` (the published code): ``b_j`` is proportional
    to ``w_j`` alone. The real shares are capped at what each cluster has left and the overflow
    is redistributed to the others in the same proportions (water-filling); then
    largest-remainder rounding (ties to the lowest cluster id) makes them integers that sum to
    ``budget`` exactly, each within 1 of its real share. Clusters of weight zero are used only
    once every other cluster is exhausted.

    Inside a cluster. ``within="multinomial"`` (the paper's intent, without repeats): successive
    draws without replacement with probability proportional to ``quality``. ``"softmax"`` (the
    published code): the same with probability proportional to ``exp(quality)``, computed in log
    space so it never overflows. ``"uniform"``: equal probabilities. All three are done at once
    for every cluster with exponential races: point i gets the key ``E_i / p_i`` with
    ``E_i ~ Exp(1)``, compared in log space (``log E_i - log quality_i``; ``log E_i -
    quality_i`` for softmax) and each cluster takes its
    ``b_j`` smallest keys. This is exactly successive sampling without replacement with
    probabilities proportional to ``p`` (the first draw is the minimum of independent
    exponentials, which is i with probability ``p_i / sum p``; memorylessness makes the rest
    repeat on what is left), i.e. what ``numpy.random.Generator.choice(..., replace=False,
    p=p)`` draws, the Gumbel-top-k trick. Points of zero quality ("multinomial") are drawn only
    after all positive-quality points of their cluster, uniformly among themselves.

    Parameters
    ----------
    labels : (N,) int array
        Cluster id of every point, ``0 <= labels[i] < n_clusters`` (e.g. ``kmeans(...).labels``).
        ``n_clusters`` is ``len(cluster_weights)`` when given, else ``labels.max() + 1``.
    budget : int in [1, N - len(selected)]
        Number of points to draw.
    quality : (N,) float array, optional
        Quality score of every point. "multinomial" needs finite, non-negative values;
        "softmax" any finite values. None means uniform; with ``within="uniform"`` it must be
        None.
    cluster_weights : (n_clusters,) float array, optional
        Non-negative, finite, not all zero. Default: all ones.
    selected : int array, optional
        Points already chosen (unique indices); they count toward their cluster's size but are
        never drawn again.
    allocation : {"proportional", "equal"}, default "proportional"
    within : {"multinomial", "softmax", "uniform"}, default "multinomial"
    seed : int >= 0, default 0
        Seed of a ``numpy.random.Generator``; the same seed gives the same sample.

    Returns
    -------
    KMQSample
        ``indices`` (int64, clusters interleaved so every prefix is close to proportional) and
        ``per_cluster`` (int64 counts, summing to ``budget``).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import kmq_sample
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    >>> quality = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 0.0])
    >>> res = kmq_sample(labels, 4, quality=quality, seed=0)
    >>> res.per_cluster
    array([2, 1, 1])
    >>> bool(0 in res.indices and 6 in res.indices)  # positive quality goes first
    True
    >>> kmq_sample(labels, 3, selected=[0, 1, 2, 3], seed=0).per_cluster
    array([0, 2, 1])
    """
    func = "kmq_sample"
    allocation = check_choice(allocation, "allocation", func, ("proportional", "equal"))
    within = check_choice(within, "within", func, ("multinomial", "softmax", "uniform"))
    labels = check_labels(labels, func)
    n = labels.shape[0]
    seed = check_seed(seed, func)

    if cluster_weights is None:
        n_clusters = int(labels.max()) + 1
        weights = np.ones(n_clusters)
    else:
        wv = host_vector(cluster_weights, "cluster_weights", func, kind="floats")
        weights = check_float_vector(wv, "cluster_weights", func, wv.shape[0], nonnegative=True,
                                     what="one weight per cluster")
        n_clusters = weights.shape[0]
        if n_clusters <= labels.max():
            raise param_error(func, "cluster_weights",
                              f"a 1-D array with one weight per cluster (at least "
                              f"{int(labels.max()) + 1}, as labels holds cluster id {int(labels.max())})",
                              f"an array of length {n_clusters}")
        if not np.any(weights > 0):
            raise param_error(func, "cluster_weights", "non-negative with at least one positive weight",
                              "all zeros")

    sel = np.asarray([] if selected is None else host_vector(selected, "selected", func, kind="indices"))
    sel = check_indices(sel, "selected", func, n)
    budget = check_int(budget, "budget", func, 1, n - sel.size)

    if within == "uniform":
        if quality is not None:
            raise param_error(func, "quality", "None when within='uniform' (the quality is "
                              "unused; pass within='multinomial' or 'softmax' to use it)",
                              "an array")
        q = None
    elif quality is not None:
        q = check_float_vector(quality, "quality", func, n, nonnegative=within == "multinomial",
                               what="one score per sample, as labels")
    else:
        q = None

    avail = np.ones(n, dtype=bool)
    avail[sel] = False
    size = np.bincount(labels, minlength=n_clusters)
    cap = np.bincount(labels[avail], minlength=n_clusters)
    per_cluster, _ = allocate(budget, size, cap, weights, allocation)

    # exponential races over every available point at once
    idx = np.flatnonzero(avail)
    lab = labels[idx]
    rng = np.random.default_rng(seed)
    e = rng.standard_exponential(idx.size)
    tie = np.zeros(idx.size)
    if q is None:
        key = e
    elif within == "multinomial":
        qa = q[idx]
        pos = qa > 0
        key = np.full(idx.size, np.inf)  # E / q in log space: no overflow for tiny q
        with np.errstate(divide="ignore"):
            np.subtract(np.log(e), np.log(qa, where=pos, out=np.ones_like(qa)), out=key, where=pos)
        tie = np.where(pos, 0.0, e)  # zero quality: last, in uniformly random order
    else:  # softmax: E / exp(q) in log space
        with np.errstate(divide="ignore"):
            key = np.log(e) - q[idx]
    order = np.lexsort((tie, key, lab))
    lab_sorted = lab[order]
    starts = np.concatenate(([0], np.cumsum(cap)[:-1]))
    rank = np.arange(idx.size) - starts[lab_sorted]
    take = rank < per_cluster[lab_sorted]
    picks = idx[order[take]]
    pick_lab = lab_sorted[take]
    pick_rank = rank[take]
    # interleave clusters: the r-th pick of cluster j sits at (r + 0.5) / b_j
    pos_key = (pick_rank + 0.5) / per_cluster[pick_lab]
    inter = np.lexsort((pick_lab, pos_key))
    return KMQSample(indices=picks[inter].astype(np.int64, copy=False),
                     per_cluster=per_cluster.astype(np.int64, copy=False))


# --------------------------------------------------------------------------------------------
# iterative kMQ: cluster weights (Eq. 5-6)
# --------------------------------------------------------------------------------------------
def cluster_weights_update(weights, labels, scores) -> ClusterWeights:
    """New cluster weights from per-sample scores: Eq. 5-6 of "Diversify and Conquer".

    ``s_j`` is the mean score of the scored samples of cluster j (Eq. 5) and the new weight is
    ``w_j = s_j / sum_c s_c * w_prev_j`` (Eq. 6). The paper leaves two cases undefined; here:

    * Negative means (its scores are differences of reward scores, Eq. 4, so they can be
      negative): every ``s_j`` is shifted by ``-min_j s_j`` so the lowest cluster mean becomes
      0. The shift keeps the order and the differences of the cluster scores and makes Eq. 6's
      weights non-negative; the lowest cluster's weight becomes 0 (as a score of 0 does in
      Eq. 6), and :func:`kmq_sample` then draws from it only once every other cluster is
      exhausted. The shift is reported in ``shift``.
    * All ``s_j`` zero (after the shift, e.g. every cluster scored the same): the scores carry
      no information, so every factor is ``1 / k`` (the limit of equal scores) and the weights
      keep their proportions.

    A cluster without any scored sample gets the mean of the scored clusters' ``s_j`` (after
    the shift): it keeps its weight relative to an average cluster.

    Parameters
    ----------
    weights : (k,) float array
        The previous weights ``w_prev``; non-negative, finite, not all zero (start with ones or
        ``1 / k``, Alg. 1).
    labels : (m,) int array
        Cluster id of every scored sample, in ``[0, k - 1]``.
    scores : (m,) float array
        Finite score of every scored sample (higher means the cluster should get more weight).

    Returns
    -------
    ClusterWeights
        ``weights`` (Eq. 6), ``cluster_scores`` (the ``s_j`` used), ``counts`` and ``shift``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import cluster_weights_update
    >>> res = cluster_weights_update(np.ones(2), [0, 0, 1], [1.0, 3.0, 6.0])
    >>> res.cluster_scores, res.weights
    (array([2., 6.]), array([0.25, 0.75]))
    >>> cluster_weights_update(np.ones(2), [0, 1], [-1.0, 1.0]).weights
    array([0., 1.])
    """
    func = "cluster_weights_update"
    wv = host_vector(weights, "weights", func, kind="floats")
    w = check_float_vector(wv, "weights", func, wv.shape[0], nonnegative=True,
                           what="one weight per cluster")
    k = w.shape[0]
    if k == 0:
        raise param_error(func, "weights", "a non-empty 1-D array of cluster weights", "an empty array")
    if not np.any(w > 0):
        raise param_error(func, "weights", "non-negative with at least one positive weight", "all zeros")
    sv = host_vector(scores, "scores", func, kind="floats")
    s = check_float_vector(sv, "scores", func, sv.shape[0], nonnegative=False,
                           what="one score per scored sample")
    if s.shape[0] == 0:
        raise param_error(func, "scores", "a non-empty 1-D array of scores", "an empty array")
    lab = check_labels(labels, func, n=s.shape[0], what="the cluster id of every score")
    if lab.max() >= k:
        bad = int(np.flatnonzero(lab >= k)[0])
        raise param_error(func, "labels", f"cluster ids in the range [0, {k - 1}] (one weight per "
                          "cluster)", f"{int(lab[bad])} at position {bad}")
    counts = np.bincount(lab, minlength=k)
    sums = np.bincount(lab, weights=s, minlength=k)
    scored = counts > 0
    means = np.zeros(k)
    means[scored] = sums[scored] / counts[scored]
    low = float(means[scored].min())
    shift = -low if low < 0 else 0.0
    means[scored] += shift
    means[~scored] = means[scored].mean()
    total = means.sum()
    factor = means / total if total > 0 else np.full(k, 1.0 / k)
    return ClusterWeights(weights=factor * w, cluster_scores=means, counts=counts.astype(np.int64),
                          shift=float(shift))


# --------------------------------------------------------------------------------------------
# choosing k by the silhouette
# --------------------------------------------------------------------------------------------
def choose_k(X, candidates, *, sample_size=10000, seed=0, metric="euclidean", niter=25, nredo=1,
             spherical=False, max_points_per_centroid=256, gpu="auto",
             progress=True) -> ChooseKResult:
    """Cluster ``X`` with :func:`kmeans` for every candidate k and keep the best silhouette.

    Every clustering is scored by :func:`iterselect.metrics.silhouette` on the same random
    sample of ``sample_size`` rows (drawn once from ``seed``), so the scores are comparable.

    Parameters
    ----------
    X : (N, d) array
        As for :func:`kmeans`.
    candidates : sequence of int
        Values of k to try, each in [2, N - 1], without duplicates.
    sample_size : int or None, default 10000
        Rows on which the silhouette is measured (all rows when None or when N is smaller).
        The exact silhouette costs ``sample_size**2 * d`` operations.
    seed : int in [0, 2**31 - 1], default 0
        Seed of every k-means run and of the sample.
    metric : {"euclidean", "cosine"}, default "euclidean"
        Distance of the silhouette.
    niter, nredo, spherical, max_points_per_centroid, gpu
        Passed to :func:`kmeans`.
    progress : bool, default True
        Show a progress bar over the candidates.

    Returns
    -------
    ChooseKResult
        ``k`` (best, smallest on ties), ``candidates``, ``scores``, the best ``kmeans`` result
        and the ``indices`` of the sample.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import choose_k
    >>> rng = np.random.default_rng(0)
    >>> centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> X = np.concatenate([c + rng.standard_normal((30, 2)) for c in centers])
    >>> res = choose_k(X, [2, 3, 4, 5], progress=False)
    >>> res.k
    3
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    from .metrics import silhouette  # noqa: PLC0415

    func = "choose_k"
    m = as_matrix(X, "X", func)
    n = m.shape[0]
    if isinstance(candidates, numbers.Integral):
        raise param_error(func, "candidates", "a sequence of ints", candidates, TypeError)
    cand = np.asarray(host_vector(candidates, "candidates", func, kind="ints"))
    if cand.size == 0:
        raise param_error(func, "candidates", "a non-empty sequence of ints", "an empty sequence")
    if not np.issubdtype(cand.dtype, np.integer):
        raise param_error(func, "candidates", "a sequence of ints", f"an array of dtype {cand.dtype}",
                          TypeError)
    if n < 3:
        raise param_error(func, "X", "an array with at least 3 rows (the silhouette needs 2 <= k "
                          "<= N - 1)", f"an array of shape {m.shape}")
    cand = cand.astype(np.int64)
    for c in cand:
        check_int(int(c), "candidates", func, 2, n - 1)
    if np.unique(cand).size != cand.size:
        raise param_error(func, "candidates", "values without duplicates", cand.tolist())
    seed = check_seed(seed, func, 2**31 - 1)
    if sample_size is not None:
        sample_size = check_int(sample_size, "sample_size", func, 3)
        if sample_size >= n:
            sample_size = None
    metric = check_choice(metric, "metric", func, ("euclidean", "cosine"))

    scores = np.empty(cand.size)
    best = None
    indices = None
    for i, c in enumerate(tqdm(cand, desc="choose_k", disable=not progress)):
        km = kmeans(X, int(c), niter=niter, nredo=nredo, seed=seed, spherical=spherical,
                    max_points_per_centroid=max_points_per_centroid, gpu=gpu)
        lab = host_vector(km.labels, "labels", func, kind="ints")
        if np.unique(lab).size < 2:  # k-means left every point in one cluster
            scores[i] = -1.0
            continue
        sil = silhouette(X, lab, sample_size=sample_size, seed=seed, metric=metric, progress=False)
        scores[i] = sil.score
        indices = sil.indices
        if best is None or scores[i] > scores[best[0]]:
            best = (i, km)
    if best is None:
        raise ValueError("choose_k: every candidate k left all points in a single cluster; "
                         "the silhouette is undefined.")
    return ChooseKResult(k=int(cand[best[0]]), candidates=cand, scores=scores, kmeans=best[1],
                         indices=indices)
