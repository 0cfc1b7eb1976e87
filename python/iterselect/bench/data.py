"""The benchmark's data: the user's files, or a deterministic set of any size made from the
bundled Dolly 15k.

Embeddings (:func:`synth_embeddings`): Dolly's shipped MiniLM embeddings cycled, each copy plus
Gaussian noise of norm about 0.1, renormalized to unit length (the recipe of the project's
million-row synthetic set, on Dolly alone). Records (:func:`synth_records`): row i keeps the
instruction and input of Dolly record ``i mod 15015`` and gets a response of as many sentences
as that record's, drawn at random from all of Dolly's response sentences. The same ``n`` and
``seed`` give the same data on every machine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import datasets

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BLOCK_ROWS = 65536


def synth_embeddings(n: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """``n`` unit-norm rows: Dolly's MiniLM embeddings cycled, each copy plus noise of norm ~0.1.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.bench.data import synth_embeddings
    >>> X = synth_embeddings(20000)
    >>> X.shape, X.dtype, bool(np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5))
    ((20000, 384), dtype('float32'), True)
    >>> bool(np.array_equal(X[:100], synth_embeddings(100)))   # a prefix of a larger set
    True
    """
    base = datasets.dolly_embeddings(progress=False).astype(np.float32)
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    out = np.empty((n, d), dtype=dtype)
    sigma = 0.1 / np.sqrt(d)
    for s in range(0, n, _BLOCK_ROWS):
        e = min(n, s + _BLOCK_ROWS)
        x = base[np.arange(s, e) % len(base)]
        x += sigma * rng.standard_normal((e - s, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x
    return out


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def synth_records(n: int, seed: int = 0) -> list[dict]:
    """``n`` Alpaca-style records whose responses are Dolly's response sentences reshuffled
    across documents (each keeps the sentence count of the Dolly record it cycles over).

    Examples
    --------
    >>> from iterselect.bench.data import synth_records
    >>> rows = synth_records(3)
    >>> sorted(rows[0]), rows == synth_records(3)
    (['input', 'instruction', 'output'], True)
    """
    rows = datasets.load_dolly()
    docs = [_sentences(r["output"]) for r in rows]
    pool = [s for d in docs for s in d]
    counts = np.array([max(1, len(d)) for d in docs], dtype=np.int64)
    per_doc = counts[np.arange(n) % len(rows)]
    picks = np.random.default_rng(seed).integers(0, len(pool), int(per_doc.sum()))
    ends = np.cumsum(per_doc)
    out = []
    for i in range(n):
        r = rows[i % len(rows)]
        chosen = picks[ends[i] - per_doc[i]:ends[i]]
        out.append({"instruction": r["instruction"], "input": r["input"],
                    "output": " ".join(pool[j] for j in chosen)})
    return out


@dataclass(frozen=True)
class Source:
    """Where the benchmark's rows come from, as the worker processes rebuild them.

    ``embeddings`` / ``records``: a user's file, or None for the synthetic set (of any size);
    ``quality``: a user's (N,) scores for the quality suite; ``fields`` and ``split``: how the
    records file is read (:class:`~iterselect.io.FieldMap`, a datasets folder's split).
    """

    embeddings: str | None = None
    records: str | None = None
    quality: str | None = None
    seed: int = 0
    fields: dict | None = None
    split: str | None = None

    def describe(self) -> dict:
        return {"embeddings": self.embeddings or "synthetic (bundled Dolly MiniLM embeddings cycled "
                "with noise of norm 0.1, unit norm)",
                "records": self.records or "synthetic (bundled Dolly records, response sentences "
                "reshuffled)", "quality": self.quality, "seed": self.seed}


def embedding_rows(source: Source) -> int | None:
    """Rows of the user's embeddings file (None: synthetic, any size)."""
    if source.embeddings is None:
        return None
    return int(np.load(source.embeddings, mmap_mode="r").shape[0])


def load_embeddings(source: Source, n: int) -> np.ndarray:
    """The first ``n`` rows of the benchmark's embeddings, in memory, float32."""
    if source.embeddings is None:
        return synth_embeddings(n, source.seed)
    X = np.load(source.embeddings, mmap_mode="r")
    return np.ascontiguousarray(X[:n], dtype=np.float32)


def _open(source: Source, limit: int | None):
    from ..io import FieldMap
    from ..jobs import open_input

    return open_input(Path(source.records), fields=FieldMap(**(source.fields or {})), split=source.split,
                      limit=limit)


def record_count(source: Source) -> int | None:
    """Records of the user's file (None: synthetic, any size)."""
    return None if source.records is None else len(_open(source, None))


def load_records(source: Source, n: int) -> list[dict]:
    """The first ``n`` records, the user's (canonical Alpaca or ShareGPT records) or synthetic."""
    if source.records is None:
        return synth_records(n, source.seed)
    return list(_open(source, n))


def response_texts(records) -> list[str]:
    """Each record's response (a conversation: its assistant turns), for TF-IDF and lengths."""
    from ..methods.baselines import response_text

    return [response_text(r) for r in records]


def quality_pool(source: Source, n: int | None) -> tuple[np.ndarray, list[dict], np.ndarray | None, str]:
    """The quality suite's pool: ``(embeddings float32, records, quality or None, description)``.

    Without files: the first ``n`` bundled Dolly records (all 15,015 when ``n`` is None) with
    their real MiniLM embeddings. With ``--embeddings`` and ``--input``: the first ``n`` rows of
    both (they must have as many rows), and ``--quality``'s scores when given.
    """
    if source.embeddings is None and source.records is None:
        X = datasets.dolly_embeddings(progress=False).astype(np.float32)
        rows = datasets.load_dolly()
        n = len(rows) if n is None else min(n, len(rows))
        records = [{"instruction": r["instruction"], "input": r["input"], "output": r["output"]}
                   for r in rows[:n]]
        what = f"bundled Dolly 15k, first {n:,} records, their MiniLM embeddings"
        X = X[:n]
    else:
        X = np.load(source.embeddings, mmap_mode="r")
        n = X.shape[0] if n is None else min(n, X.shape[0])
        X = np.ascontiguousarray(X[:n], dtype=np.float32)
        records = load_records(source, n)
        what = f"{source.records} with {source.embeddings}, first {n:,} rows"
    quality = None
    if source.quality is not None:
        quality = np.asarray(np.load(source.quality, mmap_mode="r")[:n], dtype=np.float64)
    return X, records, quality, what
