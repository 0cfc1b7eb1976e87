"""Readers, one per input format: JSON Lines (plain or gzip), a JSON array, Parquet, and a
Hugging Face ``datasets`` folder.

A reader does three things. ``scan()`` walks the file once and yields every record with where
it is (for error messages) and its position (a byte offset for JSON Lines, a row number
otherwise). ``objects(positions)`` walks it again and yields the records at those positions,
so a caller never has to hold them all. ``take(positions)`` returns just those rows, as read
(the JSON text of each line, or an Arrow table), for writing the selection out.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from .writing import Rows

FORMATS = ("jsonl", "json", "parquet", "datasets")
_BATCH_ROWS = 8192  # Arrow rows turned into Python objects at a time


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _first_char(path: Path) -> bytes:
    with _open_binary(path) as f:
        while True:
            block = f.read(4096)
            if not block:
                return b""
            stripped = block.lstrip()
            if stripped:
                return stripped[:1]


def detect_format(path) -> str:
    """The format of ``path``: "datasets" for a folder, "parquet" for ``.parquet``, "json" for a
    ``.json``/``.json.gz`` file that holds one JSON array, else "jsonl".

    A ``.json`` file that does not start with ``[`` is read as JSON Lines (``datasets``
    writes JSON Lines under that name).

    Examples
    --------
    >>> from iterselect.io import detect_format
    >>> detect_format("train.parquet"), detect_format("data.jsonl.gz")
    ('parquet', 'jsonl')
    """
    path = Path(path)
    if path.is_dir():
        return "datasets"
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".json", ".json.gz")):
        return "json" if not path.exists() or _first_char(path) == b"[" else "jsonl"
    return "jsonl"


def open_reader(path: Path, split: str | None):
    """The reader for ``path`` (which exists)."""
    fmt = detect_format(path)
    if split is not None and fmt != "datasets":
        raise DataError(f"{path}: a split applies to a datasets folder only, not to a {fmt} file")
    if fmt == "jsonl":
        return JsonLinesReader(path)
    if fmt == "json":
        return JsonArrayReader(path)
    if fmt == "parquet":
        return ParquetReader(path)
    return DatasetReader(path, split)


class JsonLinesReader:
    """One JSON object a line; blank lines are ignored. Positions are byte offsets."""

    format = "jsonl"

    def __init__(self, path: Path):
        self.path = path

    def scan(self):
        """Yield ``(line_no, offset, obj, text, why)``: ``why`` is the reason a line is bad."""
        offset = 0
        with _open_binary(self.path) as f:
            for line_no, line in enumerate(f, 1):
                start, offset = offset, offset + len(line)
                try:
                    text = line.decode("utf-8").rstrip("\n").rstrip("\r")
                except UnicodeDecodeError as exc:
                    yield line_no, start, None, None, f"cannot be read as UTF-8 ({exc.reason})"
                    continue
                if not text.strip():
                    continue
                try:
                    yield line_no, start, json.loads(text), text, None
                except json.JSONDecodeError as exc:
                    yield line_no, start, None, None, f"invalid JSON ({exc.msg} at column {exc.colno})"

    def objects(self, positions: np.ndarray):
        wanted = iter(positions.tolist())
        target = next(wanted, None)
        offset = 0
        with _open_binary(self.path) as f:
            for line in f:
                if target is None:
                    return
                if offset == target:
                    yield json.loads(line)
                    target = next(wanted, None)
                offset += len(line)

    def take(self, positions: np.ndarray) -> Rows:
        order = np.unique(positions)
        text = {}
        with _open_binary(self.path) as f:
            for pos in order.tolist():  # increasing offsets: one forward pass, even in gzip
                f.seek(pos)
                text[pos] = f.readline().decode("utf-8").rstrip("\n").rstrip("\r")
        return Rows(lines=[text[p] for p in positions.tolist()])


class JsonArrayReader:
    """A JSON array of records, parsed whole (JSON arrays cannot be streamed with the standard
    library; use JSON Lines or Parquet for large sets). Positions are array indices."""

    format = "json"

    def __init__(self, path: Path):
        self.path = path
        self._items = None

    def _load(self) -> list:
        if self._items is None:
            opener = gzip.open if _is_gzip(self.path) else open
            with opener(self.path, "rt", encoding="utf-8") as f:
                try:
                    data = json.load(f)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{self.path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
                except UnicodeDecodeError as exc:
                    raise DataError(f"{self.path}: not UTF-8 text (byte {exc.start}: "
                                    f"{exc.reason}); save the file as UTF-8") from None
            if not isinstance(data, list):
                raise DataError(f"{self.path}:1: expected a JSON array of records")
            self._items = data
        return self._items

    def scan(self):
        for i, obj in enumerate(self._load()):
            yield f"record {i}", i, obj, None, None

    def objects(self, positions: np.ndarray):
        items = self._load()
        for i in positions.tolist():
            yield items[i]

    def take(self, positions: np.ndarray) -> Rows:
        items = self._load()
        return Rows(lines=[json.dumps(items[i], ensure_ascii=False) for i in positions.tolist()])


def _require(module: str, what: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise DataError(f"{what} needs the {module.split('.')[0]} package: "
                        "pip install 'iterselect[io]'") from exc


class _ArrowReader:
    """Shared by Parquet files and datasets folders: rows come out of Arrow tables."""

    def _slices(self):
        """Yield ``(first_row, pyarrow.Table)`` over the whole input, in order."""
        raise NotImplementedError

    def scan(self):
        for start, table in self._slices():
            for i, obj in enumerate(table.to_pylist(), start):
                yield f"row {i}", i, obj, None, None

    def objects(self, positions: np.ndarray):
        everything = positions.size == self.num_rows
        for start, table in self._slices():
            if everything:
                yield from table.to_pylist()
                continue
            lo, hi = np.searchsorted(positions, [start, start + table.num_rows])
            if hi > lo:
                yield from table.take(positions[lo:hi] - start).to_pylist()


class ParquetReader(_ArrowReader):
    """A Parquet file, read a batch of rows at a time with pyarrow. Positions are row numbers."""

    format = "parquet"

    def __init__(self, path: Path):
        pq = _require("pyarrow.parquet", "Reading Parquet")
        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid and OSError subclasses
            raise DataError(f"{path}: cannot be read as Parquet ({exc})") from None
        meta = self._file.metadata
        self.num_rows = meta.num_rows
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._group_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def _slices(self):
        start = 0
        for batch in self._file.iter_batches(batch_size=_BATCH_ROWS):
            yield start, batch
            start += batch.num_rows

    def take(self, positions: np.ndarray) -> Rows:
        import pyarrow as pa

        order = np.unique(positions)
        groups = np.searchsorted(self._group_starts, order, side="right") - 1
        parts = []
        for g in np.unique(groups).tolist():  # one row group in memory at a time
            local = order[groups == g] - self._group_starts[g]
            parts.append(self._file.read_row_group(g).take(local))
        table = pa.concat_tables(parts) if parts else self._file.schema_arrow.empty_table()
        return Rows(table=table.take(np.searchsorted(order, positions)))


class DatasetReader(_ArrowReader):
    """A Hugging Face ``datasets`` folder: one written by ``save_to_disk`` (a Dataset, or a
    DatasetDict whose ``split`` is taken: "train" by default, else its only split), or a folder
    of Parquet or JSON files, loaded together as one split with
    ``datasets.load_dataset(..., data_files=...)``. Nothing is fetched over the network.
    Positions are row numbers."""

    format = "datasets"

    def __init__(self, path: Path, split: str | None):
        for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
            os.environ.setdefault(var, "1")
        ds = _require("datasets", "Reading a datasets folder")
        self.path = path
        try:
            if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
                loaded = ds.load_from_disk(str(path))
            else:
                loaded = self._load_files(ds, path)
        except DataError:
            raise
        except Exception as exc:  # datasets raises many types for a bad folder
            raise DataError(f"{path}: cannot be read as a datasets folder ({exc})") from None
        self.dataset = self._pick_split(loaded, split)
        self._arrow = self.dataset.with_format("arrow")
        self.num_rows = len(self.dataset)

    def _load_files(self, ds, path: Path):
        found = {}
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            name = f.name.lower()
            if name.endswith(".parquet"):
                found.setdefault("parquet", []).append(str(f))
            elif name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
                found.setdefault("json", []).append(str(f))
        if not found:
            raise DataError(f"{path}: is a directory with neither a datasets layout (save_to_disk) "
                            "nor data files (Parquet, JSON Lines)")
        if len(found) > 1:
            raise DataError(f"{path}: holds both Parquet and JSON data files; a datasets folder "
                            "holds one kind")
        (builder, files), = found.items()
        return ds.load_dataset(builder, data_files=files, split="train")

    def _pick_split(self, loaded, split):
        if not hasattr(loaded, "keys"):  # a Dataset
            if split not in (None, "train"):
                raise DataError(f"{self.path}: holds one split; --split {split} does not apply")
            return loaded
        names = list(loaded.keys())
        if split is None:
            split = "train" if "train" in names else (names[0] if len(names) == 1 else None)
        if split not in names:
            raise DataError(f"{self.path}: choose a split with --split (one of {', '.join(names)})")
        return loaded[split]

    def _slices(self):
        for start in range(0, self.num_rows, _BATCH_ROWS):
            yield start, self._arrow[start:start + _BATCH_ROWS]

    def take(self, positions: np.ndarray) -> Rows:
        return Rows(table=self._arrow[positions.tolist()])
