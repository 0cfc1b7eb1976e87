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
    """The first training loss (no dropout in Llama) equals the response-only NLL we compute."""
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
    r = finetune(model, tok, train_records[:16], batch_tokens=256, progress=False, max_steps=2)
    assert r.steps.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"^The 'epochs' parameter of finetune must be an int in "
                                         r"the range \[1, inf\]. Got 0 instead.$"):
        finetune(model, tok, train_records[:2], epochs=0)
    with pytest.raises(ValueError, match="'lr' parameter of finetune"):
        finetune(model, tok, train_records[:2], lr=-1.0)
    with pytest.raises(ValueError, match=r"Record 1 of the 'examples' parameter of finetune: "
                                         r"field 'output' is empty|response is empty"):
        finetune(model, tok, [train_records[0], {"instruction": "x", "output": ""}])
    with pytest.raises(ValueError, match="'scheduler' parameter of finetune"):
        finetune(model, tok, train_records[:2], scheduler="cyclic")
    with pytest.raises(ValueError, match="'batch_size' parameter of finetune"):
        finetune(model, tok, train_records[:2], batch_size=0)
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


# --- one optimizer and one schedule over a run (Finetuner), batch sizes, the recipe --------

from iterselect.training import Finetuner  # noqa: E402


def _record_lrs():
    lrs = []
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    return lrs, handle


def test_finetuner_one_schedule_while_the_training_set_changes(model_dirs, tok, train_records):
    from transformers import get_scheduler

    model = fresh(model_dirs, "llama")
    trainer = Finetuner(model, tok, epochs=3, lr=1e-3, batch_size=4, warmup_ratio=0.2,
                        scheduler="cosine", progress=False)
    lrs, handle = _record_lrs()
    try:
        parts = [trainer.train_epoch(train_records[8 * e: 8 * e + 8]) for e in range(3)]
    finally:
        handle.remove()
    assert trainer.step == 6 and trainer.total_steps == 6  # 2 steps an epoch, planned for 3
    assert [p.steps.tolist() for p in parts] == [[1, 2], [3, 4], [5, 6]]
    assert parts[-1].recipe["warmup_steps"] == 2  # ceil(0.2 * 6)
    ref_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ref = get_scheduler("cosine", ref_opt, num_warmup_steps=2, num_training_steps=6)
    expected = []
    for _ in range(6):
        expected.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    np.testing.assert_allclose(lrs, expected)
    assert lrs[0] < lrs[1] and lrs[-1] < lrs[2]  # one warm-up, one decay, across the epochs


def test_finetuner_epochs_equal_finetune(model_dirs, tok, train_records):
    data = train_records[:16]
    a = fresh(model_dirs, "gpt2")
    ra = finetune(a, tok, data, epochs=2, lr=1e-3, batch_size=4, warmup_steps=1, seed=3,
                  progress=False)
    b = fresh(model_dirs, "gpt2")
    trainer = Finetuner(b, tok, epochs=2, lr=1e-3, batch_size=4, warmup_steps=1, seed=3,
                        progress=False)
    losses = np.concatenate([trainer.train_epoch(data).loss_history for _ in range(2)])
    np.testing.assert_array_equal(ra.loss_history, losses)
    assert torch.equal(a.lm_head.weight, b.lm_head.weight)
    assert ra.recipe["total_steps"] == 8 and ra.recipe["steps_done"] == 8


def test_finetuner_resumes_exactly_from_its_state(model_dirs, tok, train_records, tmp_path):
    data = train_records[:12]
    whole = fresh(model_dirs, "gpt2")  # GPT-2 has dropout: the RNG state must come back too
    t = Finetuner(whole, tok, epochs=2, lr=1e-3, batch_size=4, scheduler="cosine", seed=1,
                  progress=False)
    ref = [t.train_epoch(data).loss_history for _ in range(2)]
    first = fresh(model_dirs, "gpt2")
    t1 = Finetuner(first, tok, epochs=2, lr=1e-3, batch_size=4, scheduler="cosine", seed=1,
                   progress=False)
    got = [t1.train_epoch(data).loss_history]
    first.save_pretrained(tmp_path)
    torch.save(t1.state_dict(), tmp_path / "state.pt")
    second = load_model(tmp_path, device="cpu")
    t2 = Finetuner(second, tok, epochs=2, lr=1e-3, batch_size=4, scheduler="cosine", seed=1,
                   progress=False)
    t2.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=False))
    got.append(t2.train_epoch(data).loss_history)
    np.testing.assert_array_equal(np.concatenate(ref), np.concatenate(got))
    assert torch.equal(whole.lm_head.weight, second.lm_head.weight)


def test_batch_size_micro_batches_give_the_same_steps(model_dirs, tok, train_records):
    """A step of B sequences is the mean over all its response tokens, however it is split."""
    data = train_records[:16]
    runs = []
    for batch_tokens in (10**6, 300):  # one forward per step, or several accumulated
        model = fresh(model_dirs, "llama")
        r = finetune(model, tok, data, epochs=1, lr=1e-3, batch_size=8,
                     batch_tokens=batch_tokens, progress=False)
        runs.append((r.loss_history, model.lm_head.weight.detach().clone()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-5)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=1e-4, atol=1e-6)
    assert len(runs[0][0]) == 2  # 16 sequences, 8 a step


DATA = [(f"Q: {a}+{a}?\nA:", f" {2 * a}") for a in range(10)]


def test_finetuner_step_by_step_equals_a_plain_loop():
    """AdamW, the schedule and the mean loss over a step's response tokens, against a plain
    loop that runs one example at a time (IterIT's training step)."""
    from transformers import get_scheduler

    from iterselect.scoring.formatting import as_examples
    from iterselect.scoring.tokenization import scored_mask
    from iterselect.scoring.toy import toy_model_and_tokenizer

    model, tok = toy_model_and_tokenizer()
    ref, _ = toy_model_and_tokenizer()
    ref.load_state_dict(model.state_dict())
    for m in [*model.modules(), *ref.modules()]:  # dropout masks depend on the batch shapes
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    trainer = Finetuner(model, tok, epochs=1, lr=1e-2, batch_size=4, warmup_ratio=0.2,
                        scheduler="cosine", max_grad_norm=0.0, seed=5, progress=False)
    result = trainer.train_epoch(DATA)
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.0)
    sched = get_scheduler("cosine", opt, num_warmup_steps=1, num_training_steps=3)  # ceil(0.2 x 3)
    enc = encode_examples(tok, as_examples(DATA, "test", tokenizer=tok))
    order = np.random.default_rng([5, 0]).permutation(len(enc))  # seed, epoch
    ref.train()
    losses = []
    for s in range(0, 10, 4):
        count = 0
        opt.zero_grad()
        nlls = []
        for i in order[s:s + 4]:
            ids = torch.as_tensor(enc[i].ids)[None]
            labels = torch.where(torch.as_tensor(scored_mask(enc[i])), ids[0], -100)
            logits = ref(input_ids=ids).logits[0, :-1]
            nlls.append(torch.nn.functional.cross_entropy(logits, labels[1:], ignore_index=-100,
                                                          reduction="sum"))
            count += int((labels[1:] != -100).sum())
        loss = sum(nlls) / count
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    np.testing.assert_allclose(result.loss_history, losses, rtol=1e-5)
    # Adam moves every weight by about lr = 1e-2 a step whatever its gradient's size, so the
    # rounding of a tiny gradient (batched here, one by one there) shows at 1e-5 absolute
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)


def test_finetuner_errors():
    from iterselect.scoring.toy import toy_model_and_tokenizer

    model, tok = toy_model_and_tokenizer()
    with pytest.raises(ValueError, match="'batch_size' parameter of Finetuner"):
        Finetuner(model, tok, batch_size=0)
    with pytest.raises(ValueError, match="'warmup_ratio' parameter of Finetuner"):
        Finetuner(model, tok, warmup_ratio=1.5)
    with pytest.raises(ValueError, match="'scheduler' parameter of Finetuner"):
        Finetuner(model, tok, scheduler="cyclic")
