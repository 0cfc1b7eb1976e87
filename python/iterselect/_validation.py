"""Parameter checks that speak with one voice (scikit-learn's).

Every public function validates its arguments here, at the Python boundary, and raises
``ValueError``/``TypeError`` naming the parameter, the function, what is expected and what was
found, e.g. ``The 'k' parameter of kcenter_greedy must be an int in the range [1, 15011].
Got 20000 instead.``
"""
from __future__ import annotations

import numbers

import numpy as np

from ._arrays import host_vector
from .exceptions import param_error


def check_int(value, name: str, func: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` (either bound optional)."""
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    expected = f"an int in the range [{lo}, {hi}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise param_error(func, name, expected, value, TypeError)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise param_error(func, name, expected, value)
    return value


def check_bool(value, name: str, func: str) -> bool:
    """Return ``value`` as a bool; only True or False (numpy's included) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise param_error(func, name, "a bool", value, TypeError)
    return bool(value)


def check_float(value, name: str, func: str, low: float | None = None, high: float | None = None,
                *, low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float in the given (closed unless ``*_open``) interval."""
    lb = "(" if low_open else "["
    rb = ")" if high_open else "]"
    expected = f"a float in the range {lb}{'-inf' if low is None else low}, {'inf' if high is None else high}{rb}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise param_error(func, name, expected, value, TypeError)
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise param_error(func, name, expected, value)
    return value


def check_choice(value, name: str, func: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise param_error(func, name, f"one of {{{options}}}", value)
    return value


def check_float_dtype(dtype, name: str, func: str) -> np.dtype:
    """Return ``dtype`` as ``numpy.float32`` or ``numpy.float64``."""
    expected = "numpy.float32 or numpy.float64"
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise param_error(func, name, expected, dtype, TypeError) from exc
    if dt not in (np.float32, np.float64):
        raise param_error(func, name, expected, dtype)
    return dt


def check_indices(values, name: str, func: str, n: int, *, allow_none: bool = True) -> np.ndarray:
    """Return ``values`` as a unique int64 array of indices into ``range(n)``.

    Accepts any 1-D integer sequence (numpy, list, torch/cupy via ``np.asarray`` on host).
    Duplicates and out-of-range entries raise ``ValueError`` naming the first offender.
    """
    if values is None:
        if allow_none:
            return np.empty(0, dtype=np.int64)
        raise param_error(func, name, "a 1-D sequence of indices", None, TypeError)
    arr = np.asarray(values)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise param_error(func, name, "a 1-D sequence of integer indices",
                          f"array of shape {arr.shape} and dtype {arr.dtype}", TypeError)
    arr = arr.astype(np.int64, copy=False)
    bad = np.flatnonzero((arr < 0) | (arr >= n))
    if bad.size:
        raise param_error(func, name, f"indices in the range [0, {n - 1}]",
                          f"{int(arr[bad[0]])} at position {int(bad[0])}")
    uniq, first, counts = np.unique(arr, return_index=True, return_counts=True)
    if uniq.size != arr.size:
        dup = uniq[counts > 1][0]
        raise param_error(func, name, "indices without duplicates", f"{int(dup)} more than once")
    return arr


def check_selection_budget(selected, k, func: str, n: int, item: str = "row", *,
                           names: tuple[str, str] = ("selected", "k")):
    """``(pool, k)``: ``selected`` as checked indices into ``range(n)`` (the pool already
    chosen) and ``k`` checked against the ``item``s left to pick. ``names``: the two
    parameters' names as the caller calls them."""
    selected_name, k_name = names
    pool = check_indices(selected, selected_name, func, n)
    room = n - pool.size
    if room < 1:
        raise param_error(func, selected_name, f"fewer than n ({n}) indices, so there is a {item} "
                          "left to pick", f"{pool.size} indices")
    return pool, check_int(k, k_name, func, 1, room)


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
