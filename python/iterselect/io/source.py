"""Records from a file or folder, streamed: one validating pass up front, then as many passes
as the caller needs, and the selected rows at the end.

:func:`open_records` keeps only each record's position (8 bytes a record), so a million-record
file costs its text only while a pass is running. :func:`read_records` is the in-memory form
for small sets and for the methods that need every record at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_choice, check_int
from .fields import FieldMap
from .formats import DataError, open_reader
from .writing import Rows, dumps, output_format, write_rows


@dataclass(frozen=True)
class Records:
    """Records read from a file: the parsed dicts, their raw JSON text, and what was skipped."""

    records: list
    raw: list = field(repr=False)
    skipped: int = 0
    skipped_lines: tuple = ()

    def __len__(self) -> int:
        return len(self.records)


def _not_numeric(record: dict, numeric: tuple):
    """Why a record fails the ``numeric`` check (a field present but not a finite number)."""
    for f in numeric:
        v = record.get(f, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"{f!r} must be a finite number, got {v!r}"
    return None


class RecordSource:
    """A validated input, read again on demand (see :func:`open_records`).

    Attributes
    ----------
    path : Path
    format : str
        "jsonl", "json", "parquet" or "datasets": the format of the input, and of the selection
        written by :meth:`write` unless the output's extension names another.
    fields : FieldMap or None
        The mapping to canonical records (None: records are returned as read).
    skipped : int
        Records left out with ``errors="skip"``; ``skipped_lines`` says where they were.
    """

    def __init__(self, path, *, fields=None, errors="raise", required=(), numeric=(),
                 split=None, limit=None, _keep=False):
        func = "open_records"
        check_choice(errors, "errors", func, ("raise", "skip"))
        if fields is not None and not isinstance(fields, FieldMap):
            raise TypeError(f"The 'fields' parameter of {func} must be a FieldMap or None. Got "
                            f"{type(fields).__name__} instead.")
        limit = None if limit is None else check_int(limit, "limit", func, 1)
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file")
        if not (self.path.is_file() or self.path.is_dir()):
            raise DataError(f"{self.path}: is not a regular file or folder (a pipe?); the input "
                            "is read more than once, so save it to a file first")
        self.fields = fields
        self._reader = open_reader(self.path, split)
        self.format = self._reader.format
        self._scan(errors, tuple(required), tuple(numeric), limit, _keep)

    def _canonical(self, obj) -> dict:
        if self.fields is not None:
            return self.fields.canonical(obj)
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        return obj

    def _scan(self, errors, required, numeric, limit, keep) -> None:
        positions, skipped = [], []
        self._kept = ([], []) if keep else None
        try:
            for where, pos, obj, text, why in self._reader.scan():
                if why is None:
                    try:
                        record = self._canonical(obj)
                        missing = [f for f in required if f not in record]
                        if missing:
                            why = f"missing field(s) {', '.join(missing)}"
                        else:
                            why = _not_numeric(record, numeric)
                    except ValueError as exc:
                        why = str(exc)
                if why is not None:
                    if errors == "raise":
                        raise DataError(f"{self.path}:{where}: {why}")
                    skipped.append(where)
                    continue
                positions.append(pos)
                if keep:
                    self._kept[0].append(record)
                    self._kept[1].append(text if text is not None else dumps(obj))
                if limit is not None and len(positions) == limit:
                    break
        except (OSError, EOFError) as exc:
            raise DataError(f"{self.path}: cannot be read ({exc})") from None
        self._positions = np.asarray(positions, dtype=np.int64)
        self.skipped = len(skipped)
        self.skipped_lines = tuple(skipped)

    def __len__(self) -> int:
        return int(self._positions.size)

    def __iter__(self):
        """The records, in order, as canonical dicts (streamed from the file)."""
        if self._kept is not None:
            yield from self._kept[0]
            return
        try:
            for obj in self._reader.objects(self._positions):
                yield self._canonical(obj)
        except (OSError, EOFError) as exc:
            raise DataError(f"{self.path}: cannot be read ({exc})") from None

    def chunks(self, size: int, start: int = 0):
        """Yield lists of at most ``size`` records, from record ``start`` on."""
        size = check_int(size, "size", "RecordSource.chunks", 1)
        chunk, seen = [], 0
        for record in self:
            seen += 1
            if seen <= start:
                continue
            chunk.append(record)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def take(self, indices) -> Rows:
        """The records at ``indices`` (into this source, in that order) as read."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"record indices must be in [0, {len(self) - 1}]")
        return self._reader.take(self._positions[idx])

    def write(self, indices, output) -> str:
        """Write the records at ``indices`` (in that order) to ``output`` in the input's format,
        or the one ``output``'s extension names; returns the format written."""
        fmt = output_format(output, self.format)
        write_rows(self.take(indices), output, fmt)
        return fmt


def open_records(path, *, fields=None, errors="raise", required=(), numeric=(), split=None,
                 limit=None) -> RecordSource:
    """Open records for streaming: JSON Lines (``.jsonl``, ``.jsonl.gz``), a JSON array
    (``.json``), Parquet (``.parquet``) or a Hugging Face ``datasets`` folder.

    The input is read once here to validate every record and to note where it is; iterating
    the source reads it again, so memory holds one record (or one Arrow batch) at a time.

    Parameters
    ----------
    path : str or Path
    fields : FieldMap, optional
        Map each record to the canonical Alpaca or ShareGPT record (and reject records that are
        neither). None: records are returned as read (any JSON object).
    errors : {"raise", "skip"}
        "raise": the first malformed record raises :class:`DataError` naming ``file:line`` (or
        ``file:row N``). "skip": malformed records are left out, counted and listed.
    required : tuple of str
        Fields every record must have (after mapping).
    numeric : tuple of str
        Fields that must hold a finite number where present (e.g. a quality score).
    split : str, optional
        The split of a saved ``DatasetDict`` (default "train", else its only split).
    limit : int, optional
        Keep only the first ``limit`` valid records.

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect.io import FieldMap, open_records
    >>> p = os.path.join(tempfile.mkdtemp(), "d.jsonl")
    >>> _ = open(p, "w").write('{"q": "Add.", "a": "4"}\\n{"q": "Hi", "a": "Hello"}\\n')
    >>> src = open_records(p, fields=FieldMap(instruction="q", response="a"))
    >>> len(src), [r["output"] for r in src]
    (2, ['4', 'Hello'])
    >>> src.take([1]).lines()
    ['{"q": "Hi", "a": "Hello"}']
    """
    return RecordSource(path, fields=fields, errors=errors, required=required, numeric=numeric,
                        split=split, limit=limit)


def read_records(path, *, errors: str = "raise", required: tuple = (), numeric: tuple = (),
                 fields=None, split=None, limit=None) -> Records:
    """Read every record into memory (see :func:`open_records` for the parameters and formats).

    Returns
    -------
    Records
        ``records`` (dicts: canonical when ``fields`` is given), ``raw`` (each record's JSON
        text: the line as read for JSON Lines), ``skipped`` and ``skipped_lines``.

    Examples
    --------
    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "d.jsonl")
    >>> _ = open(p, "w").write('{"instruction": "hi", "output": "hello"}\\n{oops\\n')
    >>> read_records(p, errors="skip").skipped
    1
    """
    check_choice(errors, "errors", "read_records", ("raise", "skip"))
    src = RecordSource(path, fields=fields, errors=errors, required=required, numeric=numeric,
                       split=split, limit=limit, _keep=True)
    records, raw = src._kept
    return Records(records, raw, src.skipped, src.skipped_lines)

