"""What runs on the Ray actors: one model replica each, loaded once, calling the single-process
engine of :mod:`iterselect.scoring` on a block of records at a time.

:class:`BlockScorer` takes one block a call (a row holding the block's records) and writes its
Parquet part itself, atomically, so blocks are written in parallel and a block is either done or
not. :class:`RecordScorer` maps rows that are records (a user's Ray Dataset) to their scores.
"""
from __future__ import annotations

import os
import pickle
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ._score_kinds import get_kind


@dataclass(frozen=True)
class ModelSpec:
    """How an actor gets its replica: a path it loads, or a reference into Ray's object store
    (a model object put there once by the driver)."""

    what: str
    model: object
    tokenizer: object
    options: dict
    device: str = "cpu"
    threads: int | None = None


def _resolve(value):
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


def load_replica(spec: ModelSpec):
    """``(model, tokenizer)`` on the actor's device (tokenizer None for sentence models)."""
    from ..scoring import load_model, load_tokenizer
    from ..scoring.embeddings import load_sentence_model

    kind = get_kind(spec.what, "score")
    model, tokenizer = _resolve(spec.model), _resolve(spec.tokenizer)
    if kind.task is None:
        return load_sentence_model(model, device=spec.device), None
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, task=kind.task, device=spec.device)
    else:
        model = model.to(spec.device).eval()
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer if tokenizer is not None else _resolve(spec.model))
    return model, tokenizer


class _Replica:
    def __init__(self, spec: ModelSpec):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per replica's load would flood the driver
        if spec.threads:
            import torch

            torch.set_num_threads(spec.threads)
        self.kind = get_kind(spec.what, "score")
        self.options = spec.options
        self.model, self.tokenizer = load_replica(spec)

    def columns(self, items, start: int) -> dict:
        from ..exceptions import ScoringWarning

        try:
            with warnings.catch_warnings():  # NaN scores are counted by the driver
                warnings.simplefilter("ignore", ScoringWarning)
                result = self.kind.run(self.model, self.tokenizer, items, self.options)
        except (ValueError, TypeError) as exc:
            kind = ValueError if isinstance(exc, ValueError) else TypeError
            raise kind(f"records {start}-{start + len(items) - 1} of the input (an index in this "
                       f"message counts from {start}): {exc}") from None
        return self.kind.columns(result)


class BlockScorer(_Replica):
    """Score one block a call; write its part when there is an output folder, else send the
    columns back to the driver."""

    def __init__(self, spec: ModelSpec, output: str | None):
        super().__init__(spec)
        self.output = output

    def __call__(self, batch: dict) -> dict:
        from ._score_output import write_part

        block, start = int(batch["block"][0]), int(batch["start"][0])
        items = pickle.loads(batch["items"][0])
        ids = pickle.loads(batch["ids"][0])
        t0 = time.perf_counter()
        try:
            columns = self.columns(items, start)
        except (ValueError, TypeError) as exc:  # a bad record: the driver raises it as it is
            return self._summary(block, 0, 0.0, 0.0, b"", f"{type(exc).__name__}:{exc}")
        t1 = time.perf_counter()
        payload = b""
        if self.output is None:
            payload = pickle.dumps((columns, ids), protocol=pickle.HIGHEST_PROTOCOL)
        else:
            write_part(self.output, block, start, columns, ids)
        return self._summary(block, len(items), t1 - t0, time.perf_counter() - t1, payload, "")

    @staticmethod
    def _summary(block, rows, seconds, write_seconds, payload, error) -> dict:
        return {"block": np.array([block]), "rows": np.array([rows]),
                "seconds": np.array([seconds]), "write_seconds": np.array([write_seconds]),
                "pid": np.array([os.getpid()]), "payload": np.array([payload], dtype=object),
                "error": np.array([error], dtype=object)}


class RecordScorer(_Replica):
    """Map a batch of record rows to their score columns (with the ``id_field`` column kept)."""

    def __init__(self, spec: ModelSpec, fields, id_field: str | None):
        super().__init__(spec)
        self.fields = fields
        self.id_field = id_field

    def __call__(self, table) -> dict:
        records = table.to_pylist()
        items = records if self.fields is None else [self.fields.canonical(r) for r in records]
        columns = self.columns(items, 0)
        if self.id_field is not None:
            columns = {"id": np.asarray([str(r[self.id_field]) for r in records], dtype=object),
                       **columns}
        return columns
