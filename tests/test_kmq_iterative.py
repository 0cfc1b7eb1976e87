"""Iterative kMQ as the paper's Alg. 1 (§2.2) and Appendix C: the order of the steps pinned with a
recording stand-in for the model, the scores of Eq. 4 and Eq. 7 against plain references, the
naming (kMQ / kM-Random), and the options named after the published code."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require_module

torch = require_module("torch", "torch", module_level=True)

from iterselect.cluster import cluster_weights_update, kmq_sample  # noqa: E402
from iterselect.methods.kmq import IterativeKMQ  # noqa: E402

from fake_model import FakeFit, FakeModel, FakeTokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")


class Recording(IterativeKMQ):
    """Iterative kMQ whose model steps only record what they were given."""

    def __init__(self, *args, scores, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []
        self.scores = scores
        self.models = []

    def train_step(self, model, tokenizer, records, round_index):
        self.models.append(model)
        self.calls.append(("train", round_index, [r["id"] for r in records]))
        return FakeFit()

    def generate_step(self, model, tokenizer, records):
        assert model is self.models[-1]  # the model just trained answers
        self.calls.append(("generate", [r["id"] for r in records]))
        return [f"answer {r['id']}" for r in records]

    def score_step(self, model, tokenizer, records, generated, reward=None):
        assert model is self.models[-1]
        self.calls.append(("score", [r["id"] for r in records], list(generated)))
        return np.array([self.scores[r["id"]] for r in records])


@pytest.fixture()
def blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    X = np.concatenate([c + rng.normal(size=(20, 2)) for c in centers])
    records = [{"id": i, "instruction": f"q{i}", "output": f"a{i}"} for i in range(60)]
    scores = rng.normal(size=60) * 2 - 1  # many negative: Eq. 6 as written would break
    return X, records, scores


def test_alg1_order_each_iteration_trains_generates_scores_all_of_D(blobs, tmp_path):
    X, records, scores = blobs
    km = Recording(30, 3, 3, scores=scores, seed=5, progress=False)
    run = km.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "run")
    labels = km.cluster(X)
    # reference: Alg. 1 computed independently from the library's two steps
    selected = np.zeros(0, dtype=np.int64)
    weights = np.full(3, 1 / 3)
    expected = []
    for it in range(3):
        draw = kmq_sample(labels, 10, cluster_weights=weights,
                          selected=selected if selected.size else None, within="uniform",
                          seed=5 + it)
        selected = np.concatenate([selected, draw.indices])
        ids = selected.tolist()
        expected += [("train", it, ids), ("generate", ids),
                     ("score", ids, [f"answer {i}" for i in ids])]
        weights = cluster_weights_update(weights, labels[selected], scores[selected]).weights
        rep = run.reports[it]
        np.testing.assert_allclose(rep["weights"], weights)
        assert rep["added"] == draw.indices.tolist()
    assert km.calls == expected
    assert run.selected.tolist() == selected.tolist()
    # N fine-tunings, every one from a fresh copy of the base model, and the last one saved
    assert sum(c[0] == "train" for c in km.calls) == 3
    assert len({id(m) for m in km.models}) == 3
    assert run.model_path.endswith("round_002")
    assert (tmp_path / "run" / "models" / "round_002" / "weights.txt").exists()
    assert not (tmp_path / "run" / "models" / "round_001").exists()
    for w in (r["weights"] for r in run.reports):
        assert min(w) >= 0 and np.isfinite(w).all()


def test_alg1_resume_repeats_no_step(blobs, tmp_path):
    X, records, scores = blobs

    class Crash(Exception):
        pass

    def crash(t, rep):
        if t == 1:
            raise Crash

    full = Recording(30, 3, 3, scores=scores, seed=5, progress=False)
    ref = full.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "a")
    first = Recording(30, 3, 3, scores=scores, seed=5, progress=False)
    with pytest.raises(Crash):
        first.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "b", on_round_end=crash)
    again = Recording(30, 3, 3, scores=scores, seed=5, progress=False)
    res = again.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "b", resume=True)
    assert first.calls + again.calls == full.calls
    assert res.selected.tolist() == ref.selected.tolist()


def test_kmq_variant_names_and_quality_draws(blobs, tmp_path):
    X, records, scores = blobs
    quality = np.zeros(60)
    quality[[0, 1, 20, 21, 40, 41]] = 1.0  # only these have positive quality
    km = Recording(6, 1, 3, scores=scores, seed=1, progress=False)
    run = km.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "q", quality=quality)
    assert run.variant == "kMQ" and run.reports[0]["variant"] == "kMQ"
    assert sorted(run.selected.tolist()) == [0, 1, 20, 21, 40, 41]  # draws weighted by quality
    plain = Recording(6, 1, 3, scores=scores, seed=1, progress=False)
    assert plain.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "r").variant == "kM-Random"
    cfg = json.loads((tmp_path / "q" / "state.json").read_text())["config"]
    assert cfg["variant"] == "kMQ" and cfg["quality_sha256"]
    with pytest.raises(ValueError, match="negative scores need within='softmax'"):
        Recording(6, 1, 3, scores=scores, progress=False).run(
            FakeModel(), FakeTokenizer(), records, X, tmp_path / "neg", quality=quality - 0.5)
    soft = Recording(6, 1, 3, scores=scores, within="softmax", progress=False)
    assert soft.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "soft",
                    quality=quality - 0.5).selected.size == 6


def test_auto_clusters_by_silhouette(blobs, tmp_path):
    X, records, scores = blobs
    km = Recording(9, 1, "auto", scores=scores, cluster_candidates=[2, 3, 4, 6], progress=False)
    run = km.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "auto")
    assert run.reports[0]["n_clusters"] == 3  # three blobs
    assert set(run.reports[0]["silhouettes"]) == {"2", "3", "4", "6"}


def test_replace_draws_eq3_with_replacement(blobs, tmp_path):
    X, records, scores = blobs
    labels = IterativeKMQ(4, 1, 3).cluster(X)
    q = np.zeros(60)
    q[labels == 0] = 0.0
    q[np.flatnonzero(labels == 0)[0]] = 1.0  # one point carries all of cluster 0's quality
    q[labels != 0] = 1.0
    res = kmq_sample(labels, 30, quality=q, replace=True, seed=0)
    first = np.flatnonzero(labels == 0)[0]
    assert (res.indices == first).sum() == res.per_cluster[0] > 1  # drawn again and again
    km = Recording(30, 1, 3, scores=scores, replace=True, progress=False)
    run = km.run(FakeModel(), FakeTokenizer(), records, X, tmp_path / "rep", quality=q)
    assert run.selected.size == 30 and np.unique(run.selected).size < 30


# --- the scores, against plain references -------------------------------------------------

@pytest.fixture(scope="module")
def toy():
    from iterselect.scoring.toy import toy_model_and_tokenizer

    return toy_model_and_tokenizer("llama")


def _whole_text_log_ppl(model, tok, text):
    """log PPL of a whole text: mean NLL of every token after the first (plain loop)."""
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    return float(torch.nn.functional.cross_entropy(logits, ids[0, 1:]))


def test_eq7_is_log_ppl_of_the_whole_text(toy):
    model, tok = toy
    recs = [{"instruction": "Name a fruit.", "output": "An apple."},
            {"instruction": "Add 2 and 3.", "input": "2, 3", "output": "Five."}]
    gen = ["A pear, I think.", "7"]
    km = IterativeKMQ(2, 1, 1, progress=False, train=IterativeKMQ.PAPER_RECIPE)
    got = km.score_step(model, tok, recs, gen)
    from iterselect.scoring import format_examples

    for r, g, s in zip(recs, gen, got):
        ex = format_examples([r])[0]
        gold = _whole_text_log_ppl(model, tok, ex.prompt + ex.response)
        mine = _whole_text_log_ppl(model, tok, ex.prompt + g)
        # Eq. 7: -log(PPL(x+gen) / PPL(x+gold)) = log PPL(x+gold) - log PPL(x+gen)
        assert abs(s - (gold - mine)) < 1e-5


def test_response_only_perplexity_option(toy):
    from iterselect.scoring import perplexity

    model, tok = toy
    recs = [{"instruction": "Name a fruit.", "output": "An apple."}]
    km = IterativeKMQ(1, 1, 1, perplexity_of="response", progress=False)
    got = km.score_step(model, tok, recs, ["A pear."])
    ref = (perplexity(model, tok, recs, progress=False).loss
           - perplexity(model, tok, [{"instruction": "Name a fruit.", "output": "A pear."}],
                        progress=False).loss)
    assert abs(got[0] - ref[0]) < 1e-9
    assert np.isnan(km.score_step(model, tok, recs, ["   "])[0])  # an empty answer is unscored


@pytest.fixture(scope="module")
def reward_model():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from iterselect.scoring.toy import toy_tokenizer

    tok = toy_tokenizer()  # has a ChatML chat template: the reward model's own
    torch.manual_seed(3)
    rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1,
                                                  n_head=2, num_labels=1,
                                                  pad_token_id=tok.pad_token_id)).eval()
    return rm, tok


def _rm_score(rm, ids):
    with torch.no_grad():
        return float(rm(input_ids=torch.tensor([ids])).logits[0, 0])


def test_eq4_reward_in_the_reward_models_chat_template(toy, reward_model):
    model, tok = toy
    rm, rtok = reward_model
    recs = [{"instruction": "Name a fruit.", "output": "An apple."},
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hey"},
                               {"from": "human", "value": "Color?"},
                               {"from": "gpt", "value": "Blue."}]}]
    gen = ["A pear.", "Red."]
    km = IterativeKMQ(2, 1, 1, progress=False)
    got = km.score_step(model, tok, recs, gen, reward=(rm, rtok))
    convs = [[{"role": "user", "content": "Name a fruit."}],
             [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"},
              {"role": "user", "content": "Color?"}]]
    for msgs, gold, g, s in zip(convs, ["An apple.", "Blue."], gen, got):
        def score(answer):
            text = rtok.apply_chat_template(msgs + [{"role": "assistant", "content": answer}],
                                            tokenize=False).rstrip()
            return _rm_score(rm, rtok(text, add_special_tokens=False)["input_ids"])
        assert abs(s - (score(gold) - score(g))) < 1e-5


def test_published_reward_template(toy, reward_model):
    model, tok = toy
    rm, rtok = reward_model
    rec = {"instruction": "Name a fruit.", "output": "An apple."}
    km = IterativeKMQ(1, 1, 1, reward_template="published", progress=False)
    got = km.score_step(model, tok, [rec], ["A pear."], reward=(rm, rtok))[0]

    def score(answer):
        return _rm_score(rm, rtok(f"###Human: Name a fruit. ###Assistant: {answer}")["input_ids"])
    assert abs(got - (score("An apple.") - score("A pear."))) < 1e-5


def test_train_from_previous_continues_the_last_model(toy, tmp_path):
    from iterselect.scoring import load_model
    from iterselect.scoring.toy import toy_model_and_tokenizer

    model, tok = toy_model_and_tokenizer("gpt2")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    recs = [{"instruction": f"Say {i}.", "output": f"{i} {i}"} for i in range(12)]
    starts = []

    class Watch(IterativeKMQ):
        def train_step(self, m, t, records, round_index):
            starts.append(m.transformer.wte.weight.detach().clone())
            return super().train_step(m, t, records, round_index)

    train = IterativeKMQ.PAPER_RECIPE.with_(epochs=1, lr=1e-2, batch_size=4, warmup_steps=0,
                                            max_length=64)
    run = Watch(4, 2, 2, train_from="previous", max_new_tokens=2, train=train,
                progress=False).run(model, tok, recs, X, tmp_path / "prev")
    first = load_model(tmp_path / "prev" / "models" / "round_000", device="cpu")
    assert torch.equal(starts[0], model.transformer.wte.weight)  # iteration 1: the base
    assert torch.equal(starts[1], first.transformer.wte.weight)  # iteration 2: the last model
    assert run.model_path.endswith("round_001")


def test_cli_kmq_with_a_quality_model_and_a_reward_model(reward_model, tmp_path, capsys):
    from iterselect import cli
    from iterselect.datasets import load_dolly
    from iterselect.scoring import quality_scores, reward_scores

    rm, rtok = reward_model
    rm_dir = tmp_path / "rm"
    rm.save_pretrained(rm_dir)
    rtok.save_pretrained(rm_dir)
    records = load_dolly()[:30]
    q = quality_scores(rm, rtok, records, progress=False)
    np.testing.assert_allclose(q, reward_scores(rm, rtok, records, template="chat",
                                                progress=False).scores)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(30, 8)))
    argv = ["run", "kmq", "--model", "toy", "--input", str(data), "--embeddings", str(emb),
            "--run-dir", str(tmp_path / "run"), "--budget", "8", "--rounds", "2", "--clusters",
            "3", "--epochs", "1", "--lr", "1e-3", "--warmup-steps", "0", "--batch-size", "4",
            "--max-length", "96", "--max-new-tokens", "4", "--quality-model", str(rm_dir),
            "--within", "softmax", "--reward-model", str(rm_dir), "--no-progress"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["variant"] == "kMQ" and report["title"] == "iterative kMQ"
    assert all("Eq. 4" in r["objective_name"] for r in report["rounds"])
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["config"]["reward_model"] and state["config"]["quality_sha256"]
    assert "kM-Random" not in capsys.readouterr().err
