"""The `iterselect` command: output, and one clear line with exit code 2 on every bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from iterselect import cli, kcenter_greedy
from iterselect.datasets import dolly_embeddings, load_dolly


@pytest.fixture
def small_set(tmp_path):
    rng = np.random.default_rng(0)
    recs = [{"instruction": f"q{i}", "input": "", "output": f"a{i}", "extra": 1.50} for i in range(30)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    np.save(tmp_path / "e.npy", emb)
    return data, tmp_path / "e.npy", emb


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iterselect: error: "), err
    return err[0]


def test_select_from_file_writes_records_in_selection_order(small_set, tmp_path, capsys):
    data, emb_path, emb = small_set
    out = tmp_path / "out.jsonl"
    assert run_cli("select", "kcenter", "--budget", 5, "--input", data, "--embeddings", emb_path,
                   "--output", out, "--no-progress") == 0
    expected = kcenter_greedy(emb, 5, progress=False)
    lines = out.read_text().splitlines()
    source = data.read_text().splitlines()
    assert lines == [source[i] for i in expected.indices]  # unchanged, byte for byte
    assert f"{float(expected.radii[-1]):.6f}" in capsys.readouterr().out


def test_select_to_stdout(small_set, capsys):
    data, emb_path, _ = small_set
    assert run_cli("select", "kcenter", "--budget", 3, "--input", data, "--embeddings", emb_path, "--no-progress") == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    assert "covering radius" in captured.err


def test_bundled_dolly_with_shipped_embeddings(tmp_path, capsys):
    """Without --input the CLI selects from the bundled Dolly on the MiniLM embeddings shipped
    with the package."""
    out = tmp_path / "sel.jsonl"
    assert run_cli("select", "kcenter", "--budget", 20, "--output", out, "--no-progress") == 0
    picked = [json.loads(line) for line in out.read_text().splitlines()]
    idx = kcenter_greedy(dolly_embeddings(progress=False), 20, progress=False).indices
    dolly = load_dolly()
    assert picked == [dolly[i] for i in idx]


@pytest.mark.parametrize("argv, match", [
    (["select", "kcenter"], "--budget"),
    (["select", "kcenter", "--budget", "abc"], "invalid int"),
    (["select", "kmeans", "--budget", "3"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    (["select", "kcenter", "--budget", "3", "--input", "/nonexistent/x.jsonl"], "no such file"),
])
def test_usage_errors(argv, match, capsys):
    assert cli.main(argv) == 2
    assert match in one_error_line(capsys)


def test_budget_out_of_range(small_set, capsys):
    data, emb_path, _ = small_set
    for budget in (0, 31):
        assert run_cli("select", "kcenter", "--budget", budget, "--input", data, "--embeddings", emb_path) == 2
        assert "--budget must be between 1 and the number of records (30)" in one_error_line(capsys)


def test_malformed_line_is_named(small_set, capsys):
    data, emb_path, _ = small_set
    lines = data.read_text().splitlines()
    lines[2] = '{"instruction": "broken"'
    data.write_text("\n".join(lines) + "\n")
    assert run_cli("select", "kcenter", "--budget", 2, "--input", data, "--embeddings", emb_path) == 2
    assert f"{data}:3:" in one_error_line(capsys)


def test_non_object_record_is_named(small_set, capsys):
    data, emb_path, _ = small_set
    data.write_text(data.read_text() + "[1, 2]\n")
    assert run_cli("select", "kcenter", "--budget", 2, "--input", data, "--embeddings", emb_path) == 2
    assert f"{data}:31: expected a JSON object" in one_error_line(capsys)


def test_embedding_row_mismatch(small_set, tmp_path, capsys):
    data, _, emb = small_set
    np.save(tmp_path / "short.npy", emb[:20])
    assert run_cli("select", "kcenter", "--budget", 2, "--input", data, "--embeddings", tmp_path / "short.npy") == 2
    assert "has 20 rows but there are 30 records" in one_error_line(capsys)


def test_unreadable_embeddings(small_set, tmp_path, capsys):
    data, _, _ = small_set
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a numpy file")
    assert run_cli("select", "kcenter", "--budget", 2, "--input", data, "--embeddings", bad) == 2
    assert "cannot be read" in one_error_line(capsys)
    assert run_cli("select", "kcenter", "--budget", 2, "--input", data, "--embeddings", tmp_path / "none.npy") == 2
    assert "no such file" in one_error_line(capsys)


def test_nan_embeddings(small_set, tmp_path, capsys):
    data, _, emb = small_set
    emb = emb.copy()
    emb[4, 0] = np.nan
    np.save(tmp_path / "nan.npy", emb)
    assert run_cli("select", "kcenter", "--budget", 2, "--input", data, "--embeddings", tmp_path / "nan.npy") == 2
    assert "row 4" in one_error_line(capsys)


def test_input_is_a_directory(tmp_path, capsys):
    assert run_cli("select", "kcenter", "--budget", 2, "--input", tmp_path) == 2
    assert "is a directory" in one_error_line(capsys)


def test_console_script_exit_code(small_set):
    data, emb_path, _ = small_set
    proc = subprocess.run([sys.executable, "-m", "iterselect.cli", "select", "kcenter", "--budget", "99",
                           "--input", str(data), "--embeddings", str(emb_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--budget" in proc.stderr
