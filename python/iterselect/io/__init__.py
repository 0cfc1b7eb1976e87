"""Load, validate and save instruction data sets (JSONL, JSONL.gz or a JSON array).

Every malformed record is reported with its file and line (``errors="raise"``, the default), or
skipped and counted (``errors="skip"``); nothing is dropped silently.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .._files import atomic_file
from .._validation import check_choice
from ..exceptions import DataError


@dataclass(frozen=True)
class Records:
    """Records read from a file: the parsed dicts, their raw JSON text, and what was skipped."""

    records: list
    raw: list = field(repr=False)
    skipped: int = 0
    skipped_lines: tuple = ()

    def __len__(self) -> int:
        return len(self.records)


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_records(path, *, errors: str = "raise", required: tuple = (), numeric: tuple = ()) -> Records:
    """Read instruction records from ``path`` (.jsonl, .jsonl.gz, .json or .json.gz).

    Parameters
    ----------
    path : str or Path
    errors : {"raise", "skip"}
        "raise": the first malformed record raises :class:`DataError` naming ``file:line``.
        "skip": malformed records are skipped, counted in ``skipped`` and listed by line.
    required : tuple of str
        Fields every record must have (e.g. ``("instruction", "output")``).
    numeric : tuple of str
        Fields that must hold a finite number where present (e.g. a quality score).

    Examples
    --------
    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "d.jsonl")
    >>> _ = open(p, "w").write('{"instruction": "hi", "output": "hello"}\\n{oops\\n')
    >>> read_records(p, errors="skip").skipped
    1
    """
    check_choice(errors, "errors", "read_records", ("raise", "skip"))
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    records, raw, skipped = [], [], []

    def bad(line_no, why):
        if errors == "raise":
            raise DataError(f"{path}:{line_no}: {why}")
        skipped.append(line_no)

    def accept(line_no, obj, text):
        if not isinstance(obj, dict):
            return bad(line_no, f"expected a JSON object, got {type(obj).__name__}")
        missing = [f for f in required if f not in obj]
        if missing:
            return bad(line_no, f"missing field(s) {', '.join(missing)}")
        for f in numeric:
            v = obj.get(f, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                return bad(line_no, f"{f!r} must be a finite number, got {v!r}")
        records.append(obj)
        raw.append(text)

    try:
        with _open_text(path) as f:
            if path.name.endswith((".json", ".json.gz")):
                try:
                    data = json.load(f)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
                if not isinstance(data, list):
                    raise DataError(f"{path}:1: expected a JSON array of records")
                for i, obj in enumerate(data):
                    accept(f"record {i}", obj, json.dumps(obj, ensure_ascii=False))
            else:
                for line_no, line in enumerate(f, 1):
                    text = line.rstrip("\n").rstrip("\r")
                    if not text.strip():
                        continue
                    try:
                        obj = json.loads(text)
                    except json.JSONDecodeError as exc:
                        bad(line_no, f"invalid JSON ({exc.msg} at column {exc.colno})")
                        continue
                    accept(line_no, obj, text)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot be read ({exc})") from None
    return Records(records, raw, len(skipped), tuple(skipped))


def write_jsonl(lines, path) -> None:
    """Write JSON lines (dicts, or raw JSON strings kept verbatim) atomically: a temporary file
    in the same folder, renamed over ``path`` once complete.

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
    with atomic_file(path) as f:
        for item in lines:
            f.write(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))
            f.write("\n")
