"""What the ``iterselect`` commands do with their data, apart from parsing and printing: open an
input (a file, a folder, or the bundled Dolly 15k), find or compute its embeddings, plan the
long steps, and take the selected rows back out.

Embeddings given as a ``.npy`` are memory-mapped, never read whole; computed ones are streamed a
chunk of records at a time, so a command holds at most one chunk of text.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Callable

import numpy as np

from .estimates import Plan, Step, calibrate_embedding, embedding_step
from .io import DataError, RecordSource, Rows, open_records

CALIBRATION_RECORDS = 32
EMBED_CHUNK = 1024


class JobError(ValueError):
    """A problem with a command's inputs, said in one line."""


def open_input(path, *, fields=None, split=None, required=(), numeric=(),
               limit=None) -> RecordSource:
    """The records of ``path`` (None: the bundled Dolly 15k), validated and ready to stream."""
    from .datasets import dolly_path

    try:
        source = open_records(path if path is not None else dolly_path(), fields=fields,
                              split=split, required=required, numeric=numeric, limit=limit)
    except (DataError, ValueError, TypeError) as exc:
        raise JobError(str(exc)) from None
    if len(source) == 0:
        raise JobError(f"{path}: holds no records")
    return source


def load_embeddings(path, n: int | None = None) -> np.ndarray:
    """A ``.npy`` of embeddings, memory-mapped (its pages are read as the kernels reach them)."""
    path = Path(path)
    if not path.exists():
        raise JobError(f"{path}: no such file")
    try:
        emb = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise JobError(f"{path}: cannot be read as a .npy array ({exc})") from None
    if emb.ndim != 2:
        raise JobError(f"{path}: embeddings must be 2-D (rows x dimensions), got shape {emb.shape}")
    if n is not None and emb.shape[0] != n:
        raise JobError(f"{path}: has {emb.shape[0]} rows but there are {n} records; row i must "
                       "embed record i")
    return emb


@dataclass
class EmbeddingSource:
    """How a command gets its embeddings: their shape and dtype now, the array from ``get()``
    (which computes them when ``step`` is set: a planned, estimated step)."""

    rows: int
    dim: int
    dtype: str
    get: Callable[[], np.ndarray]
    step: Step | None = None


def plan_embeddings(source: RecordSource, path, *, bundled: bool, plan: Plan, progress: bool,
                    more_rows: bool = False, text: Callable | None = None) -> EmbeddingSource:
    """Embeddings for ``source``: the ``.npy`` at ``path``, the cached ones of the bundled set,
    or MiniLM's, computed (a step added to ``plan``, timed on a few of the input's records).
    ``more_rows``: the source is the first records of its input (``limit``), so a file or cache
    of the whole input is cut to them. ``text``: what is embedded of a record (default
    :func:`iterselect.datasets.embedding_text`; another text never uses the bundled set's cache,
    which embeds the whole record)."""
    from . import datasets

    n = len(source)
    if path is not None:
        emb = load_embeddings(path, None if more_rows else n)
        if emb.shape[0] < n:
            load_embeddings(path, n)  # raises, naming the rows
        return EmbeddingSource(n, emb.shape[1], emb.dtype.name, lambda: emb[:n])
    if text is not None:
        bundled = False  # the shipped embeddings are of the default embedding text
    if bundled and datasets.dolly_embeddings_cached():
        emb = datasets.dolly_embeddings(progress=progress)
        if emb.shape[0] == n or (more_rows and emb.shape[0] > n):
            return EmbeddingSource(n, emb.shape[1], emb.dtype.name, lambda: emb[:n])
    from .scoring.embeddings import embedding_dimension

    model = _minilm()
    dim = embedding_dimension(model)
    text = text or datasets.embedding_text
    texts = [text(r) for r in islice(source, CALIBRATION_RECORDS)]
    whole_bundled = bundled and n == datasets.DOLLY_ROWS  # computed once, then cached
    dtype = "float16" if whole_bundled else "float32"
    step = plan.add(embedding_step(n, calibrate_embedding(model, texts), dim, model="MiniLM",
                                   in_memory=True, dtype=dtype, calibrated_on=len(texts)))
    if whole_bundled:
        return EmbeddingSource(n, dim, dtype, lambda: datasets.dolly_embeddings(progress=progress), step)
    return EmbeddingSource(n, dim, dtype, lambda: embed_in_memory(model, source, dim, progress, text),
                           step)


@lru_cache(maxsize=1)
def _minilm():
    from .scoring.embeddings import load_sentence_model

    return load_sentence_model(None)


def embed_in_memory(model, source: RecordSource, dim: int, progress: bool,
                    text: Callable | None = None) -> np.ndarray:
    """MiniLM embeddings of every record's ``text`` (float32, N x d), streamed a chunk at a
    time."""
    from .scoring.embed_file import embed_chunks

    out = np.empty((len(source), dim), dtype=np.float32)
    bar = _bar(progress, len(source))
    try:
        embed_chunks(model, source, out, chunk_size=EMBED_CHUNK, text=text,
                     on_chunk=None if bar is None else (lambda done: bar.update(done - bar.n)))
    finally:
        if bar is not None:
            bar.close()
    return out


def _bar(progress: bool, total: int):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rec", desc="embed", smoothing=0.1)


def take_across(sources: list, indices) -> Rows:
    """Rows by global index over several inputs laid end to end, in the order of ``indices``."""
    sizes = np.array([len(s) for s in sources], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    idx = np.asarray(indices, dtype=np.int64)
    which = np.searchsorted(starts, idx, side="right") - 1
    parts, order = [], np.empty(idx.size, dtype=np.int64)
    done = 0
    for k, source in enumerate(sources):
        pos = np.flatnonzero(which == k)
        if pos.size:
            parts.append(source.take(idx[pos] - starts[k]))
            order[pos] = np.arange(done, done + pos.size)
            done += pos.size
    return Rows.concat(parts).reorder(order.tolist())
