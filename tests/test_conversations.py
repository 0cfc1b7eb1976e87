"""Conversation data (ShareGPT / WizardLM ``conversations``, ``messages``) through every path:
one function gives each use its text, and every method and baseline runs on a conversation
file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require_module

from iterselect import cli
from iterselect.datasets import embedding_text
from iterselect.methods.baselines import instruction_text, response_text
from iterselect.scoring import record_text

ALPACA = {"instruction": "Add.", "input": "2+2", "output": "4"}
SHAREGPT = {"conversations": [{"from": "system", "value": "Be brief."},
                              {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                              {"from": "human", "value": "Color?"}, {"from": "gpt", "value": "Blue."}]}
MESSAGES = {"messages": [{"role": "user", "content": "Capital of France?"},
                         {"role": "assistant", "content": "Paris."}]}
PAIR = ("Q: 1+1?", " 2")


def test_record_text_for_every_kind_and_use():
    assert record_text(ALPACA) == "Add.\n2+2\n4" == embedding_text(ALPACA)
    assert record_text(SHAREGPT) == "Be brief.\nHi\nHello!\nColor?\nBlue."
    assert record_text(SHAREGPT, "response") == "Hello!\nBlue." == response_text(SHAREGPT)
    assert record_text(SHAREGPT, "prompt") == "Be brief.\nHi\nColor?"
    assert record_text(MESSAGES) == "Capital of France?\nParis."
    assert record_text(MESSAGES, "response") == "Paris."
    assert record_text(PAIR) == "Q: 1+1?\n 2" and record_text(PAIR, "response") == " 2"
    assert record_text(ALPACA, "prompt") == "Add.\n2+2"
    assert record_text(MESSAGES, "example").endswith(
        "### Instruction:\nCapital of France?\n\n### Response:\nParis.")
    assert embedding_text({"conversations": [{"from": "human", "value": "x" * 3000}]}) == "x" * 2000
    with pytest.raises(ValueError, match="'use' parameter of record_text"):
        record_text(ALPACA, "tfidf")


def test_messages_records_format_like_conversations():
    from iterselect.scoring import format_examples

    a = format_examples([MESSAGES])[0]
    b = format_examples([{"conversations": [{"from": "human", "value": "Capital of France?"},
                                            {"from": "gpt", "value": "Paris."}]}])[0]
    assert a.segments == b.segments


def _conversation_file(tmp_path, n=40, quality=False, name="chat.jsonl"):
    from iterselect.datasets import load_dolly

    rows = []
    for i, r in enumerate(load_dolly()[:n]):
        user = r["instruction"] + (f"\n\n{r['input']}" if r["input"] else "")
        turns = [{"from": "human", "value": user[:300]}, {"from": "gpt", "value": r["output"][:300]}]
        if i % 3 == 0:  # some multi-turn
            turns += [{"from": "human", "value": "Say it shorter."},
                      {"from": "gpt", "value": r["output"][:40] or "ok"}]
        row = {"id": f"c{i}", "conversations": turns}
        if quality:
            row["quality"] = float(i % 5) / 4
        rows.append(row)
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


@pytest.fixture()
def seen_texts(monkeypatch):
    """MiniLM stand-in: records what is embedded (a hash-seeded vector per text), wherever the
    command embeds (the sentence model under iterselect.jobs and iterselect.datasets)."""
    from iterselect.scoring.embeddings import EmbeddingsResult

    seen = []

    def fake(model_or_path=None, texts=None, *, batch_size=64, progress=True, **kwargs):
        texts = list(texts)
        seen.extend(texts)
        out = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=16) for t in texts])
        out = (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
        n = len(texts)
        return EmbeddingsResult(out, np.ones(n, np.int64), np.zeros(n, bool), "sentence")

    monkeypatch.setattr("iterselect.scoring.embeddings.embed_sentences", fake)
    monkeypatch.setattr("iterselect.scoring.embeddings.embedding_dimension", lambda model: 16)
    monkeypatch.setattr("iterselect.jobs._minilm", lambda: None)
    return seen


def _embedded_conversations(seen, rows, text=record_text):
    assert len(seen) >= len(rows)
    for row in rows:
        assert text(row) in seen  # the turns' text, not an empty string
    assert all(t.strip() for t in seen)


def test_static_baselines_on_a_conversation_file(tmp_path, seen_texts):
    path, rows = _conversation_file(tmp_path, quality=True)
    out = tmp_path / "o.jsonl"
    base = ["--budget", "5", "--input", str(path), "--output", str(out), "--no-progress", "--force"]  # one output path, rewritten by each selector
    assert cli.main(["select", "longest"] + base) == 0
    rep = json.loads((tmp_path / "o.jsonl.report.json").read_text())
    lengths = [len(record_text(r, "response")) for r in rows]
    assert rep["scores"] == sorted(lengths, reverse=True)[:5]
    for method in (["kmrandom", "--clusters", "3"], ["kmclosest", "--clusters", "3"],
                   ["kmq", "--clusters", "3", "--quality-field", "quality"],
                   ["deita", "--quality-field", "quality", "--threshold", "0.99"],
                   ["kcenter"], ["knn"]):
        seen_texts.clear()
        assert cli.main(["select"] + method + base) == 0, method
        _embedded_conversations(seen_texts, rows)
        assert len(out.read_text().splitlines()) == 5


torch = require_module("torch", "torch", module_level=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")


def _run(args):
    assert cli.main(args) == 0, args


def test_every_method_runs_on_a_conversation_file(tmp_path, seen_texts):
    path, rows = _conversation_file(tmp_path)
    common = ["--model", "toy", "--input", str(path), "--no-progress", "--epochs", "1",
              "--lr", "1e-3", "--max-length", "128", "--batch-size", "8"]
    _run(["run", "kmq", "--run-dir", str(tmp_path / "kmq"), "--budget", "10", "--rounds", "2",
          "--clusters", "3", "--max-new-tokens", "4", "--warmup-steps", "0"] + common)
    _embedded_conversations(seen_texts, rows)
    rep = json.loads((tmp_path / "kmq" / "report.json").read_text())
    assert len(rep["selected"]) == 10 and rep["variant"] == "kM-Random"
    assert all(r["n_scored"] + r["n_unscored"] == r["selected_size"] for r in rep["rounds"])
    _run(["run", "diverse-evol", "--run-dir", str(tmp_path / "de"), "--budget", "5",
          "--rounds", "1"] + common)
    assert len(json.loads((tmp_path / "de" / "report.json").read_text())["selected"]) == 10
    # a pool of every record: under the toy model few IFDs are below 1, none among the highest
    _run(["run", "iterit", "--run-dir", str(tmp_path / "it"), "--budget", "6", "--rounds", "1",
          "--candidate-factor", "7"] + common)
    assert 0 < len(json.loads((tmp_path / "it" / "report.json").read_text())["selected"]) <= 6
    for sel in (["least-confidence"], ["margin"]):
        _run(["select"] + sel + ["--model", "toy", "--budget", "3", "--input", str(path),
                                 "--output", str(tmp_path / f"{sel[0]}.jsonl"), "--no-progress"])


def test_insbank_runs_on_conversation_files(tmp_path, seen_texts):
    a, rows_a = _conversation_file(tmp_path, n=30, quality=True, name="a.jsonl")
    b, rows_b = _conversation_file(tmp_path, n=20, quality=True, name="b.jsonl")
    _run(["run", "insbank", "--input", str(a), "--input", str(b), "--bank-size", "8",
          "--run-dir", str(tmp_path / "bank"), "--no-progress"])
    _embedded_conversations(seen_texts, rows_a, instruction_text)  # InsBank embeds the prompts
    assert len((tmp_path / "bank" / "selection.jsonl").read_text().splitlines()) == 8
