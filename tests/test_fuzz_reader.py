"""The record reader and the command line on hostile files: random bytes, truncated gzip, mixed
encodings. Every file is read, or refused with a :class:`DataError` that names it (the command
line: exit code 2 and one line); no other exception escapes, and a damaged file never reads as a
shorter one.

CI runs hypothesis's default budget (100 cases a test); ``pytest --hypothesis-profile fuzz
tests/test_fuzz_reader.py`` runs 5,000 (the profile is registered in conftest.py).
"""
from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iterselect import cli
from iterselect.io import DataError, read_records

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

RECORDS = [{"instruction": f"Q{i} é ü 中", "input": "", "output": "A" * (i % 5 + 1)} for i in range(40)]
TEXT = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS).encode("utf-8")
GZIPPED = gzip.compress(TEXT, mtime=0)


def _read(path, errors):
    try:
        return read_records(path, errors=errors)
    except DataError as exc:
        assert str(exc).startswith(str(path)), exc  # the message names the file
        return None


@FUZZ
@given(content=st.binary(max_size=3000), suffix=st.sampled_from([".jsonl", ".json", ".jsonl.gz"]),
       errors=st.sampled_from(["raise", "skip"]))
def test_random_bytes_read_or_are_refused_naming_the_file(tmp_path, content, suffix, errors):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    got = _read(path, errors)
    if got is not None:
        assert len(got.records) == len(got.raw) and all(isinstance(r, dict) for r in got.records)


@pytest.mark.parametrize("content", [b"[\x80", b'[{"instruction": "\xff"}]'])
def test_a_json_array_that_is_not_utf8_is_refused_naming_the_file(tmp_path, content):
    path = tmp_path / "data.json"
    path.write_bytes(content)  # hypothesis found b"[\x80", which escaped as UnicodeDecodeError
    for errors in ("raise", "skip"):
        with pytest.raises(DataError, match="not UTF-8"):
            read_records(path, errors=errors)


@FUZZ
@given(cut=st.integers(0, len(GZIPPED)))
def test_truncated_gzip_is_refused_never_read_short(tmp_path, cut):
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(GZIPPED[:cut])
    for errors in ("raise", "skip"):
        got = _read(path, errors)
        assert got is None or got.records == RECORDS  # all of it, or refused


@FUZZ
@given(lines=st.lists(st.tuples(st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"]),
                                st.sampled_from(RECORDS)), min_size=1, max_size=12))
def test_mixed_encodings_read_or_are_refused(tmp_path, lines):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode(enc, errors="replace")
                              for enc, r in lines))
    got = _read(path, "raise")
    if got is not None:  # it decoded as UTF-8: every line was a record
        assert len(got.records) == len(lines)


@FUZZ
@given(content=st.one_of(st.binary(max_size=2000),
                         st.integers(0, len(GZIPPED)).map(lambda k: GZIPPED[:k])),
       suffix=st.sampled_from([".jsonl", ".jsonl.gz"]))
def test_the_cli_answers_one_line_or_succeeds(tmp_path, capsys, content, suffix):
    path = tmp_path / f"in{suffix}"
    path.write_bytes(content)
    code = cli.main(["select", "random", "--budget", "1", "--input", str(path)])
    captured = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"iterselect: error: {path}")
    else:
        assert len(captured.out.splitlines()) == 1


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_file_in_another_encoding_is_refused_naming_it(tmp_path, encoding):
    path = tmp_path / "legacy.jsonl"
    path.write_bytes(TEXT.decode("utf-8").encode(encoding, errors="replace"))
    with pytest.raises(DataError, match=str(path)):
        read_records(path)
