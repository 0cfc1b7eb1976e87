"""Embeddings of a whole data set, streamed a chunk of records at a time into an array or a
memory-mapped ``.npy`` that survives a kill (``iterselect embed``).

The ``.npy`` is filled under a temporary name, ``OUTPUT.partial``, with a sidecar
``OUTPUT.partial.json`` that records how many rows are done (written after the rows are flushed
to disk). A run started again with ``resume=True`` checks that the sidecar describes the same
input, model and settings, and continues at the next chunk. Chunks always start at multiples of
``chunk_size`` and each is embedded on its own, so a resumed file equals an uninterrupted one.
When every row is written the file is renamed to ``OUTPUT``: a file under the final name is
complete.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._files import atomic_file
from .._validation import check_choice, check_int, param_error

DTYPES = ("float16", "float32")
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class EmbedFileResult:
    """What :func:`embed_to_npy` did.

    Attributes
    ----------
    path : Path
        The complete ``.npy``.
    shape : tuple
    dtype : str
    resumed_from : int
        Rows already done when this call started (0 for a fresh run).
    seconds : float
        Time spent embedding in this call.
    """

    path: Path
    shape: tuple
    dtype: str
    resumed_from: int
    seconds: float


def partial_paths(output) -> tuple[Path, Path]:
    """``(OUTPUT.partial, OUTPUT.partial.json)``: the file being filled and its sidecar."""
    output = Path(output)
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".partial.json")


def input_fingerprint(path) -> dict:
    """What identifies an input file or folder for a resume: its path, size and change time."""
    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [p.stat() for p in files]
    return {"path": str(path), "bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def embed_chunks(model, source, out, *, start=0, chunk_size=1024, batch_size=64, text=None,
                 on_chunk=None) -> None:
    """Embed the records of ``source`` from row ``start`` on into ``out[start:]``, a chunk at a
    time; ``on_chunk(rows_done)`` runs after each chunk is stored.

    ``model`` is a loaded sentence-transformers model; ``text`` turns a record into the text
    embedded (default :func:`iterselect.datasets.embedding_text`).
    """
    from ..datasets import embedding_text
    from .embeddings import embed_sentences

    text = text or embedding_text
    row = start
    for chunk in source.chunks(chunk_size, start=start):
        vectors = embed_sentences(model, [text(r) for r in chunk], batch_size=batch_size,
                                  progress=False).embeddings
        out[row:row + len(chunk)] = vectors
        row += len(chunk)
        if on_chunk is not None:
            on_chunk(row)


def _settings(source, model_name, dtype, chunk_size, batch_size) -> dict:
    return {"version": SIDECAR_VERSION, "input": input_fingerprint(source.path),
            "fields": None if source.fields is None else asdict(source.fields),
            "n_rows": len(source), "model": model_name, "dtype": dtype,
            "chunk_size": chunk_size, "batch_size": batch_size}


def _write_sidecar(path: Path, state: dict) -> None:
    with atomic_file(path) as f:
        json.dump(state, f, indent=1)


def _resume_state(func, sidecar: Path, data: Path, settings: dict) -> dict:
    try:
        state = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{func}: cannot resume: {sidecar} is unreadable ({exc}); start over "
                         "with overwrite=True (the CLI's --force)") from None
    changed = [k for k in settings if state.get(k) != settings[k]]
    if changed:
        raise ValueError(f"{func}: cannot resume: {', '.join(changed)} differ(s) from the "
                         f"interrupted run recorded in {sidecar}; start over with overwrite=True "
                         "(the CLI's --force)")
    if not data.exists():
        raise ValueError(f"{func}: cannot resume: {data} is missing; start over with "
                         "overwrite=True (the CLI's --force)")
    return state


def resume_point(source, output, *, model_name: str, dtype="float16", chunk_size=1024,
                 batch_size=64, resume=False, overwrite=False) -> int:
    """The row an :func:`embed_to_npy` call with these arguments starts at (0: from scratch;
    N: ``output`` is complete and ``resume`` is set), or the error it raises, found without
    loading the model or touching any file."""
    func = "embed_to_npy"
    check_choice(dtype, "dtype", func, DTYPES)
    check_int(chunk_size, "chunk_size", func, 1)
    check_int(batch_size, "batch_size", func, 1)
    if len(source) == 0:
        raise param_error(func, "source", "at least one record", "no records")
    output = Path(output)
    data, sidecar = partial_paths(output)
    started = data.exists() or sidecar.exists()
    if overwrite:
        return 0
    if resume and not started and output.exists():
        return len(source)
    if output.exists():
        raise FileExistsError(f"{output} exists; pass overwrite=True (the CLI's --force) to "
                              "replace it")
    if started and not resume:
        raise FileExistsError(f"{data} holds an interrupted run; pass resume=True (--resume) to "
                              "continue it, or overwrite=True (--force) to start over")
    if not started:
        return 0
    settings = _settings(source, model_name, dtype, chunk_size, batch_size)
    return int(_resume_state(func, sidecar, data, settings)["rows_done"])


def embed_to_npy(source, output, *, model=None, model_name=None, dtype="float16",
                 chunk_size=1024, batch_size=64, resume=False, overwrite=False,
                 progress=True) -> EmbedFileResult:
    """Embed every record of ``source`` into the ``.npy`` file ``output``, resumably.

    Parameters
    ----------
    source : RecordSource
        From :func:`iterselect.io.open_records`; streamed, never held whole.
    output : str or Path
        The ``.npy`` to write (N rows, one per record, in order).
    model : SentenceTransformer, str or None
        A loaded model, a local directory, or None for the bundled MiniLM.
    model_name : str, optional
        What identifies the model for a resume (default: the path, or "minilm").
    dtype : {"float16", "float32"}
        Storage type of the file (the model computes in float32).
    chunk_size : int
        Records embedded, written and recorded at a time: a kill loses at most one chunk.
    batch_size : int
        The model's batch size within a chunk.
    resume : bool
        Continue an interrupted run of the same input, model and settings.
    overwrite : bool
        Replace an existing ``output`` or an interrupted run instead of refusing.
    progress : bool
        A progress bar with records per second and the time left.

    Returns
    -------
    EmbedFileResult

    Examples
    --------
    >>> import json, os, tempfile, numpy as np
    >>> from iterselect.io import open_records
    >>> from iterselect.scoring.embed_file import embed_to_npy
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "d.jsonl"), "w") as f:
    ...     for q in ("a red apple", "a green apple", "tax law"):
    ...         _ = f.write(json.dumps({"instruction": q, "output": "ok"}) + "\\n")
    >>> r = embed_to_npy(open_records(os.path.join(d, "d.jsonl")), os.path.join(d, "e.npy"),
    ...                  chunk_size=2, progress=False)
    >>> r.shape, np.load(r.path, mmap_mode="r").dtype
    ((3, 384), dtype('float16'))
    """
    from .embeddings import load_sentence_model

    func = "embed_to_npy"
    output = Path(output)
    n = len(source)
    if model_name is None:
        model_name = model if isinstance(model, str) else "minilm"
    done = resume_point(source, output, model_name=model_name, dtype=dtype,
                        chunk_size=chunk_size, batch_size=batch_size, resume=resume,
                        overwrite=overwrite)
    if done == n and output.exists():
        return EmbedFileResult(output, np.load(output, mmap_mode="r").shape, dtype, n, 0.0)
    settings = _settings(source, model_name, dtype, chunk_size, batch_size)
    data, sidecar = partial_paths(output)
    if overwrite:
        for p in (data, sidecar):
            p.unlink(missing_ok=True)
    model = load_sentence_model(model)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=done, unit="rec", desc="embed", smoothing=0.1)
    out = None
    t0 = time.perf_counter()
    try:
        if done:
            out = np.lib.format.open_memmap(data, mode="r+")
        else:
            out = _create(model, data, n, dtype)
            _write_sidecar(sidecar, dict(settings, rows_done=0))

        def record(rows_done):
            out.flush()  # the rows reach the disk before the sidecar says they are done
            _write_sidecar(sidecar, dict(settings, rows_done=rows_done))
            if bar is not None:
                bar.update(rows_done - bar.n)

        embed_chunks(model, source, out, start=done, chunk_size=chunk_size,
                     batch_size=batch_size, on_chunk=record)
        out.flush()
    finally:
        if bar is not None:
            bar.close()
        del out
    os.replace(data, output)
    sidecar.unlink(missing_ok=True)
    return EmbedFileResult(output, (n, _dimension(output)), dtype, done, time.perf_counter() - t0)


def _create(model, path: Path, n: int, dtype: str):
    from .embeddings import embedding_dimension

    dim = embedding_dimension(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n, int(dim)))


def _dimension(path: Path) -> int:
    return int(np.load(path, mmap_mode="r").shape[1])
