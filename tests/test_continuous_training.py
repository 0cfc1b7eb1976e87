"""ContinuousTrainer (IterIT's training): one optimizer and one schedule over the epochs, the
same as a plain loop, and a resumed trainer equal to an uninterrupted one."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterselect.scoring.toy import toy_model_and_tokenizer  # noqa: E402
from iterselect.training import ContinuousTrainer  # noqa: E402

DATA = [(f"Q: {a}+{a}?\nA:", f" {2 * a}") for a in range(10)]


def _trainer(model, tok, **kw):
    args = dict(epochs=3, examples_per_epoch=10, batch_size=4, lr=1e-2, warmup_ratio=0.2,
                lr_scheduler="cosine", seed=5)
    args.update(kw)
    return ContinuousTrainer(model, tok, **args)


def test_one_schedule_over_every_epoch():
    model, tok = toy_model_and_tokenizer()
    t = _trainer(model, tok)
    assert (t.steps_per_epoch, t.total_steps) == (3, 9)
    rates = np.concatenate([t.train_epoch(DATA[e:] + DATA[:e], epoch=e).learning_rates for e in range(3)])
    # transformers' cosine with warm-up over all 9 steps (2 warm-up steps): no restart per epoch
    warm, total = math.ceil(0.2 * 9), 9
    expected = [1e-2 * (s / warm if s < warm else
                        0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))) for s in range(total)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    assert t.step == 9


def test_matches_a_plain_loop():
    """Step by step: AdamW, the schedule, the mean loss over the batch's response tokens."""
    from transformers import get_scheduler

    from iterselect.scoring.formatting import as_examples
    from iterselect.scoring.tokenization import encode_examples, scored_mask

    model, tok = toy_model_and_tokenizer()
    ref, _ = toy_model_and_tokenizer()
    ref.load_state_dict(model.state_dict())
    for m in [*model.modules(), *ref.modules()]:  # dropout masks depend on the batch shapes
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    t = _trainer(model, tok, epochs=1, max_grad_norm=0.0)
    result = t.train_epoch(DATA, epoch=0)
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.0)
    sched = get_scheduler("cosine", opt, num_warmup_steps=1, num_training_steps=3)
    enc = encode_examples(tok, as_examples(DATA, "test", tokenizer=tok))
    order = np.random.default_rng([5, 0]).permutation(len(enc))
    torch.manual_seed(5)
    ref.train()
    losses = []
    for s in range(0, 10, 4):
        total, count = 0.0, 0
        opt.zero_grad()
        nlls = []
        for i in order[s:s + 4]:
            ids = torch.as_tensor(enc[i].ids)[None]
            labels = torch.where(torch.as_tensor(scored_mask(enc[i])), ids[0], -100)
            logits = ref(input_ids=ids).logits[0, :-1]
            nlls.append(torch.nn.functional.cross_entropy(logits, labels[1:], ignore_index=-100, reduction="sum"))
            count += int((labels[1:] != -100).sum())
        loss = sum(nlls) / count
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    np.testing.assert_allclose(result.losses, losses, rtol=1e-5)
    # Adam moves every weight by about lr = 1e-2 a step whatever its gradient's size, so the
    # rounding of a tiny gradient (batched here, one by one there) shows at 1e-5 absolute
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)


def test_resumed_equals_uninterrupted(tmp_path):
    model, tok = toy_model_and_tokenizer()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    t = _trainer(model, tok)
    for e in range(2):
        t.train_epoch(DATA, epoch=e)
    # the same, with a save after epoch 0 and a fresh model and trainer loaded from it
    other, _ = toy_model_and_tokenizer()
    other.load_state_dict(start)
    a = _trainer(other, tok)
    a.train_epoch(DATA, epoch=0)
    other.save_pretrained(tmp_path / "m")
    a.save(tmp_path / "m" / "trainer.pt")
    from iterselect.scoring import load_model
    reloaded = load_model(tmp_path / "m", dtype=torch.float32)
    b = _trainer(reloaded, tok)
    b.load(tmp_path / "m" / "trainer.pt")
    assert b.step == 3
    b.train_epoch(DATA, epoch=1)
    for p, q in zip(model.parameters(), reloaded.parameters()):
        assert torch.equal(p, q)


def test_errors():
    model, tok = toy_model_and_tokenizer()
    with pytest.raises(ValueError, match="'batch_size' parameter of ContinuousTrainer"):
        _trainer(model, tok, batch_size=0)
    with pytest.raises(ValueError, match="'warmup_ratio' parameter of ContinuousTrainer"):
        _trainer(model, tok, warmup_ratio=1.0)
