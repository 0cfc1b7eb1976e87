"""Plain numpy Lloyd's k-means in float64: the reference of the distributed k-means."""
from __future__ import annotations

import numpy as np


def lloyd_reference(X, init, niter):
    """Lloyd's iterations from ``init``: each row to its nearest centroid by float64 squared
    distance (ties to the lowest cluster), each non-empty cluster's centroid to the mean of its
    rows (an empty one keeps its centroid); stops early when the centroids stop changing.
    Returns (centroids, labels, inertia of each iteration's assignment)."""
    X = np.asarray(X, dtype=np.float64)
    C = np.array(init, dtype=np.float64)
    objective = []
    for _ in range(niter):
        dist = ((X[:, None, :] - C[None]) ** 2).sum(axis=-1)
        labels = dist.argmin(axis=1)
        objective.append(float(dist[np.arange(X.shape[0]), labels].sum()))
        new = C.copy()
        for j in range(C.shape[0]):
            members = labels == j
            if members.any():
                new[j] = X[members].sum(axis=0) / members.sum()
        if np.array_equal(new, C):
            break
        C = new
    labels = ((X[:, None, :] - C[None]) ** 2).sum(axis=-1).argmin(axis=1)
    return C, labels, np.array(objective)
