"""Records in and out: every format round trip through the CLI (JSON Lines, JSON, Parquet,
datasets folders; Alpaca and ShareGPT schemas), field mapping, streaming."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import tracemalloc

import numpy as np
import pytest

from conftest import require_module

from iterselect import cli
from iterselect.io import (DataError, FieldMap, Rows, detect_format, open_records, output_format,
                           read_records)

pa = require_module("pyarrow", "io", module_level=True)
pq = require_module("pyarrow.parquet", "io", module_level=True)

ALPACA = [{"instruction": f"q{i}", "input": "" if i % 3 else f"ctx {i}", "output": "x" * (i % 7),
           "score": i * 0.5} for i in range(40)]
SHAREGPT = [{"conversations": [{"from": "human", "value": f"hi {i}"},
                               {"from": "gpt", "value": "y" * ((i * 5) % 11)}], "id": f"c{i}"}
            for i in range(25)]
# the records the selections below must pick, in order
LONGEST_ALPACA = [6, 13, 20, 27, 34]
LONGEST_SHAREGPT = sorted(range(25), key=lambda i: (-((i * 5) % 11), i))[:5]


def cli_run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def write_input(records, path, fmt):
    if fmt == "jsonl":
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "json":
        path.write_text(json.dumps(records, indent=1))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        datasets = require_module("datasets", "io")
        datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


def read_output(path, fmt):
    if fmt == "jsonl":
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    if fmt == "json":
        return json.loads(path.read_text())
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    import datasets

    return datasets.load_from_disk(str(path)).to_list()


INPUTS = [("jsonl", "d.jsonl"), ("jsonl", "d.jsonl.gz"), ("json", "d.json"),
          ("parquet", "d.parquet"), ("datasets", "d_folder")]


@pytest.mark.parametrize("schema", ["alpaca", "sharegpt"])
@pytest.mark.parametrize("fmt, name", INPUTS)
def test_round_trip_in_the_input_format(tmp_path, fmt, name, schema):
    records, expected = (ALPACA, LONGEST_ALPACA) if schema == "alpaca" else (SHAREGPT, LONGEST_SHAREGPT)
    src = write_input(records, tmp_path / name, fmt)
    out = tmp_path / ("picked" + (".jsonl.gz" if name.endswith(".gz") else ""))
    rc, _, err = cli_run("select", "longest", "--budget", 5, "--input", src, "--output", out)
    assert rc == 0, err
    assert detect_format(src) == fmt
    assert read_output(out, fmt) == [records[i] for i in expected]
    if fmt == "parquet":  # the Arrow schema is kept
        assert pq.read_schema(out).equals(pq.read_schema(src), check_metadata=False)


@pytest.mark.parametrize("fmt, name", INPUTS)
@pytest.mark.parametrize("out_name, out_fmt", [("o.jsonl", "jsonl"), ("o.parquet", "parquet"),
                                               ("o.json", "json")])
def test_the_output_extension_chooses_the_format(tmp_path, fmt, name, out_name, out_fmt):
    src = write_input(ALPACA, tmp_path / name, fmt)
    rc, _, err = cli_run("select", "longest", "--budget", 5, "--input", src, "--output", tmp_path / out_name)
    assert rc == 0, err
    assert read_output(tmp_path / out_name, out_fmt) == [ALPACA[i] for i in LONGEST_ALPACA]


def test_jsonl_is_kept_byte_for_byte(tmp_path):
    lines = ['{"instruction": "q%d",  "output": "%s", "n": 1.50, "u": "\\u00e9t\\u00e9"}' % (i, "x" * (i % 7))
             for i in range(30)]
    src = tmp_path / "d.jsonl"
    src.write_bytes(("\r\n".join(lines) + "\r\n").encode())  # CRLF and escapes as written
    rc, out, err = cli_run("select", "longest", "--budget", 4, "--input", src)
    assert rc == 0, err
    assert out.splitlines() == [lines[i] for i in (6, 13, 20, 27)]
    for name in ("o.jsonl", "o.jsonl.gz"):
        cli_run("select", "longest", "--budget", 4, "--input", src, "--output", tmp_path / name)
        data = (tmp_path / name).read_bytes()
        data = gzip.decompress(data) if name.endswith(".gz") else data
        assert data.decode().splitlines() == [lines[i] for i in (6, 13, 20, 27)]


def test_field_flags_map_other_schemas(tmp_path):
    records = [{"prompt": f"q{i}", "context": None, "completion": "x" * (i % 7), "id": i} for i in range(20)]
    src = write_input(records, tmp_path / "d.parquet", "parquet")
    rc, _, err = cli_run("select", "longest", "--budget", 2, "--input", src)
    assert rc == 2 and "d.parquet:row 0: missing field(s) 'instruction', 'output'" in err
    assert "--instruction-field" in err
    rc, out, err = cli_run("select", "longest", "--budget", 2, "--input", src, "--instruction-field", "prompt",
                           "--input-field", "context", "--response-field", "completion")
    assert rc == 0, err
    assert [json.loads(x)["id"] for x in out.splitlines()] == [6, 13]  # the records as read
    got = read_records(src, fields=FieldMap(instruction="prompt", input="context", response="completion"))
    assert got.records[0] == {"instruction": "q0", "input": "", "output": "", "id": 0}
    turns = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b" * i}]}
             for i in range(5)]
    src = write_input(turns, tmp_path / "t.jsonl", "jsonl")
    rc, out, err = cli_run("select", "longest", "--budget", 1, "--input", src, "--conversations-field", "messages")
    assert rc == 0, err
    assert json.loads(out) == turns[4]
    assert read_records(src, fields=FieldMap(conversations="messages")).records[4] == {
        "conversations": turns[4]["messages"]}


def test_sharegpt_turns_are_checked(tmp_path):
    src = write_input([{"conversations": [{"from": "human"}]}], tmp_path / "t.jsonl", "jsonl")
    with pytest.raises(DataError, match=r"t.jsonl:1: turn 0 of 'conversations' needs string"):
        read_records(src, fields=FieldMap())


def test_datasets_dict_split_and_data_files_folder(tmp_path):
    datasets = require_module("datasets", "io")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(ALPACA[:30]),
                               "test": datasets.Dataset.from_list(ALPACA[30:])})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(open_records(tmp_path / "dd")) == 30
    assert [r["instruction"] for r in open_records(tmp_path / "dd", split="test")][:2] == ["q30", "q31"]
    with pytest.raises(DataError, match="one of train, test"):
        open_records(tmp_path / "dd", split="validation")
    write_input(ALPACA, tmp_path / "d.jsonl", "jsonl")
    with pytest.raises(DataError, match="a split applies to a datasets folder only"):
        open_records(tmp_path / "d.jsonl", split="train")
    files = tmp_path / "files" / "data"
    files.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ALPACA[:20]), files / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(ALPACA[20:]), files / "train-00001-of-00002.parquet")
    src = open_records(tmp_path / "files", fields=FieldMap())
    assert src.format == "datasets" and [r["instruction"] for r in src] == [r["instruction"] for r in ALPACA]
    out = tmp_path / "picked"
    assert src.write([35, 2], out) == "datasets"
    assert datasets.load_from_disk(str(out)).to_list() == [ALPACA[35], ALPACA[2]]
    (files / "extra.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="both Parquet and JSON"):
        open_records(tmp_path / "files")


def test_errors_name_the_place_and_skips_are_counted(tmp_path):
    src = tmp_path / "d.json"
    src.write_text('{"instruction": "a", "output": "b"}\n{"oops"\n')  # JSON Lines under .json
    assert detect_format(src) == "jsonl"
    with pytest.raises(DataError, match=r"d.json:2: invalid JSON"):
        read_records(src)
    r = read_records(src, errors="skip", fields=FieldMap())
    assert len(r) == 1 and r.skipped_lines == (2,)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        open_records(bad)
    rows = [{"instruction": "a", "output": "b"}, {"instruction": 3, "output": "b"}]
    write_input(rows, tmp_path / "mixed.jsonl", "jsonl")
    with pytest.raises(DataError, match=r"mixed.jsonl:2: field 'instruction' must be a string"):
        open_records(tmp_path / "mixed.jsonl", fields=FieldMap())
    src = open_records(tmp_path / "mixed.jsonl", fields=FieldMap(), errors="skip")
    assert len(src) == 1 and src.skipped == 1


def test_a_source_streams_and_takes_rows_by_position(tmp_path):
    src_path = write_input(ALPACA, tmp_path / "d.jsonl.gz", "jsonl")
    src = open_records(src_path, fields=FieldMap(), limit=30)
    assert len(src) == 30 and src._kept is None  # positions only
    assert list(src) == list(src)  # every pass reads the file again
    assert [len(c) for c in src.chunks(8, start=5)] == [8, 8, 8, 1]
    assert [json.loads(x)["instruction"] for x in src.take([29, 0, 7]).lines()] == ["q29", "q0", "q7"]
    with pytest.raises(IndexError):
        src.take([30])


def test_output_format_and_rows():
    assert output_format("a.JSONL.GZ", "parquet") == "jsonl"
    assert output_format("a.txt", "parquet") == "parquet"
    rows = Rows.concat([Rows(lines=['{"a": 1}']), Rows(table=pa.Table.from_pylist([{"a": 2}]))])
    assert rows.dicts() == [{"a": 1}, {"a": 2}] and rows.reorder([1, 0]).dicts() == [{"a": 2}, {"a": 1}]
    with pytest.raises(ValueError, match="one schema"):
        Rows(lines=['{"a": 1}', '{"a": "x"}']).table()


def test_the_cli_holds_positions_not_records(tmp_path):
    """A selection from a file with precomputed embeddings keeps the records' positions and the
    selected rows only: its peak of Python allocations is a small part of the parsed records'."""
    n = 20000
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"question {i} " * 8, "input": "", "output": "answer " * 40}) + "\n")
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32))
    tracemalloc.start()
    records = read_records(src)
    held = tracemalloc.get_traced_memory()[0]
    del records
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    rc, out, err = cli_run("select", "kcenter", "--budget", 10, "--input", src, "--embeddings", emb,
                           "--no-progress")
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert rc == 0, err
    assert len(out.splitlines()) == 10
    assert peak < held / 10, (peak, held)
