"""The packed CPU forward (scoring/packed_forward.py) gives the model's own losses: in float32 to
float32 rounding, in bf16 to bf16 rounding; it runs only the models it can run exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from iterselect.scoring import ifd_scores, perplexity
from iterselect.scoring.nll import masked_nll
from iterselect.scoring.batching import plan_batches
from iterselect.scoring.packed_forward import PackedForward, unsupported_reason
from iterselect.scoring.toy import toy_causal_lm, toy_tokenizer

RECORDS = [
    {"instruction": "Name a fruit.", "input": "", "output": "An apple is a fruit."},
    {"instruction": "Add the numbers.", "input": "two plus two", "output": "Four."},
    {"instruction": "Say where Paris is.", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Describe the cat.", "input": "The cat sat on the mat today.", "output": "It sat."},
    {"instruction": "Repeat", "input": "the quick brown fox", "output": "the quick brown fox jumps"},
]


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


def decoder(tok, kind="llama", **extra):
    """A tiny randomly initialised model of each supported family (GQA, biases, RoPE scaling)."""
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                              Qwen2Config, Qwen2ForCausalLM)

    common = dict(vocab_size=len(tok), hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id)
    common.update(extra)
    torch.manual_seed(3)
    cls, cfg = {"llama": (LlamaForCausalLM, LlamaConfig), "mistral": (MistralForCausalLM, MistralConfig),
                "qwen2": (Qwen2ForCausalLM, Qwen2Config)}[kind]
    model = cls(cfg(**common)).eval()
    for p in model.parameters():  # visible biases and norm weights, not their zero/one init
        if p.ndim == 1:
            torch.nn.init.uniform_(p, 0.5, 1.5)
    return model


MODELS = {
    "llama (GQA)": dict(kind="llama"),
    "llama, attention and MLP biases, llama3 RoPE": dict(
        kind="llama", attention_bias=True, mlp_bias=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}),
    "llama, multi-head, tied head": dict(kind="llama", num_key_value_heads=4, tie_word_embeddings=True),
    "mistral": dict(kind="mistral", sliding_window=None),
    "qwen2 (q/k/v biases)": dict(kind="qwen2"),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_float32_losses_equal_the_models_own(tok, name):
    model = decoder(tok, **MODELS[name])
    assert unsupported_reason(model, 256) is None
    ours = ifd_scores(model, tok, RECORDS, progress=False, engine="packed")
    theirs = ifd_scores(model, tok, RECORDS, progress=False, engine="model")
    np.testing.assert_allclose(ours.cond_loss, theirs.cond_loss, rtol=2e-6)
    np.testing.assert_allclose(ours.prior_loss, theirs.prior_loss, rtol=2e-6)
    np.testing.assert_allclose(ours.ifd, theirs.ifd, rtol=1e-5)
    texts = ["the cat sat on the mat", "two plus two is four", "a"]
    np.testing.assert_allclose(perplexity(model, tok, texts, progress=False, engine="packed").loss,
                               perplexity(model, tok, texts, progress=False, engine="model").loss,
                               rtol=2e-6)


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(2, 40), min_size=1, max_size=9),
       budget=st.integers(1, 120), seed=st.integers(0, 1000))
def test_any_packing_gives_the_same_losses(tok, lengths, budget, seed):
    """Sequences packed together, alone, or split across batches: the same sums."""
    model = decoder(tok)
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(5, len(tok), n) for n in lengths]
    seqs[0][:] = seqs[0][0]  # a run of one repeated token
    masks = [np.r_[False, rng.random(n - 1) < 0.7] for n in lengths]
    ours = masked_nll(model, seqs, masks, pad_id=0, batch_tokens=budget, progress=False,
                      engine="packed")
    theirs = masked_nll(model, seqs, masks, pad_id=0, progress=False, engine="model")
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_allclose(ours[0], theirs[0], rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["autocast", "bf16 model"])
def test_bf16_losses_agree_with_the_model_to_bf16_rounding(tok, dtype):
    model = decoder(tok)
    exact = ifd_scores(model, tok, RECORDS, progress=False, engine="model")
    if dtype == "bf16 model":
        model, autocast = model.to(torch.bfloat16), "off"
    else:
        autocast = "bfloat16"
    fused = ifd_scores(model, tok, RECORDS, progress=False, engine="packed", autocast=autocast)
    theirs = ifd_scores(model, tok, RECORDS, progress=False, engine="model", autocast=autocast)
    for result in (fused, theirs):
        np.testing.assert_allclose(result.cond_loss, exact.cond_loss, rtol=1e-2)
        np.testing.assert_allclose(result.ifd, exact.ifd, rtol=2e-2)


def test_fused_kernels_match_torch_operations_in_bf16(tok):
    model = decoder(tok, attention_bias=True)
    ids = torch.tensor([1, 40, 41, 42, 43, 1, 44, 45, 1, 46])
    with torch.inference_mode():
        fused = PackedForward(model, torch.bfloat16).hidden_states(ids, [5, 3, 2]).float()
        plain = PackedForward(model, torch.bfloat16, fused=False).hidden_states(ids, [5, 3, 2]).float()
        exact = PackedForward(model, torch.float32).hidden_states(ids, [5, 3, 2])
    assert PackedForward(model, torch.bfloat16).fused
    # both within bf16 rounding of the float32 result; the fused one rounds less often
    scale = exact.abs().max()
    assert (fused - exact).abs().max() < 0.05 * scale
    assert (plain - exact).abs().max() < 0.05 * scale
    assert (fused - exact).abs().mean() <= (plain - exact).abs().mean() * 1.5


def test_auto_uses_the_packed_forward_for_a_llama_and_the_model_otherwise(tok, monkeypatch):
    calls = []
    original = PackedForward.hidden_states
    monkeypatch.setattr(PackedForward, "hidden_states",
                        lambda self, *a: calls.append(1) or original(self, *a))
    llama = decoder(tok)
    auto = ifd_scores(llama, tok, RECORDS[:2], progress=False)
    assert calls
    np.testing.assert_allclose(auto.ifd, ifd_scores(llama, tok, RECORDS[:2], progress=False,
                                                    engine="packed").ifd, rtol=0)
    calls.clear()
    gpt2 = toy_causal_lm(tok, "gpt2")
    np.testing.assert_array_equal(ifd_scores(gpt2, tok, RECORDS[:2], progress=False).ifd,
                                  ifd_scores(gpt2, tok, RECORDS[:2], progress=False,
                                             engine="model").ifd)
    assert not calls


def test_packed_refuses_what_it_cannot_run_exactly(tok):
    gpt2 = toy_causal_lm(tok, "gpt2")
    with pytest.raises(ValueError, match="GPT2LMHeadModel is not one of"):
        ifd_scores(gpt2, tok, RECORDS[:2], progress=False, engine="packed")
    model = decoder(tok, kind="mistral", sliding_window=4)
    assert "sliding window" in unsupported_reason(model, 10)
    assert unsupported_reason(model, 4) is None
    model = decoder(tok)
    model.model.layers[0].mlp.down_proj = torch.nn.Sequential(model.model.layers[0].mlp.down_proj)
    assert "not a plain torch.nn.Linear" in unsupported_reason(model, 10)
    model = decoder(tok, hidden_act="gelu")
    assert "hidden_act" in unsupported_reason(model, 10)
    model = decoder(tok)
    handle = model.model.layers[1].register_forward_hook(lambda *a: None)
    assert "hooks" in unsupported_reason(model, 10)
    handle.remove()
    model.forward = lambda *a, **k: None
    assert "forward is replaced" in unsupported_reason(model, 10)
    with pytest.raises(ValueError, match="fused=True needs"):
        PackedForward(decoder(tok), torch.float32, fused=True)


def test_a_scored_first_token_is_refused(tok):
    with pytest.raises(ValueError, match=r"scored\[1\]\[0\] is True"):
        masked_nll(decoder(tok), [np.array([1, 5]), np.array([6, 7])],
                   [np.array([False, True]), np.array([True, True])], pad_id=0, progress=False)


def test_engine_is_validated(tok):
    with pytest.raises(ValueError, match="engine"):
        ifd_scores(decoder(tok), tok, RECORDS[:1], progress=False, engine="fast")


@settings(max_examples=50, deadline=None)
@given(lengths=st.lists(st.integers(0, 30), max_size=20), budget=st.integers(1, 60))
def test_packed_plan_covers_every_index_once_within_the_budget(lengths, budget):
    batches = plan_batches(lengths, budget, packed=True)
    assert sorted(np.concatenate(batches).tolist() if batches else []) == list(range(len(lengths)))
    for b in batches:
        sizes = [max(lengths[i], 1) for i in b]
        assert len(b) == 1 or sum(sizes) <= budget
        assert sizes == sorted(sizes, reverse=True)


def test_a_model_in_the_compute_dtype_is_not_copied(tok):
    model = decoder(tok, attention_bias=True)
    cast = PackedForward(model, torch.bfloat16)
    attn = model.model.layers[0].self_attn
    assert cast.layers[0]["qkv"][0][0].dtype == torch.bfloat16
    shared = PackedForward(model, torch.float32)
    assert shared.layers[0]["qkv"][0][0].data_ptr() == attn.q_proj.weight.data_ptr()
    assert shared.layers[0]["qkv"][1][1].data_ptr() == attn.k_proj.bias.data_ptr()
    assert shared.layers[0]["o"][0].data_ptr() == attn.o_proj.weight.data_ptr()
    assert shared.head.data_ptr() == model.lm_head.weight.data_ptr()
