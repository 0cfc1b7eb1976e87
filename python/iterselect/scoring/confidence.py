"""How sure a model is of each example's tokens: DiverseEvol's uncertainty baselines.

DiverseEvol (Wu et al., 2023, §4.1 Baselines) compares its k-center selection with two
uncertainty samplers: Least-Confidence, "the average max-logit value across the predicted token
sequence", and Margin-Sampling, the "minimal differences in the likelihood of top two probable
tokens" of the current model's logits. :func:`token_confidence` computes both for every example
in one batched forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice
from ._common import accepts, check_model, check_tokenizer, pad_id, resolve_max_length
from .batching import check_batch_tokens, inference, pad_batch, plan_batches, run_batches
from .formatting import as_examples
from .tokenization import encode_examples, truncate

POSITIONS = ("all", "response")


@dataclass(frozen=True, eq=False)
class ConfidenceResult:
    """Per-example confidence of a causal LM, in input order.

    Attributes
    ----------
    mean_max_logit : ndarray of float64
        Mean over the positions of the largest logit (Least-Confidence picks the lowest).
    mean_margin : ndarray of float64
        Mean over the positions of the largest minus the second largest logit
        (Margin-Sampling picks the lowest); probabilities instead with ``margin_of="probs"``.
    n_positions : ndarray of int64
        Positions averaged.
    truncated : ndarray of bool
    """

    mean_max_logit: np.ndarray
    mean_margin: np.ndarray
    n_positions: np.ndarray
    truncated: np.ndarray


def token_confidence(model, tokenizer, examples, *, positions="all", margin_of="logits",
                     template="alpaca", max_length=None, batch_tokens=None, progress=True):
    """Mean top-1 logit and mean top-1 - top-2 margin of every example, under ``model``.

    Each example (prompt and response in ``template``, EOS after the response, as in training)
    is run through the model once; at every position the logits' two largest values are taken.

    Parameters
    ----------
    model : transformers causal language model
    tokenizer : transformers tokenizer
    examples : list of records or FormattedExamples
    positions : {"all", "response"}, default="all"
        ``"all"``: every position of the example (the published code averages the logits of the
        whole input, prompt included, and the paper's "predicted token sequence" does not say
        otherwise); ``"response"``: only the positions that predict a response token.
    margin_of : {"logits", "probs"}, default="logits"
        The margin of the raw logits (the paper: "logits ... show minimal differences"; the
        published code) or of the softmax probabilities.
    template : {"alpaca", "chat"} or callable, default="alpaca"
    max_length : int, optional
        Defaults to the model's position limit; the prompt is cut first.
    batch_tokens : int, optional
        Token budget of a padded batch (8,192 on CUDA, 1,024 on CPU by default).
    progress : bool, default=True

    Returns
    -------
    ConfidenceResult

    Examples
    --------
    >>> from iterselect.scoring.confidence import token_confidence
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> r = token_confidence(model, tok, [("Q: 2+2?", " 4"), ("Name a fruit.", " Apple.")],
    ...                      progress=False)
    >>> r.mean_max_logit.shape, bool((r.mean_margin >= 0).all())
    ((2,), True)
    """
    import torch

    func = "token_confidence"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    check_choice(positions, "positions", func, POSITIONS)
    check_choice(margin_of, "margin_of", func, ("logits", "probs"))
    examples = as_examples(examples, func, template=template, tokenizer=tokenizer)
    max_length = resolve_max_length(max_length, model, func, low=2)
    batch_tokens = check_batch_tokens(batch_tokens, func, model)
    check_choice(progress, "progress", func, (True, False))

    seqs, masks, truncated = [], [], []
    for enc in encode_examples(tokenizer, examples):
        window, cut = truncate(enc, max_length)
        ids = window.ids
        if positions == "all":
            mask = np.ones(len(ids), dtype=bool)
        else:  # position t - 1 predicts response token t
            mask = np.zeros(len(ids), dtype=bool)
            mask[:-1] = window.response[1:]
        seqs.append(ids)
        masks.append(mask)
        truncated.append(cut)
    pass_positions = accepts(model, "position_ids")

    with inference(model) as device:

        def step(batch):
            ids, attn, pos = pad_batch([seqs[i] for i in batch], pad_id(tokenizer), "right")
            kwargs = {"input_ids": ids.to(device), "attention_mask": attn.to(device)}
            if pass_positions:
                kwargs["position_ids"] = pos.to(device)
            logits = model(**kwargs).logits.float()
            if margin_of == "probs":
                top = torch.softmax(logits, dim=-1).topk(2, dim=-1).values
                top_logit = logits.max(dim=-1).values
            else:
                top = logits.topk(2, dim=-1).values
                top_logit = top[..., 0]
            margin = (top[..., 0] - top[..., 1]).cpu().numpy().astype(np.float64)
            top_logit = top_logit.cpu().numpy().astype(np.float64)
            out = []
            for r, i in enumerate(batch):
                m = masks[i]
                n = len(m)
                if not m.any():
                    out.append((np.nan, np.nan, 0))
                    continue
                out.append((float(top_logit[r, :n][m].mean()), float(margin[r, :n][m].mean()),
                            int(m.sum())))
            return out

        rows = run_batches(plan_batches([len(s) for s in seqs], batch_tokens), step, len(seqs),
                           progress=progress, desc="confidence")
    return ConfidenceResult(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                            np.array([r[2] for r in rows], dtype=np.int64),
                            np.asarray(truncated, dtype=bool))
