"""k-means clustering with faiss."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import Matrix, as_matrix, host_float32, host_rows, results_like
from .._faiss import faiss_num_gpus, import_faiss
from .._validation import check_int, param_error

_ASSIGN_ROWS = 16384  # rows assigned to their centroid at a time (25 MiB of float32 at d = 384)


@dataclass(frozen=True)
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes
    ----------
    centroids : (k, d) float32 array, in the input's kind and device.
    labels : (N,) int64 array, the nearest centroid of every row (squared L2).
    inertia : float, sum over all N rows of the squared L2 distance to the nearest centroid
        (scikit-learn's ``inertia_``).
    objective : float64 array, faiss's objective (sum of squared distances on the training
        sample, see ``max_points_per_centroid``) after every iteration of every redo it ran, at
        most ``niter * nredo`` values (faiss stops a run once the objective stops changing).
    gpu : bool, whether faiss ran on the GPU.
    """

    centroids: object
    labels: object
    inertia: float
    objective: np.ndarray
    gpu: bool


def _check_gpu(gpu, func: str):
    if isinstance(gpu, (bool, np.bool_)):
        return bool(gpu)
    if isinstance(gpu, str) and gpu == "auto":
        return "auto"
    raise param_error(func, "gpu", "one of {'auto', True, False}", gpu)


def kmeans(X: ArrayLike, k: int, *, niter: int = 25, nredo: int = 1, seed: int = 0, spherical: bool = False,
           max_points_per_centroid: int = 256, gpu: bool | str = "auto") -> KMeansResult:
    """k-means clustering with faiss (Lloyd's iterations on a training sample, then every row
    assigned to its nearest centroid).

    Parameters
    ----------
    X : (N, d) array
        numpy, torch or cupy; float16, bfloat16, float32 or float64 (a memory-mapped array
        too). faiss works in float32: the training rows (at most ``k * max_points_per_centroid``)
        are converted to a float32 copy, and the other rows a block at a time when they are
        assigned, so a host input is never copied whole.
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
    seed = check_int(seed, "seed", func, 0, 2**31 - 1)
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

    rows = _float32_rows(m)
    n_train = k * max_points_per_centroid
    # faiss trains on k * max_points_per_centroid rows drawn by its own permutation when N is
    # larger; drawing the same rows here means only they are converted to float32, never all N.
    train = rows(_faiss_sample(faiss, n, n_train, seed) if n > n_train else slice(0, n))
    km = faiss.Kmeans(d, k, niter=niter, nredo=nredo, seed=seed, spherical=bool(spherical),
                      max_points_per_centroid=max_points_per_centroid,
                      min_points_per_centroid=1,  # only silences faiss's "too few points" warning
                      verbose=False, gpu=use_gpu)
    km.train(train)
    del train
    labels = np.empty(n, dtype=np.int64)
    inertia = 0.0
    for start in range(0, n, _ASSIGN_ROWS):
        dist, lab = km.index.search(rows(slice(start, start + _ASSIGN_ROWS)), 1)
        labels[start:start + lab.shape[0]] = lab[:, 0]
        inertia += float(np.sum(dist[:, 0], dtype=np.float64))
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    objective = np.asarray(km.obj, dtype=np.float64)
    return results_like(KMeansResult(centroids=centroids, labels=labels, inertia=inertia,
                                     objective=objective, gpu=use_gpu), m.obj)


def _float32_rows(m: Matrix):
    """``rows(sel)``: C-contiguous float32 host rows of ``m`` (a CUDA input is copied to the
    host once, as faiss's k-means reads host memory)."""
    if m.on_cuda:
        x = host_float32(m)
        return lambda sel: np.ascontiguousarray(x[sel])
    return lambda sel: np.ascontiguousarray(host_rows(m, sel, np.float32))


def _faiss_sample(faiss, n: int, n_train: int, seed: int) -> np.ndarray:
    """The rows faiss's k-means trains on when it subsamples N rows: the first ``n_train`` of
    its permutation ``rand_perm(N, seed)``, in that order."""
    perm = np.empty(n, dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), n, seed)
    return perm[:n_train].astype(np.int64)
