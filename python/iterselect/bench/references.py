"""The plain references the kernels are timed against, and the checks of agreement.

The greedy references (k-center, coverage) and the one-example IFD loop cost the same at every
step, so each runs in a time box: :meth:`Stepwise.run` stops when the box is spent and the time
of the whole run is the time per step times the steps (marked as extrapolated).
"""
from __future__ import annotations

import time

import numpy as np

NEAR_TIE = 1e-5  # relative gap under which two candidates are a tie to float32 rounding


class Stepwise:
    """A loop of equal steps that can stop in a time box and continue later."""

    total: int

    def __init__(self):
        self.steps = 0
        self.seconds = 0.0

    def step(self) -> None:
        raise NotImplementedError

    def run(self, seconds: float) -> None:
        """Run steps until all ``total`` are done or ``seconds`` have passed (at least one)."""
        t0 = time.perf_counter()
        while self.steps < self.total:
            self.step()
            self.steps += 1
            if time.perf_counter() - t0 > seconds:
                break
        self.seconds += time.perf_counter() - t0

    @property
    def done(self) -> bool:
        return self.steps >= self.total

    def full_seconds(self) -> float:
        """Seconds for all ``total`` steps (the time per step so far times ``total``)."""
        return self.seconds / max(self.steps, 1) * self.total


class NumpyKCenter(Stepwise):
    """Farthest-first traversal as the fastest plain numpy loop (float32): per pick one
    matrix-vector product (||x||^2 + ||c||^2 - 2 X c), an in-place minimum and an argmax.
    ``picks`` and ``radii`` (the covering radius after each pick) as far as it ran."""

    def __init__(self, X: np.ndarray, k: int, seed_index: int = 0):
        super().__init__()
        self.X, self.total = X, k
        self.sq = np.einsum("ij,ij->i", X, X)
        self.min_d = np.full(len(X), np.inf, dtype=np.float32)
        self.picks = [seed_index]
        self.radii = []

    def step(self) -> None:
        c = self.picks[-1]
        d = self.X @ self.X[c]
        d *= -2.0
        d += self.sq
        d += self.sq[c]
        np.minimum(self.min_d, d, out=self.min_d)
        self.min_d[c] = -1.0  # chosen: min(-1, d) keeps it out of every later argmax
        nxt = int(np.argmax(self.min_d))
        self.radii.append(float(np.sqrt(max(self.min_d[nxt], 0.0))))
        if len(self.picks) < self.total:
            self.picks.append(nxt)


class NumpyCoverage(Stepwise):
    """IterIT's weighted coverage greedy recomputing every gain with one sparse matrix-vector
    product per pick (float64): argmax of w_i * sum_g alpha_g X_ig, then alpha_g *= decay for the
    pick's n-grams. ``picks``, ``gains`` and ``runner_up`` (the second-best gain) of each step."""

    def __init__(self, X, k: int, weights: np.ndarray, decay: float):
        super().__init__()
        self.X, self.total, self.w, self.decay = X.tocsr().astype(np.float64, copy=False), k, weights, decay
        self.alpha = np.ones(X.shape[1])
        self.taken = np.zeros(X.shape[0], dtype=bool)
        self.picks, self.gains, self.runner_up = [], [], []

    def step(self) -> None:
        g = self.w * (self.X @ self.alpha)
        g[self.taken] = -np.inf
        i = int(np.argmax(g))
        self.picks.append(i)
        self.gains.append(float(g[i]))
        g[i] = -np.inf
        self.runner_up.append(float(g.max()) if g.size > 1 else -np.inf)
        self.taken[i] = True
        X = self.X
        self.alpha[X.indices[X.indptr[i]:X.indptr[i + 1]]] *= self.decay


class OneExampleIFD(Stepwise):
    """IFD one example at a time, as the published IFD code (Cherry LLM, which IterIT builds on)
    computes it: per example one forward of prompt + response and one of the response alone,
    each ``model(ids, labels=labels).loss`` over the full vocabulary at every position."""

    def __init__(self, model, cond, prior):
        super().__init__()
        self.model, self.cond, self.prior = model, cond, prior
        self.total = len(cond)
        self.ifd = np.full(len(cond), np.nan)

    def step(self) -> None:
        import torch

        i = self.steps
        if self.prior[i] is None:
            return
        losses = []
        with torch.no_grad():
            for ids, mask in (self.cond[i], self.prior[i]):
                x = torch.tensor(ids)[None]
                labels = x.clone()
                labels[0, ~torch.tensor(mask)] = -100
                losses.append(self.model(x, labels=labels).loss.item())
        self.ifd[i] = np.exp(losses[0]) / np.exp(losses[1])


# ------------------------------------------------------------------------------------ agreement

def compare_kcenter(X: np.ndarray, ours_picks, ours_radii, ref: NumpyKCenter) -> dict:
    """Picks compared over the steps both ran: identical, or the first differing pick and
    whether it is a near-tie (exact float64 distances of both candidates to the common prefix);
    the largest relative difference of the covering radii."""
    m = min(len(ours_picks), len(ref.picks), len(ref.radii))
    a, b = np.asarray(ours_picks[:m]), np.asarray(ref.picks[:m])
    r_ours, r_ref = np.asarray(ours_radii[:m], dtype=np.float64), np.asarray(ref.radii[:m])
    same = np.flatnonzero(a != b)
    t = int(same[0]) if same.size else m
    err = float(np.max(np.abs(r_ours[:t] - r_ref[:t]) / np.maximum(r_ref[:t], 1e-30))) if t else 0.0
    out = {"identical": same.size == 0, "picks_compared": m, "max_error": err,
           "max_error_of": "covering radius, relative"}
    if same.size == 0:
        out["summary"] = f"identical ({m:,} picks)"
        return out
    centers = X[b[:t]].astype(np.float64)

    def exact(i):
        return float(np.sqrt(((centers - X[i].astype(np.float64)) ** 2).sum(axis=1).min()))

    da, db = exact(int(a[t])), exact(int(b[t]))
    gap = abs(da - db) / max(da, db, 1e-300)
    out.update(first_difference=t, near_tie=bool(gap <= NEAR_TIE), tie_gap=gap,
               summary=f"first differs at pick {t:,} of {m:,}: "
                       f"{'near-tie' if gap <= NEAR_TIE else 'NOT a near-tie'} (gap {gap:.1e})")
    return out


def compare_greedy(ours_picks, ours_gains, ref: NumpyCoverage) -> dict:
    """Coverage picks over the steps both ran: identical, or the first differing step and the
    reference's relative gap between its best and second-best gain there; the largest relative
    difference of the gains before it."""
    m = min(len(ours_picks), len(ref.picks))
    a, b = np.asarray(ours_picks[:m]), np.asarray(ref.picks[:m])
    g_ours, g_ref = np.asarray(ours_gains[:m], dtype=np.float64), np.asarray(ref.gains[:m])
    diff = np.flatnonzero(a != b)
    t = int(diff[0]) if diff.size else m
    scale = np.maximum(np.abs(g_ref[:t]), 1e-300)
    err = float(np.max(np.abs(g_ours[:t] - g_ref[:t]) / scale)) if t else 0.0
    out = {"identical": diff.size == 0, "picks_compared": m, "max_error": err,
           "max_error_of": "marginal gain, relative"}
    if diff.size == 0:
        out["summary"] = f"identical ({m:,} picks)"
        return out
    gap = abs(ref.gains[t] - ref.runner_up[t]) / max(abs(ref.gains[t]), 1e-300)
    out.update(first_difference=t, near_tie=bool(gap <= NEAR_TIE), tie_gap=gap,
               summary=f"first differs at step {t:,} of {m:,}: "
                       f"{'near-tie' if gap <= NEAR_TIE else 'NOT a near-tie'} (gap {gap:.1e})")
    return out


def nearest_sq(X: np.ndarray, picks, block: int = 2048) -> np.ndarray:
    """min over the picks of ||x_i - x_j||^2 for every row, in float64, a block of rows at a time."""
    C = X[np.asarray(picks)].astype(np.float64)
    cc = np.einsum("ij,ij->i", C, C)
    out = np.empty(len(X))
    for s in range(0, len(X), block):
        B = X[s:s + block].astype(np.float64)
        d = np.einsum("ij,ij->i", B, B)[:, None] + cc[None, :] - 2.0 * (B @ C.T)
        out[s:s + block] = np.maximum(d.min(axis=1), 0.0)
    return out


def largest_sq_distance(X: np.ndarray, block: int = 2048) -> float:
    """The largest squared distance between two rows (float64, blocks of rows)."""
    X64 = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", X64, X64)
    best = 0.0
    for s in range(0, len(X), block):
        B = X64[s:s + block]
        best = max(best, float((sq[s:s + block, None] + sq[None, :] - 2.0 * (B @ X64.T)).max()))
    return best


def dense_facility_objective(X: np.ndarray, picks, M: float) -> float:
    """apricot's dense facility-location objective with metric="euclidean":
    F(S) = sum_i max_{j in S} (M - ||x_i - x_j||^2) = N M - sum_i min_j ||x_i - x_j||^2."""
    return len(X) * M - float(nearest_sq(X, picks).sum())
