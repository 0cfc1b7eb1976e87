"""Instruction records in and out: JSON Lines (plain or gzip), JSON arrays, Parquet and
Hugging Face ``datasets`` folders, any schema mapped to the canonical Alpaca or ShareGPT record.

* :mod:`~iterselect.io.formats` reads each format (and says which one a path is);
* :mod:`~iterselect.io.fields` maps other field names to the canonical ones (:class:`FieldMap`);
* :mod:`~iterselect.io.source` validates an input once and streams it (:func:`open_records`),
  or reads it whole (:func:`read_records`);
* :mod:`~iterselect.io.writing` writes the selection in the input's format, or the one the
  output's extension names; JSON Lines records are written back byte for byte.

Every malformed record is reported with its file and line (``errors="raise"``, the default), or
skipped and counted (``errors="skip"``); nothing is dropped silently.
"""
from __future__ import annotations

from .fields import FieldMap
from .formats import FORMATS, DataError, detect_format
from .source import RecordSource, Records, open_records, read_records
from .writing import Rows, output_format, write_jsonl, write_rows

__all__ = ["FORMATS", "DataError", "FieldMap", "RecordSource", "Records", "Rows", "detect_format",
           "open_records", "output_format", "read_records", "write_jsonl", "write_rows"]
