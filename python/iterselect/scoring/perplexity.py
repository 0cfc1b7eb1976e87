"""Perplexity of texts, or of responses given their prompts (iterative kMQ)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, param_error
from ..exceptions import ScoringWarning
from ._common import (check_model, check_padding_side, check_tokenizer, pad_id,
                      resolve_max_length)
from .batching import check_autocast, check_batch_tokens
from .formatting import as_examples
from .nll import check_engine, masked_nll
from .tokenization import encode_examples, scored_mask, truncate


@dataclass(frozen=True, eq=False)
class PerplexityResult:
    """Perplexities in input order.

    Attributes
    ----------
    perplexity : ndarray of float64
        ``exp(loss)``; NaN where nothing could be scored (counted in ``nan_indices``).
    loss : ndarray of float64
        Mean NLL per scored token.
    n_tokens : ndarray of int64
        Tokens scored.
    truncated : ndarray of bool
    nan_indices : ndarray of int64
    """

    perplexity: np.ndarray
    loss: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray
    nan_indices: np.ndarray

    @property
    def n_nan(self) -> int:
        return int(self.nan_indices.size)


def perplexity(model, tokenizer, texts, *, template="alpaca", max_length=None,
               batch_tokens=None, padding_side=None, progress=True,
               autocast=None, engine="auto"):
    """Perplexity of plain texts, or of each response given its prompt.

    Two modes, chosen by what ``texts`` holds:

    * a list of str: each text is tokenized as the tokenizer does by default (special tokens
      added, e.g. Llama's BOS), cut at its end to ``max_length``, and every token after the
      first is scored;
    * records or FormattedExamples (as for :func:`ifd_scores`): the response tokens (EOS
      included) given the prompt, under the IFD convention, so ``loss`` equals
      ``ifd_scores(...).cond_loss``. This is kMQ's perplexity of gold or generated answers.

    Parameters
    ----------
    model : transformers causal language model
    tokenizer : transformers tokenizer
    texts : list of str, list of records, or FormattedExamples
    template : {"alpaca", "chat"} or callable, default="alpaca"
        Formatting of records (not used for plain texts).
    max_length : int, optional
        Defaults to the model's position limit.
    batch_tokens : int, optional
        Token budget of a batch: of a padded batch's rows × longest row (defaults: 8,192 on
        CUDA and 1,024 on CPU, see :func:`~iterselect.scoring.batching.check_batch_tokens`),
        or of a packed batch's tokens (default 2,048; see ``engine``).
    padding_side : {"left", "right"}, optional
        Defaults to ``"right"`` (no attention mask needed; see :func:`ifd_scores`).
    progress : bool, default=True
    autocast : {None, "bfloat16", "float16", "off"}, default=None
        Precision of the model's matrix products. None: bf16 autocast for a float32 model on
        CUDA, the model's own precision on CPU. "bfloat16" (or "float16"): autocast to it on
        any device, CPU included, where it uses the CPU's bf16 instructions (AVX-512-BF16,
        AMX); the losses and the log-softmax stay float32. On a CPU without AVX-512, torch
        multiplies half precision several times slower than float32, and a
        :class:`~iterselect.PerformanceWarning` says so. "off": the model's own precision.
    engine : {"auto", "packed", "model"}, default="auto"
        How the model runs. "packed": iterselect's packed CPU forward of a Llama, Mistral or
        Qwen2 model (its weights, sequences packed without padding, fused bf16 element-wise
        kernels; the same computation: see :mod:`~iterselect.scoring.packed_forward`); "model": the model's
        own forward on padded batches; "auto": packed wherever the model allows it.

    Returns
    -------
    PerplexityResult

    Examples
    --------
    >>> from iterselect.scoring import perplexity
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> r = perplexity(model, tok, ["the cat sat", "on the mat today"], progress=False)
    >>> r.perplexity.shape, bool((r.perplexity > 1).all())
    ((2,), True)
    """
    func = "perplexity"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    max_length = resolve_max_length(max_length, model, func, low=2)
    if batch_tokens is not None:
        batch_tokens = check_batch_tokens(batch_tokens, func, model)
    check_engine(engine, func)
    side = check_padding_side(padding_side, func)
    check_choice(progress, "progress", func, (True, False))
    check_autocast(autocast, func)

    plain = (isinstance(texts, (list, tuple)) and len(texts) > 0
             and all(isinstance(t, str) for t in texts))
    if (not plain and isinstance(texts, (list, tuple))
            and any(isinstance(t, str) for t in texts)):
        bad = next(i for i, t in enumerate(texts) if not isinstance(t, str))
        raise param_error(func, "texts", "a list of str or a list of records (not a mix)",
                          f"{type(texts[bad]).__name__} at index {bad} among str", TypeError)
    if plain:
        ids_list = tokenizer(list(texts), verbose=False)["input_ids"]
        seqs, masks, truncated = [], [], []
        for ids in ids_list:
            ids = np.asarray(ids, dtype=np.int64)
            cut = max_length is not None and len(ids) > max_length
            if cut:
                ids = ids[:max_length]
            m = np.ones(len(ids), dtype=bool)
            if len(m):
                m[0] = False
            seqs.append(ids)
            masks.append(m)
            truncated.append(cut)
    else:
        examples = as_examples(texts, func, template=template, tokenizer=tokenizer, name="texts")
        seqs, masks, truncated = [], [], []
        for enc in encode_examples(tokenizer, examples):
            window, cut = truncate(enc, max_length)
            seqs.append(window.ids)
            masks.append(scored_mask(window))
            truncated.append(cut)
    n = len(seqs)
    live = [i for i in range(n) if masks[i].any()]
    sums, counts = masked_nll(model, [seqs[i] for i in live], [masks[i] for i in live],
                              pad_id=pad_id(tokenizer), padding_side=side,
                              batch_tokens=batch_tokens, progress=progress, desc="perplexity",
                              autocast=autocast, engine=engine)
    loss = np.full(n, np.nan)
    n_tokens = np.zeros(n, dtype=np.int64)
    if live:
        loss[live] = sums / counts
        n_tokens[live] = counts
    nan_idx = np.flatnonzero(np.isnan(loss)).astype(np.int64)
    if nan_idx.size:
        warnings.warn(f"perplexity: {nan_idx.size} of {n} inputs have fewer than two tokens or "
                      f"no response token to score (first: {int(nan_idx[0])}); their perplexity "
                      "is NaN (see result.nan_indices).", ScoringWarning, stacklevel=2)
    return PerplexityResult(np.exp(loss), loss, n_tokens, np.asarray(truncated, dtype=bool),
                            nan_idx)
