"""Data loading: bundled Dolly, file:line errors, counted skips, atomic writes."""
from __future__ import annotations

import gzip
import json

import pytest

from iterselect.io import DataError, read_records, write_jsonl
from iterselect.datasets import dolly_path, embedding_text, load_dolly

from conftest import DOLLY_EMBEDDINGS, needs_minilm, shared_file


def test_bundled_dolly_equals_the_shared_copy():
    rows = load_dolly()
    assert len(rows) == 15015
    with gzip.open(shared_file("dolly_15k.jsonl.gz"), "rt", encoding="utf-8") as f:
        shared = [json.loads(line) for line in f]
    assert rows == shared
    assert (dolly_path().parent / "DOLLY_LICENSE.md").exists()


def test_embedding_text_recipe():
    r = {"instruction": "a", "input": "b", "output": "c" * 5000}
    t = embedding_text(r)
    assert t.startswith("a\nb\nccc") and len(t) == 2000


def test_json_array_and_required_fields(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps([{"instruction": "x", "output": "y"}, {"instruction": "z"}]))
    with pytest.raises(DataError, match=r"record 1: missing field\(s\) output"):
        read_records(p, required=("instruction", "output"))
    r = read_records(p, required=("instruction", "output"), errors="skip")
    assert len(r) == 1 and r.skipped == 1


def test_skip_counts_and_lists_lines(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\nnot json\n\n[3]\n{"b": 2}\n')
    r = read_records(p, errors="skip")
    assert [x for x in r.records] == [{"a": 1}, {"b": 2}]
    assert r.skipped == 2 and r.skipped_lines == (2, 4)
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON"):
        read_records(p)


def test_bad_errors_argument(tmp_path):
    with pytest.raises(ValueError, match="'errors' parameter of read_records"):
        read_records(tmp_path / "x.jsonl", errors="ignore")


def test_invalid_utf8_is_reported(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"a": "\xff\xfe"}\n')
    with pytest.raises(DataError, match="cannot be read"):
        read_records(p)


def test_write_jsonl_is_atomic_and_verbatim(tmp_path):
    p = tmp_path / "o.jsonl"
    write_jsonl(['{"x": 1.50}', {"y": "é"}], p)
    assert p.read_text(encoding="utf-8") == '{"x": 1.50}\n{"y": "é"}\n'
    assert [f.name for f in tmp_path.iterdir()] == ["o.jsonl"]  # no temporary left behind


@needs_minilm
def test_minilm_embeddings_follow_the_shipped_recipe(dolly_embeddings):
    """The bundled default embedder reproduces the embeddings the tests use (same model, same
    text): the first rows of tests/data/dolly_minilm_3000.npy."""
    import numpy as np

    from iterselect.datasets import minilm_embeddings

    shipped = dolly_embeddings[:6].astype(np.float32)
    ours = minilm_embeddings([embedding_text(r) for r in load_dolly()[:6]], progress=False)
    assert ours.shape == (6, 384)
    np.testing.assert_allclose(ours, shipped, atol=2e-3)  # float16 storage of the shipped copy


def test_shipped_embeddings_are_the_shared_ones():
    """tests/data/dolly_minilm_3000.npy is the first 3,000 rows of the shared MiniLM embeddings
    of Dolly, bit for bit."""
    import numpy as np

    shared = np.load(shared_file("embeddings", "dolly_15k_minilm.npy"), mmap_mode="r")[:3000]
    np.testing.assert_array_equal(np.load(DOLLY_EMBEDDINGS), shared)


def test_read_records_checks_numeric_fields(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"q": 1.5}\n{"q": "high"}\n{"q": NaN}\n{"q": true}\n{"other": 1}\n')
    with pytest.raises(DataError, match=f"{p}:2: 'q' must be a finite number, got 'high'"):
        read_records(p, numeric=("q",))
    r = read_records(p, numeric=("q",), errors="skip")
    assert r.skipped_lines == (2, 3, 4) and len(r) == 2


def test_dolly_embeddings_are_shipped_and_are_the_shared_ones():
    """The package ships Dolly's MiniLM embeddings: the shared copy bit for bit, whose first
    3,000 rows are tests/data's."""
    import numpy as np

    from iterselect import datasets

    emb = datasets.dolly_embeddings(progress=False)
    assert emb.shape == (datasets.DOLLY_ROWS, 384) and emb.dtype == np.float16
    assert datasets.dolly_embeddings_cached()
    np.testing.assert_array_equal(emb[:3000], np.load(DOLLY_EMBEDDINGS))
    np.testing.assert_array_equal(emb, np.load(shared_file("embeddings", "dolly_15k_minilm.npy")))


def test_dolly_embeddings_refresh_computes_and_caches(tmp_path, monkeypatch):
    import numpy as np

    from iterselect import datasets

    monkeypatch.setenv("ITERSELECT_CACHE", str(tmp_path))
    calls = []

    def fake_embed(texts, *, batch_size=64, progress=True):
        calls.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setattr(datasets, "minilm_embeddings", fake_embed)
    first = datasets.dolly_embeddings(progress=False, refresh=True)
    assert calls == [15015] and first.dtype == np.float16
    assert (tmp_path / "dolly_15k_minilm.npy").exists()
    # a package without the shipped copy finds the recomputed one in the cache
    monkeypatch.setattr(datasets, "shipped_embeddings_path", lambda: tmp_path / "absent.npz")
    second = datasets.dolly_embeddings(progress=False)
    assert calls == [15015]
    np.testing.assert_array_equal(first, second)


def test_atomic_file_keeps_the_old_file_on_error(tmp_path):
    from iterselect._files import atomic_file

    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(path) as f:
            f.write("half of the new")
            raise RuntimeError("boom")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temporary left
    with atomic_file(path, "wb") as f:
        f.write(b"new\n")
    assert path.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
