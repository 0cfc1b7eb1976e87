"""DiverseEvol as its paper's Alg. 1 (§3): what each round trains on and embeds, the k-center
picks, the Vendi scores of the pool and of the full data, the final model, the embedding text
and the §4.1 baselines run in the same loop."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import require_module

torch = require_module("torch", "torch", module_level=True)

from iterselect import kcenter_greedy, vendi_score  # noqa: E402
from iterselect.methods import DiverseEvol  # noqa: E402
from iterselect.methods import diverse_evol as de_module  # noqa: E402

from fake_model import FakeFit, FakeModel, FakeTokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")


def test_alg1_trains_on_the_pool_embeds_everything_and_picks_kcenter(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    records = [{"instruction": f"q{i}", "output": f"a{i}", "id": i} for i in range(40)]
    calls = []

    def fake_finetune(model, tok, recs, train, *, seed, progress, epochs=None):
        calls.append(("train", [r["id"] for r in recs]))
        return FakeFit()

    def fake_embed(model, tok, texts, **kwargs):
        calls.append(("embed", len(texts), kwargs["pooling"]))
        from iterselect.scoring import Embeddings
        return Embeddings(X.astype(np.float32), np.ones(len(texts), dtype=np.int64),
                          np.zeros(len(texts), dtype=bool), "mean")

    monkeypatch.setattr(de_module, "finetune_on", fake_finetune)
    monkeypatch.setattr("iterselect.scoring.embed", fake_embed)
    de = DiverseEvol(5, 4, 3, seed=1, progress=False)
    run = de.run(FakeModel(), FakeTokenizer(), records, tmp_path / "de")
    pool = de.initial_pool(40).tolist()
    expected = []
    for t in range(1, 4):
        expected += [("train", list(pool)), ("embed", 40, "mean")]
        picks = kcenter_greedy(X.astype(np.float32).astype(np.float64), 4, selected=pool,
                               progress=False).indices.tolist()
        rep = run.reports[t]
        assert rep["added"] == picks
        pool += picks
        assert rep["diversity"] == pytest.approx(vendi_score(X[pool]).score, rel=1e-6)
        assert rep["vendi_full"] == pytest.approx(vendi_score(X).score, rel=1e-6)
    expected.append(("train", list(pool)))  # M_T on P_T, the final model
    assert calls == expected
    assert run.selected.tolist() == pool
    assert run.model_path.endswith("round_003")


def test_embedding_texts():
    rec = {"instruction": "Add.", "input": "2+2", "output": "4"}
    tok = FakeTokenizer()
    alpaca = DiverseEvol(embedding_text="alpaca").texts([rec], tok)[0]
    assert alpaca.startswith("Below is an instruction") and alpaca.endswith(
        "### Input:\n2+2\n\n### Response:\n4")
    published = DiverseEvol(embedding_text="published").texts([rec], tok)[0]
    assert published.endswith("### Input:\n2+2\n\n### Response:4</s>")
    assert DiverseEvol(embedding_text="plain").texts([rec], tok)[0] == "Add.\n2+2\n4"
    conv = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    assert DiverseEvol().texts([conv], tok)[0].endswith("### Instruction:\nHi\n\n### Response:\nYo")


def test_paper_defaults():
    de = DiverseEvol()
    assert (de.initial_size, de.round_size, de.rounds, de.strategy) == (100, 100, 10, "kcenter")
    r = DiverseEvol.PAPER_RECIPE
    assert (r.epochs, r.lr, r.batch_size) == (3, 2e-5, 128)


@pytest.mark.parametrize("strategy", ["random", "least-confidence", "margin"])
def test_baseline_strategies_run_in_the_loop(strategy, tmp_path):
    from iterselect.datasets import load_dolly

    records = load_dolly()[:50]
    train = DiverseEvol.PAPER_RECIPE.with_(epochs=1, lr=1e-3, max_length=128, batch_size=8)
    de = DiverseEvol(6, 5, 1, strategy=strategy, final_model=False, train=train, seed=2,
                     progress=False)
    from iterselect.scoring.toy import toy_model_and_tokenizer

    model, tok = toy_model_and_tokenizer()
    run = de.run(model, tok, records, tmp_path / strategy)
    rep = run.reports[1]
    assert rep["strategy"] == strategy and len(rep["added"]) == 5
    assert not set(rep["added"]) & set(run.reports[0]["added"])
    assert run.selected.size == 11 and run.model_path is None
    assert rep["vendi_full"] >= 1.0 and rep["diversity"] >= 1.0
