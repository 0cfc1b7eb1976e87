"""Writing selected records: JSON Lines (plain or gzip), a JSON array, Parquet, or a datasets
folder, always atomically (readers see the old output or the complete new one).

Rows read from JSON Lines are written back byte for byte; rows read from Parquet or a datasets
folder keep their Arrow schema when written to Parquet or a datasets folder.
"""
from __future__ import annotations

import contextlib
import gzip
import io as _io
import json
from pathlib import Path

from .._files import atomic_directory, atomic_file

_SUFFIX_FORMATS = ((".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".json", "json"),
                   (".json.gz", "json"), (".parquet", "parquet"))


def _json_default(value):
    """Arrow values JSON has no type for: dates and times as ISO text, the rest as str."""
    iso = getattr(value, "isoformat", None)
    return iso() if iso is not None else str(value)


def dumps(obj) -> str:
    """One record as a line of JSON (UTF-8 kept as is)."""
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


class Rows:
    """Records as read, in a chosen order: JSON text (from JSON Lines and JSON inputs) or a
    ``pyarrow.Table`` (from Parquet and datasets folders)."""

    def __init__(self, lines=None, table=None):
        if (lines is None) == (table is None):
            raise ValueError("Rows holds either lines or a table")
        self._lines, self._table = lines, table

    def __len__(self) -> int:
        return len(self._lines) if self._lines is not None else self._table.num_rows

    def lines(self) -> list:
        """One JSON text a row (the line as read, for JSON Lines inputs)."""
        if self._lines is not None:
            return self._lines
        return [dumps(r) for r in self._table.to_pylist()]

    def dicts(self) -> list:
        if self._lines is not None:
            return [json.loads(s) for s in self._lines]
        return self._table.to_pylist()

    def table(self):
        """A ``pyarrow.Table`` (built from the JSON records when they were read as text)."""
        if self._table is not None:
            return self._table
        import pyarrow as pa

        try:
            return pa.Table.from_pylist(self.dicts())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"the records do not share one schema, so they cannot be written as "
                             f"a table ({exc}); write JSON Lines instead") from None

    @staticmethod
    def concat(parts: list) -> Rows:
        """Rows of several inputs, one after the other (a table when every part is a table of
        one schema, else JSON text)."""
        tables = [p._table for p in parts]
        if all(t is not None for t in tables) and len({t.schema for t in tables}) == 1:
            import pyarrow as pa

            return Rows(table=pa.concat_tables(tables))
        return Rows(lines=[s for p in parts for s in p.lines()])

    def reorder(self, order) -> Rows:
        if self._lines is not None:
            return Rows(lines=[self._lines[i] for i in order])
        return Rows(table=self._table.take(list(order)))


def output_format(path, input_format: str) -> str:
    """The format an output is written in: its extension's (``.jsonl``, ``.jsonl.gz``,
    ``.json``, ``.json.gz``, ``.parquet``), else the input's.

    Examples
    --------
    >>> from iterselect.io import output_format
    >>> output_format("picked.parquet", "jsonl"), output_format("picked", "datasets")
    ('parquet', 'datasets')
    """
    name = Path(path).name.lower()
    for suffix, fmt in _SUFFIX_FORMATS:
        if name.endswith(suffix):
            return fmt
    return input_format


def write_jsonl(lines, path) -> None:
    """Write JSON lines (dicts, or raw JSON strings kept verbatim) atomically: a temporary file
    in the same folder, renamed over ``path`` once complete; gzip when ``path`` ends in ``.gz``.

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect.io import read_records, write_jsonl
    >>> path = os.path.join(tempfile.mkdtemp(), "picked.jsonl")
    >>> write_jsonl([{"instruction": "Hi", "output": "Hello"}, '{"instruction": "Q", "output": "A"}'],
    ...             path)
    >>> [r["output"] for r in read_records(path).records]
    ['Hello', 'A']
    """
    with _text_out(path) as f:
        for item in lines:
            f.write(item if isinstance(item, str) else dumps(item))
            f.write("\n")


@contextlib.contextmanager
def _text_out(path):
    """An atomic UTF-8 text file, gzip-compressed when its name ends in .gz."""
    path = Path(path)
    with atomic_file(path, "wb") as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.suffix == ".gz" else None
        text = _io.TextIOWrapper(gz or raw, encoding="utf-8", newline="\n")
        yield text
        text.flush()
        text.detach()  # leave the file open for atomic_file to sync and rename
        if gz is not None:
            gz.close()


def write_rows(rows: Rows, path, fmt: str) -> None:
    """Write ``rows`` to ``path`` in ``fmt`` ("jsonl", "json", "parquet" or "datasets")."""
    if fmt == "jsonl":
        write_jsonl(rows.lines(), path)
    elif fmt == "json":
        with _text_out(path) as f:
            f.write("[\n" + ",\n".join(rows.lines()) + "\n]\n" if len(rows) else "[]\n")
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = rows.table()
        with atomic_file(path, "wb") as f:
            pq.write_table(table, f)
    elif fmt == "datasets":
        import datasets

        table = rows.table()
        bars_on = datasets.is_progress_bar_enabled()  # no bar for saving a selection
        datasets.disable_progress_bars()
        try:
            with atomic_directory(path) as folder:
                datasets.Dataset(table).save_to_disk(str(folder))
        finally:
            if bars_on:
                datasets.enable_progress_bars()
    else:
        raise ValueError(f"unknown output format {fmt!r}; expected one of jsonl, json, parquet, "
                         "datasets")
