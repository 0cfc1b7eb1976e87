"""Row shards of an embedding matrix: where each lives, and how its actor loads it.

A matrix arrives as an in-memory array (cut into row ranges, each put once into Ray's object
store), one ``.npy`` file (memory-mapped by every actor, each reading its own row range), a
list of ``.npy`` files (one shard per file, or consecutive files grouped) or a Ray Dataset of
embedding rows (materialized in order and split at row boundaries). Global row ``i`` is row
``i - offset`` of the shard whose range holds it, so the order is the input's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .._arrays import FLOAT_DTYPES, Matrix, as_matrix, check_finite_rows, check_nonzero_rows
from ..exceptions import param_error
from ._cluster import release_idle_actors


@dataclass(frozen=True)
class Shard:
    """Rows ``[offset, offset + rows)`` of the matrix and how to load them."""

    offset: int
    rows: int
    kind: str       # "blocks" (ref: object refs of row blocks), "npy" (ref: path), "files" (paths)
    ref: object
    start: int = 0  # "npy": first row in the file
    dtype: str = "float32"


@dataclass(frozen=True)
class ShardedMatrix:
    """An (n, d) matrix cut into row shards; ``matrix``: the in-memory input, when there was one
    (results come back as its kind)."""

    n: int
    d: int
    dtype: str
    shards: list
    matrix: Matrix | None = None

    @property
    def offsets(self) -> np.ndarray:
        return np.array([s.offset for s in self.shards] + [self.n], dtype=np.int64)


def row_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, nearly equal ranges covering ``range(n)`` (none empty)."""
    parts = max(1, min(parts, n))
    bounds = [n * p // parts for p in range(parts + 1)]
    return [(bounds[p], bounds[p + 1]) for p in range(parts)]


def _npy_header(path, func: str):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise param_error(func, "X", "an existing .npy file", f"{path!r} (no such file)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise param_error(func, "X", "a .npy file of a 2-D float array", f"{path!r} ({exc})") from None
    dtype = arr.dtype.name
    if arr.ndim != 2 or dtype not in FLOAT_DTYPES or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise param_error(func, "X", f"a .npy file of a non-empty 2-D array of dtype {', '.join(FLOAT_DTYPES)}",
                          f"{path!r} holding shape {arr.shape} and dtype {dtype}")
    return arr.shape, dtype


def _is_dataset(X) -> bool:
    return type(X).__module__.startswith("ray.data")


def _is_path(X) -> bool:
    return isinstance(X, (str, os.PathLike))


def shard_matrix(ray, X, num_shards: int | None, func: str, *, column: str | None = None,
                 default_shards: int = 1) -> ShardedMatrix:
    """Cut X into row shards (see the module docstring)."""
    if _is_path(X):
        (n, d), dtype = _npy_header(X, func)
        parts = row_ranges(n, num_shards or default_shards)
        return ShardedMatrix(n, d, dtype, [Shard(lo, hi - lo, "npy", os.fspath(X), start=lo, dtype=dtype)
                                           for lo, hi in parts])
    if isinstance(X, (list, tuple)) and X and all(_is_path(p) for p in X):
        return _shard_files([os.fspath(p) for p in X], num_shards, func)
    if _is_dataset(X):
        return _shard_dataset(ray, X, num_shards or default_shards, column, func)
    m = as_matrix(X, "X", func)
    if m.on_cuda:
        raise param_error(func, "X", "host data (numpy, a CPU torch tensor, .npy paths or a Ray Dataset)",
                          f"a {m.kind} array on CUDA")
    n, d = m.shape
    shards = [Shard(lo, hi - lo, "blocks", [ray.put(np.ascontiguousarray(m.host[lo:hi]))], dtype=m.dtype)
              for lo, hi in row_ranges(n, num_shards or default_shards)]
    return ShardedMatrix(n, d, m.dtype, shards, matrix=m)


def _shard_files(paths: list, num_shards, func: str) -> ShardedMatrix:
    headers = [_npy_header(p, func) for p in paths]
    d, dtype = headers[0][0][1], headers[0][1]
    for p, (shape, dt) in zip(paths, headers):
        if shape[1] != d or dt != dtype:
            raise param_error(func, "X", f"files of one dtype and width (the first: {dtype}, {d} columns)",
                              f"{p!r} with {dt}, {shape[1]} columns")
    sizes = [shape[0] for shape, _ in headers]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = row_ranges(len(paths), num_shards or len(paths))
    shards = [Shard(int(starts[a]), int(starts[b] - starts[a]), "files", paths[a:b], dtype=dtype) for a, b in groups]
    return ShardedMatrix(int(starts[-1]), d, dtype, shards)


def _shard_dataset(ray, ds, parts: int, column, func: str) -> ShardedMatrix:
    release_idle_actors(ray)
    ctx = ray.data.DataContext.get_current()
    keep = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True  # global row i is the dataset's row i
    ctx.enable_progress_bars = False
    try:
        ds = ds.materialize()
        names = ds.schema().names
        if column is None:
            if len(names) != 1:
                raise param_error(func, "column", f"the embedding column among {names}", None)
            column = names[0]
        elif column not in names:
            raise param_error(func, "column", f"one of the dataset's columns {names}", column)
        n = ds.count()
        if n < 1:
            raise param_error(func, "X", "a dataset with at least one row", "an empty dataset")
        first = np.asarray(ds.take_batch(1, batch_format="numpy")[column])
        if first.ndim != 2 or first.dtype.name not in FLOAT_DTYPES:
            raise param_error(func, "X", f"a dataset whose {column!r} column holds float vectors",
                              f"values of shape {first.shape[1:]} and dtype {first.dtype}")
        ranges = row_ranges(n, parts)
        pieces = ds.split_at_indices([lo for lo, _ in ranges[1:]])
        # each shard's blocks as numpy arrays in the object store, owned by this driver
        blocks = [piece.to_numpy_refs(column=column) for piece in pieces]
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = keep
    shards = [Shard(lo, hi - lo, "blocks", refs, dtype=first.dtype.name) for (lo, hi), refs in zip(ranges, blocks)]
    return ShardedMatrix(n, int(first.shape[1]), first.dtype.name, shards)


def resolve(refs: list) -> list:
    """The values of object refs; anything else is taken as the value itself (a shard built in
    this process, as tests do)."""
    try:
        import ray
    except ImportError:
        return list(refs)
    return [ray.get(r) if isinstance(r, ray.ObjectRef) else r for r in refs]


def _joined(parts: list) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def load_shard(shard: Shard, func: str, *, cosine: bool = False) -> Matrix:
    """The shard's rows on its actor, checked (finite; nonzero rows for the cosine metric) with
    errors naming global rows."""
    if shard.kind == "blocks":
        arr = _joined(resolve(shard.ref))
    else:
        paths = [shard.ref] if shard.kind == "npy" else shard.ref
        parts = [np.load(p, mmap_mode="r") for p in paths]
        if shard.kind == "npy":
            parts = [parts[0][shard.start:shard.start + shard.rows]]
        arr = _joined(parts)
    if arr.dtype.name == "bfloat16":  # ml_dtypes' bfloat16: the kernels read its bits
        arr = arr.view(np.uint16)
    if arr.shape[0] != shard.rows:
        raise RuntimeError(f"{func}: shard at row {shard.offset} has {arr.shape[0]} rows; expected {shard.rows}")
    m = Matrix(obj=arr, kind="numpy", device="cpu", dtype=shard.dtype, shape=tuple(arr.shape),
               host=np.ascontiguousarray(arr))
    check_finite_rows(m.host, m.dtype, "X", func, offset=shard.offset)
    if cosine:
        check_nonzero_rows(m, "X", func, offset=shard.offset)
    return m
