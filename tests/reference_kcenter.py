"""Plain numpy k-center greedy in float64: the reference every fast path is tested against."""
from __future__ import annotations

import numpy as np


def integer_grids(max_n, max_d):
    """Hypothesis strategy: float32 matrices of up to max_n x max_d small integers, so that every
    distance is exact in float32 and ties and duplicates are common."""
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    return st.integers(1, max_n).flatmap(
        lambda n: st.integers(1, max_d).flatmap(
            lambda d: arrays(np.float32, (n, d), elements=st.integers(-3, 3).map(float))))


def in_dtype(X, dtype):
    """X rounded to ``dtype`` as the kernels take it (bfloat16 as a torch tensor, the others as
    numpy), and the exact float64 values of that rounding."""
    import torch

    t = torch.from_numpy(np.asarray(X, dtype=np.float32)).to(getattr(torch, dtype))
    return (t if dtype == "bfloat16" else t.numpy()), t.to(torch.float64).numpy()


def _prepare(X, metric):
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    return X


def _dist(X, c, metric):
    sq = ((X - X[c]) ** 2).sum(axis=1)
    return 0.5 * sq if metric == "cosine" else np.sqrt(sq)


def kcenter_reference(X, k, selected=None, metric="euclidean", seed_index=0, trace=False):
    """Farthest-first traversal; ties to the lowest index (np.argmax takes the first maximum).

    Returns (indices, radii, min_distances[, masked min-distance vector before every pick]).
    """
    X = _prepare(X, metric)
    n = X.shape[0]
    min_d = np.full(n, np.inf)
    chosen = np.zeros(n, dtype=bool)
    picks, radii, states = [], [], []
    pool = [] if selected is None else list(selected)
    for s in pool:
        min_d = np.minimum(min_d, _dist(X, s, metric))
        chosen[s] = True
    if not pool:
        picks.append(seed_index)
        chosen[seed_index] = True
        min_d = np.minimum(min_d, _dist(X, seed_index, metric))
        states.append(None)
    min_d[chosen] = 0.0
    while True:
        masked = np.where(chosen, -1.0, min_d)
        if len(picks) > 0:
            radii.append(max(masked.max(), 0.0) if (~chosen).any() else 0.0)
        if len(picks) == k:
            break
        states.append(masked.copy())
        nxt = int(np.argmax(masked))
        picks.append(nxt)
        chosen[nxt] = True
        min_d = np.minimum(min_d, _dist(X, nxt, metric))
        min_d[nxt] = 0.0
    out = (np.array(picks, dtype=np.int64), np.array(radii), min_d)
    return out + (states,) if trace else out


def assert_matches_reference(result, X, k, *, selected=None, metric="euclidean", seed_index=0,
                             rtol=1e-5, tie_rtol=1e-5):
    """Compare a fast result with the float64 reference: identical picks, or near-ties.

    Identical picks are required except where the reference itself saw a near-tie (the top two
    candidates within ``tie_rtol``): there float rounding may choose either and the greedy then
    diverges for good, so the radii are compared up to that step and the step is returned.
    Returns the first differing step, or None when all picks agree.
    """
    ref_idx, ref_radii, ref_min, states = kcenter_reference(X, k, selected, metric, seed_index, trace=True)
    ours = np.asarray(result.indices)
    radii = np.asarray(result.radii, dtype=np.float64)
    diff = np.flatnonzero(ours != ref_idx)
    if diff.size == 0:
        np.testing.assert_allclose(radii, ref_radii, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(np.asarray(result.min_distances, dtype=np.float64), ref_min, rtol=rtol, atol=rtol)
        return None
    t = int(diff[0])
    masked = states[t]
    a, b = masked[ours[t]], masked[ref_idx[t]]
    scale = max(abs(b), 1e-12)
    assert abs(a - b) <= tie_rtol * scale, (
        f"pick {t} differs ({ours[t]} vs reference {ref_idx[t]}) and is not a near-tie: "
        f"{a!r} vs {b!r}")
    if t > 0:
        np.testing.assert_allclose(radii[:t - 1], ref_radii[:t - 1], rtol=rtol, atol=rtol)
    return t
