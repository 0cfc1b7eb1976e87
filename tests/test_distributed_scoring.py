"""Scoring and embedding on a local Ray cluster (two CPUs, two actors): the scores equal the
single-process engine's, for JSON Lines, Parquet, an in-memory list and a Ray Dataset, after a
driver killed midway and resumed, and with an actor killed midway (Ray retries its block).

Equality is to 1e-6 relative: a block is scored by the same engine function as the whole list,
but its batches hold other records, and matrix products over other shapes round differently
(about 1e-7 relative, measured). Embeddings are compared relative to each vector's largest
component (a component near zero has no meaningful relative error)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import require_module, subprocess_env

torch = require_module("torch", "torch", module_level=True)
ray = require_module("ray", "ray", module_level=True)
require_module("ray.data", "ray", module_level=True)
pq = require_module("pyarrow.parquet", "io", module_level=True)
psutil = require_module("psutil", "test", module_level=True)

from iterselect import cli  # noqa: E402
from iterselect.datasets import embedding_text  # noqa: E402
from iterselect.io import FieldMap  # noqa: E402
from iterselect.distributed import RayScorer, load_scores, score  # noqa: E402
from iterselect.distributed._score_output import MANIFEST, done_blocks, prepare  # noqa: E402
from iterselect.scoring import embed, ifd_scores, perplexity  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")

N, BLOCK = 240, 16  # 15 blocks
OPTIONS = {"max_length": 192}
ACTOR = "MapBatches(BlockScorer)"


@pytest.fixture(scope="module")
def cluster(hf_offline):
    """A real local Ray cluster of two CPUs (its workers inherit this process's environment, so
    they import the same iterselect)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def records(dolly_records):
    out = [dict(r, id=f"dolly-{i}") for i, r in enumerate(dolly_records)
           if len(r["instruction"]) + len(r["input"]) + len(r["output"]) < 400]
    return out[:N]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from iterselect.scoring.toy import toy_model_and_tokenizer

    model, tok = toy_model_and_tokenizer("llama")
    d = tmp_path_factory.mktemp("llama")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def loaded(model_dir):
    from iterselect.scoring import load_model, load_tokenizer

    return load_model(model_dir, device="cpu"), load_tokenizer(model_dir)


@pytest.fixture(scope="module")
def reference_ifd(loaded, records):
    return ifd_scores(*loaded, records, progress=False, **OPTIONS)


@pytest.fixture(scope="module")
def jsonl(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def assert_ifd_equal(got, ref):
    np.testing.assert_allclose(got.ifd, ref.ifd, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got.cond_loss, ref.cond_loss, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got.prior_loss, ref.prior_loss, rtol=1e-6, equal_nan=True)
    assert got.n_response_tokens.tolist() == ref.n_response_tokens.tolist()
    assert got.truncated.tolist() == ref.truncated.tolist()
    assert got.nan_indices.tolist() == ref.nan_indices.tolist()


def assert_embeddings_equal(got, ref):
    assert got.shape == ref.shape and got.dtype == np.float32
    scale = np.abs(ref).max(axis=1)
    assert (np.abs(got - ref).max(axis=1) <= 1e-6 * scale).all()


def actor_pids() -> set:
    """Our cluster's scoring actors (the Ray processes this test process started)."""
    pids = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if any(ACTOR in part for part in p.cmdline()):
                pids.add(p.pid)
        except psutil.Error:
            continue
    return pids


def wait_for(condition, what, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def parts(out: Path) -> int:
    return len(list(out.glob("part-*.parquet")))


# ----------------------------------------------------------------------------- on Ray


def test_cli_jsonl_ifd_on_two_actors_equals_one_process(cluster, model_dir, jsonl, records,
                                                        reference_ifd, tmp_path, capsys):
    out = tmp_path / "ifd"
    argv = ["score", "ifd", "--model", str(model_dir), "--input", str(jsonl), "--output",
            str(out), "--ray", cluster, "--actors", "2", "--block-size", str(BLOCK),
            "--max-length", str(OPTIONS["max_length"]), "--id-field", "id", "--no-progress"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert f"scored {N} records (ifd)" in capsys.readouterr().err
    result, ids = load_scores(out, return_ids=True)
    assert_ifd_equal(result, reference_ifd)
    assert ids.tolist() == [r["id"] for r in records]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] and parts(out) == -(-N // BLOCK)
    table = pq.read_table(out / "part-000001.parquet")
    assert table.column("row").to_pylist() == list(range(BLOCK, 2 * BLOCK))

    assert cli.main(argv) == 2  # an existing output needs --force (or --resume)
    assert "--force" in capsys.readouterr().err
    assert cli.main(argv + ["--resume"]) == 0  # complete: nothing left to score
    assert f"{-(-N // BLOCK)} of {-(-N // BLOCK)} blocks were done" in capsys.readouterr().err


def test_parquet_embeddings_with_an_actor_killed_midway(cluster, model_dir, loaded, records,
                                                        tmp_path):
    import pyarrow as pa

    path = tmp_path / "records.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    out = tmp_path / "emb"
    box = {}

    def job():
        try:
            box["run"] = score(path, "embeddings", model_dir, output=out, actors=2,
                               block_records=BLOCK, progress=False, **OPTIONS)
        except BaseException as exc:  # reported by the assertion below
            box["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    wait_for(lambda: parts(out) >= 2 and len(actor_pids()) == 2, "two busy actors")
    victim = min(actor_pids())
    os.kill(victim, signal.SIGKILL)
    assert parts(out) < -(-N // BLOCK), "the run ended before an actor could be killed"
    seen = set()
    while thread.is_alive():
        seen |= actor_pids()
        time.sleep(0.05)
    thread.join()
    assert "error" not in box, box.get("error")
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE
    assert seen - {victim}, "no actor was running after the kill"
    ref = embed(*loaded, [embedding_text(r) for r in records], progress=False, **OPTIONS)
    got = load_scores(out)
    assert_embeddings_equal(got.embeddings, ref.embeddings)
    assert got.n_tokens.tolist() == ref.n_tokens.tolist()
    assert done_blocks(out, N, BLOCK) == set(range(-(-N // BLOCK)))


def test_resume_after_the_driver_is_killed(cluster, model_dir, jsonl, reference_ifd, tmp_path):
    out = tmp_path / "ifd"
    env = subprocess_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "iterselect.cli", "score", "ifd", "--model", str(model_dir),
           "--input", str(jsonl), "--output", str(out), "--ray", cluster, "--actors", "2",
           "--block-size", str(BLOCK), "--max-length", str(OPTIONS["max_length"]),
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: parts(out) >= 1 or proc.poll() is not None, "the first block")
        assert proc.poll() is None, "the run ended early: " + proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.stderr.close()
    done_at_kill = len(done_blocks(out, N, BLOCK))
    n_blocks = -(-N // BLOCK)
    assert 1 <= done_at_kill < n_blocks
    assert not json.loads((out / MANIFEST).read_text())["complete"]

    # the settings the command used (it maps fields to the canonical records)
    common = dict(block_records=BLOCK, actors=2, fields=FieldMap(), progress=False, **OPTIONS)
    with pytest.raises(FileExistsError, match="resume=True"):
        score(jsonl, "ifd", model_dir, output=out, **common)
    with pytest.raises(ValueError, match="cannot resume: block_records differ"):
        score(jsonl, "ifd", model_dir, output=out, resume=True,
              **dict(common, block_records=BLOCK * 2))
    run = score(jsonl, "ifd", model_dir, output=out, resume=True, **common)
    # Blocks written after the driver died (by its actors, before Ray ended them) count too.
    assert done_at_kill <= run.blocks_done_before < n_blocks
    assert run.rows_scored == N - BLOCK * run.blocks_done_before  # N is a multiple of BLOCK
    assert_ifd_equal(run.result, reference_ifd)
    assert not list(out.glob(".part-*"))  # no half-written part left behind


def test_in_memory_model_objects_and_a_ray_dataset(cluster, loaded, records, reference_ifd,
                                                   tmp_path):
    model, tok = loaded
    pairs = [(f"Q{i}: {r['instruction']}\nA:", " " + r["output"]) for i, r in
             enumerate(records[:64])]
    run = score(pairs, "perplexity", model, tokenizer=tok, actors=2, block_records=BLOCK,
                progress=False, **OPTIONS)
    ref = perplexity(model, tok, pairs, progress=False, **OPTIONS)
    np.testing.assert_allclose(run.result.loss, ref.loss, rtol=1e-6)
    assert run.output is None and run.n_blocks == 4
    bad = pairs[:20] + [(pairs[20][0], " ")] + pairs[21:32]  # an empty response in block 1
    with pytest.raises(ValueError, match=r"records 16-31 of the input .* Record 4 .* empty"):
        score(bad, "perplexity", model, tokenizer=tok, actors=2, block_records=BLOCK,
              progress=False, **OPTIONS)

    ds = ray.data.from_items(records)
    out = tmp_path / "from_dataset"
    run = score(ds, "ifd", model, tokenizer=tok, output=out, id_field="id", actors=2,
                block_records=BLOCK * 4, progress=False, **OPTIONS)
    result, ids = load_scores(out, return_ids=True)
    assert_ifd_equal(result, reference_ifd)
    assert ids.tolist() == [r["id"] for r in records] and run.n_records == N


def test_diverse_evol_embeds_through_ray(cluster, tmp_path, capsys):
    base = ["run", "diverse-evol", "--model", "toy", "--limit", "60", "--budget", "5",
            "--rounds", "1", "--max-length", "64", "--no-progress"]
    assert cli.main(base + ["--run-dir", str(tmp_path / "local")]) == 0
    assert cli.main(base + ["--run-dir", str(tmp_path / "ray"), "--ray", cluster,
                            "--actors", "2"]) == 0, capsys.readouterr().err
    local = (tmp_path / "local" / "selection.jsonl").read_text()
    assert (tmp_path / "ray" / "selection.jsonl").read_text() == local


# ----------------------------------------------------------------------------- without Ray


class Recording:
    """A scorer that runs the local engine and notes what it was asked."""

    def __init__(self):
        import iterselect.scoring as engine

        self.engine, self.calls = engine, []

    def __getattr__(self, name):
        fn = getattr(self.engine, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return fn(*args, **kwargs)
        return call


def test_methods_score_through_their_scorer(loaded, records):
    from iterselect.methods import IterativeKMQ, IterIT

    model, tok = loaded
    rec = Recording()
    ifd = IterIT(2, 1, scorer=rec, progress=False)._ifd(model, tok, records[:8])
    np.testing.assert_array_equal(ifd, ifd_scores(model, tok, records[:8], progress=False).ifd)
    kmq = IterativeKMQ(4, 2, 2, max_new_tokens=4, scorer=rec, progress=False)
    kmq.generate_step(model, tok, records[:3])
    kmq.score_step(model, tok, records[:3], ["an answer", "another", "a third"])
    assert rec.calls == ["ifd_scores", "generate", "perplexity", "perplexity"]
    assert RayScorer(actors=3).actors == 3


def test_errors_before_any_work(model_dir, jsonl, tmp_path):
    with pytest.raises(ValueError, match="'what' parameter of score"):
        score(jsonl, "bleu", model_dir)
    with pytest.raises(TypeError, match="does not take; it takes"):
        score(jsonl, "ifd", model_dir, pooling="mean")
    with pytest.raises(ValueError, match="'output' parameter"):
        score(jsonl, "ifd", model_dir, output=jsonl.parent)  # the folder holding the input
    with pytest.raises(ValueError, match="'actors' parameter"):
        score(jsonl, "ifd", model_dir, actors=0)
    with pytest.raises(ValueError, match="'gpus_per_actor' parameter"):
        score(jsonl, "ifd", model_dir, gpus_per_actor=-1)
    with pytest.raises(TypeError, match="'tokenizer' parameter"):
        score(["x"], "embeddings", torch.nn.Linear(2, 2))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="something else"):
        score(jsonl, "ifd", model_dir, output=busy)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is a file"):
        score(jsonl, "ifd", model_dir, output=tmp_path / "file")


def test_overwrite_removes_only_the_runs_own_files(tmp_path):
    settings = {"what": "ifd", "n_records": 10, "block_records": 4}
    out = tmp_path / "out"
    assert prepare(out, settings, resume=False, overwrite=False, func="t") == set()
    (out / "part-000000.parquet").write_text("not parquet")
    (out / ".part-000001.parquet.tmp123").write_text("")
    (out / "keep.txt").write_text("")
    assert prepare(out, settings, resume=True, overwrite=False, func="t") == set()  # damaged
    assert not (out / ".part-000001.parquet.tmp123").exists()
    prepare(out, settings, resume=False, overwrite=True, func="t")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "keep.txt"]
    with pytest.raises(ValueError, match="is not complete"):
        load_scores(out)


def test_cli_score_errors(jsonl, model_dir, tmp_path, capsys):
    assert cli.main(["score", "ifd", "--model", str(model_dir), "--input", str(jsonl),
                     "--output", str(jsonl)]) == 2
    assert "is the same file as --input" in capsys.readouterr().err
    assert cli.main(["score", "ifd", "--model", str(model_dir), "--input", str(jsonl),
                     "--output", str(tmp_path / "o"), "--pooling", "mean"]) == 2
    assert "pooling" in capsys.readouterr().err
