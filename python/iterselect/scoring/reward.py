"""Reward-model scores (sequence-classification heads), for kMQ's gold-vs-generated checks."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice
from ._common import accepts, check_model, check_tokenizer, pad_id, resolve_max_length
from .batching import check_batch_tokens, inference, pad_batch, plan_batches, run_batches
from .formatting import as_examples


@dataclass(frozen=True, eq=False)
class RewardResult:
    """Reward scores in input order.

    Attributes
    ----------
    scores : ndarray of float64
        Shape ``(n,)`` for a single-label head (the usual reward model), else
        ``(n, num_labels)`` logits.
    n_tokens : ndarray of int64
    truncated : ndarray of bool
        Inputs whose start was cut to ``max_length`` (the response end is kept).
    """

    scores: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray


@contextlib.contextmanager
def _pad_token_in_config(model, pid):
    """Sequence classifiers find the last real token by ``config.pad_token_id``."""
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    old = text_config.pad_token_id
    if old is None:
        text_config.pad_token_id = pid
    try:
        yield text_config.pad_token_id
    finally:
        text_config.pad_token_id = old


def reward_scores(reward_model, tokenizer, examples, *, template="alpaca", max_length=None,
                  batch_tokens=None, add_special_tokens=None, progress=True):
    """Score (prompt, response) examples with a sequence-classification reward model.

    Each example's whole text (prompt and response as the template renders them) is tokenized
    with the tokenizer's special tokens (not for the chat template, whose rendering carries its
    own), cut at its start to ``max_length`` so the response end survives, and scored in
    left-padded batches. The model's head reads the last real token; a reward model without a
    ``pad_token_id`` in its config gets the tokenizer's for the duration of the call.

    Parameters
    ----------
    reward_model : transformers ``*ForSequenceClassification`` model
    tokenizer : the reward model's tokenizer
    examples : list of records or FormattedExamples
        Pairs ``(prompt, generated_answer)`` score generated answers; records score gold ones.
    template : {"alpaca", "chat"} or callable, default="alpaca"
    max_length : int, optional
        Defaults to the model's position limit.
    batch_tokens : int, optional
        Token budget of a padded batch (rows × longest row). Defaults to 8,192 on CUDA and
        1,024 on CPU (see :func:`~iterselect.scoring.batching.check_batch_tokens`).
    add_special_tokens : bool, optional
        Defaults to True except with the chat template.
    progress : bool, default=True

    Returns
    -------
    RewardResult
        ``scores``, ``n_tokens``, ``truncated``.

    Examples
    --------
    >>> import torch
    >>> from transformers import GPT2Config, GPT2ForSequenceClassification
    >>> from iterselect.scoring import reward_scores
    >>> from iterselect.scoring.toy import toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> _ = torch.manual_seed(0)
    >>> rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1,
    ...                                               n_head=2, num_labels=1)).eval()
    >>> r = reward_scores(rm, tok, [("Q: 2+2?\\nA:", " 4"), ("Q: 2+2?\\nA:", " 5")],
    ...                   progress=False)
    >>> r.scores.shape
    (2,)
    """
    func = "reward_scores"
    check_model(reward_model, func, "reward_model")
    check_tokenizer(tokenizer, func)
    examples = as_examples(examples, func, template=template, tokenizer=tokenizer)
    max_length = resolve_max_length(max_length, reward_model, func)
    batch_tokens = check_batch_tokens(batch_tokens, func, reward_model)
    if add_special_tokens is None:
        add_special_tokens = examples.template != "chat"
    check_choice(add_special_tokens, "add_special_tokens", func, (True, False))
    check_choice(progress, "progress", func, (True, False))

    texts = [ex.text for ex in examples]
    seqs, truncated = [], []
    encoded = tokenizer(texts, add_special_tokens=add_special_tokens, verbose=False)["input_ids"]
    for ids in encoded:
        cut = max_length is not None and len(ids) > max_length
        seqs.append(np.asarray(ids[-max_length:] if cut else ids, dtype=np.int64))
        truncated.append(cut)
    pass_positions = accepts(reward_model, "position_ids")
    side = "left" if pass_positions else "right"  # without position ids, left padding shifts them
    pid = pad_id(tokenizer)

    with _pad_token_in_config(reward_model, pid) as config_pad, inference(reward_model) as device:

        def step(batch):
            ids, mask, positions = pad_batch([seqs[i] for i in batch], config_pad, side)
            kwargs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            if pass_positions:
                kwargs["position_ids"] = positions.to(device)
            logits = reward_model(**kwargs).logits.float()
            return logits.cpu().numpy().astype(np.float64)

        rows = run_batches(plan_batches([len(s) for s in seqs], batch_tokens), step, len(seqs),
                           progress=progress, desc="reward")
    scores = np.stack(rows)
    if scores.shape[1] == 1:
        scores = scores[:, 0]
    return RewardResult(scores, np.array([len(s) for s in seqs], dtype=np.int64),
                        np.asarray(truncated, dtype=bool))


def quality_scores(quality_model, tokenizer, records, *, max_length=None, batch_tokens=None,
                   progress=True) -> np.ndarray:
    """One quality score per record from a reward or regression model (kMQ's ``p(x | q)``).

    Each record is rendered in the model's own chat template (Alpaca's when its tokenizer has
    none) and scored by :func:`reward_scores`; the model needs a single-output head.

    Parameters
    ----------
    quality_model : transformers ``*ForSequenceClassification`` model with one label
    tokenizer : its tokenizer
    records : list of records (Alpaca, conversations, (prompt, response) pairs)
    max_length, batch_tokens, progress
        As for :func:`reward_scores`.

    Returns
    -------
    ndarray of float64, shape (len(records),)

    Examples
    --------
    >>> import torch
    >>> from transformers import GPT2Config, GPT2ForSequenceClassification
    >>> from iterselect.scoring.reward import quality_scores
    >>> from iterselect.scoring.toy import toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> _ = torch.manual_seed(0)
    >>> qm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1,
    ...                                               n_head=2, num_labels=1)).eval()
    >>> quality_scores(qm, tok, [{"instruction": "Hi", "output": "Hello"}], progress=False).shape
    (1,)
    """
    from .._validation import param_error

    template = "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    scores = reward_scores(quality_model, tokenizer, records, template=template,
                           max_length=max_length, batch_tokens=batch_tokens,
                           progress=progress).scores
    if scores.ndim != 1:
        raise param_error("quality_scores", "quality_model", "a model with one output (a "
                          "reward or regression head)", f"{scores.shape[1]} outputs")
    return scores
