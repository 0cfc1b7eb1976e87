"""Tests of iterselect.training.finetune on tiny local GPT-2 / Llama models and Dolly records
(nothing touches the network)."""
from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from conftest import require_module  # noqa: E402

torch = require_module("torch", "torch", module_level=True)
require_module("transformers", "torch", module_level=True)

from iterselect.scoring import (ScoringWarning, format_examples, load_model,  # noqa: E402
                                load_tokenizer, perplexity)
from iterselect.scoring.tokenization import encode_examples  # noqa: E402
from iterselect.training import finetune  # noqa: E402

finetune_module = importlib.import_module("iterselect.training.finetune")

from torch_support import CHATML  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")


@pytest.fixture(scope="module")
def train_records(dolly_records):
    out = [r for r in dolly_records if len(r["instruction"]) + len(r["input"]) + len(r["output"]) < 200]
    return out[:48]


@pytest.fixture(scope="module")
def tok_path(dolly_records, tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [r["instruction"] + "\n" + r["output"] for r in dolly_records[:300]],
        trainers.BpeTrainer(vocab_size=384, special_tokens=specials, show_progress=False,
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", additional_special_tokens=specials[3:])
    fast.chat_template = CHATML
    d = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tok(tok_path):
    return load_tokenizer(tok_path)


@pytest.fixture(scope="module")
def model_dirs(tok, tmp_path_factory):
    """Saved initial weights, so each test starts from the same untrained model."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    dirs = {}
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=48, n_layer=2, n_head=2,
                                      n_positions=256))
    dirs["gpt2"] = tmp_path_factory.mktemp("gpt2")
    gpt2.save_pretrained(dirs["gpt2"])
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256))
    dirs["llama"] = tmp_path_factory.mktemp("llama")
    llama.save_pretrained(dirs["llama"])
    return dirs


def fresh(model_dirs, arch):
    return load_model(model_dirs[arch], device="cpu")


def weighted_loss(result):
    return float((result.loss * result.n_tokens).sum() / result.n_tokens.sum())


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_finetune_lowers_the_response_loss(arch, model_dirs, tok, train_records):
    model = fresh(model_dirs, arch)
    before = perplexity(model, tok, train_records, progress=False)
    r = finetune(model, tok, train_records, epochs=3, lr=3e-3, batch_tokens=2048, seed=0,
                 progress=False)
    after = perplexity(model, tok, train_records, progress=False)
    assert r.model is model and not model.training
    assert weighted_loss(after) < weighted_loss(before) - 0.5
    assert r.loss_history[-1] < r.loss_history[0]
    assert r.n_examples == len(train_records) and r.skipped.size == 0
    assert r.n_response_tokens == int(after.n_tokens.sum())
    assert len(r.loss_history) == len(r.steps) and r.steps[-1] == r.steps.size
    assert np.isfinite(r.train_loss)


def test_prompt_tokens_are_masked(model_dirs, tok, train_records):
    """Trainer's first loss (no dropout in Llama) equals the response-only NLL we compute."""
    model = fresh(model_dirs, "llama")
    ref = perplexity(model, tok, train_records[:12], progress=False)
    r = finetune(model, tok, train_records[:12], epochs=1, lr=1e-3, batch_tokens=10**6,
                 progress=False)
    assert len(r.loss_history) == 1  # one batch holds everything
    assert abs(r.loss_history[0] - weighted_loss(ref)) < 2e-3
    # with the prompt learned too, the loss would be an average over many more tokens
    full = perplexity(model, tok, [ex.text for ex in format_examples(train_records[:12])],
                      progress=False)
    assert full.n_tokens.sum() > 2 * r.n_response_tokens


def test_finetune_is_deterministic_for_a_seed(model_dirs, tok, train_records):
    data = train_records[:24]
    runs = []
    for seed in (1, 1, 2):
        model = fresh(model_dirs, "gpt2")  # GPT-2 has dropout: the seed must fix it
        r = finetune(model, tok, data, epochs=2, lr=1e-3, batch_tokens=512, seed=seed,
                     progress=False)
        runs.append((r.loss_history, model.transformer.h[0].attn.c_attn.weight.detach().clone()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_token_budget_batches_cover_every_example_each_epoch():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, 200)
    sampler = finetune_module._TokenBudgetBatches(lengths, 600, seed=3)
    epochs = [list(sampler) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(200))
        assert all(len(b) * max(lengths[b]) <= 600 for b in batches)
    assert epochs[0] != epochs[1]  # batch order reshuffled
    again = finetune_module._TokenBudgetBatches(lengths, 600, seed=3)
    assert list(again) == epochs[0]


def test_multi_turn_chat_training_learns_every_assistant_turn(model_dirs, tok):
    conv = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                              {"from": "human", "value": "Color?"},
                              {"from": "gpt", "value": "Blue."}]}
    data = [conv] * 4
    ex = format_examples(data, "chat", tokenizer=tok)
    n_resp = sum(int(e.response[1:].sum()) for e in encode_examples(tok, ex))
    model = fresh(model_dirs, "llama")
    r = finetune(model, tok, data, template="chat", epochs=1, lr=1e-3, progress=False)
    assert r.n_response_tokens == n_resp
    assert r.n_response_tokens == 4 * sum(
        len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in ex[0].responses)


def test_truncation_skips_are_counted(model_dirs, tok):
    model = fresh(model_dirs, "gpt2")
    long_prompt = "word " * 100
    r = finetune(model, tok, [(long_prompt, "ok"), ("short", "fine")], max_length=16,
                 progress=False)
    assert r.truncated.tolist() == [True, False] and r.skipped.size == 0


def test_training_args_override_and_errors(model_dirs, tok, train_records):
    model = fresh(model_dirs, "gpt2")
    r = finetune(model, tok, train_records[:16], batch_tokens=256, progress=False,
                 training_args={"max_steps": 2})
    assert r.steps.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"^The 'epochs' parameter of finetune must be an int in "
                                         r"the range \[1, inf\]. Got 0 instead.$"):
        finetune(model, tok, train_records[:2], epochs=0)
    with pytest.raises(ValueError, match="'lr' parameter of finetune"):
        finetune(model, tok, train_records[:2], lr=-1.0)
    with pytest.raises(ValueError, match=r"Record 1 of the 'examples' parameter of finetune: "
                                         r"field 'output' is empty|response is empty"):
        finetune(model, tok, [train_records[0], {"instruction": "x", "output": ""}])
    with pytest.raises(TypeError, match="'training_args' parameter of finetune"):
        finetune(model, tok, train_records[:2], training_args=["max_steps"])
    with pytest.raises(TypeError, match="'model' parameter of finetune"):
        finetune("gpt2", tok, train_records[:2])


def test_empty_response_after_tokenization_is_a_counted_skip(model_dirs, tok):
    """A one-token response with no prompt has nothing to learn: skipped and reported."""
    model = fresh(model_dirs, "gpt2")
    tok_noeos = load_tokenizer(tok.name_or_path)
    tok_noeos.eos_token = None
    one = tok_noeos("A", add_special_tokens=False)["input_ids"]
    assert len(one) == 1
    with pytest.warns(ScoringWarning, match=r"1 of 2 examples .*\(first: 0\)"):
        r = finetune(model, tok_noeos, [("", "A"), ("Say yes: ", "yes yes")], progress=False)
    assert r.skipped.tolist() == [0] and r.n_examples == 1


def test_finetune_docstring_example():
    res = doctest.testmod(finetune_module, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
