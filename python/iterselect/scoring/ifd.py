"""Instruction-Following Difficulty (IFD, Li et al. 2024; used by IterIT).

IFD compares how well a model predicts a response with and without its instruction:
``IFD = PPL(y | x) / PPL(y)``. The exact convention (fixed so users can reproduce a number):

* the prompt ``x`` and the response ``y`` are tokenized separately, without special tokens, and
  concatenated; the tokenizer's EOS token follows the response (unless it already ends with it);
* the conditioned loss ``cond_loss`` is the mean NLL over the response tokens, EOS included, of
  the sequence ``x + y + EOS``;
* the prior loss ``prior_loss`` is the mean NLL over the same tokens in ``BOS + y + EOS`` (the
  EOS token stands in when the tokenizer has no BOS token);
* ``IFD = exp(cond_loss) / exp(prior_loss)``, computed as ``exp(cond_loss - prior_loss)``;
* with several assistant turns (ShareGPT), every response token is scored in the conditioned
  sequence and the prior is ``BOS`` followed by the responses alone, concatenated;
* truncation to ``max_length`` cuts the prompt first (from its start, keeping at least one
  prompt token), then the end of the response; an example left with no response token to score
  gets ``NaN`` and is counted in ``n_nan`` / ``nan_indices`` (with a :class:`ScoringWarning`).

IFD below 1 means the instruction helps the model predict the response; Cherry LLM and IterIT
keep samples with high IFD that is still below 1.
"""
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
class IFDResult:
    """IFD scores, one per example, in input order.

    Attributes
    ----------
    ifd : ndarray of float64
        ``exp(cond_loss - prior_loss)``; NaN where no response token could be scored.
    cond_loss : ndarray of float64
        Mean NLL of the response tokens given the prompt.
    prior_loss : ndarray of float64
        Mean NLL of the same tokens after the BOS token alone.
    n_response_tokens : ndarray of int64
        Response tokens scored (EOS included), after truncation.
    truncated : ndarray of bool
        Examples cut to ``max_length``.
    nan_indices : ndarray of int64
        Examples whose IFD is NaN (no response token left to score).
    """

    ifd: np.ndarray
    cond_loss: np.ndarray
    prior_loss: np.ndarray
    n_response_tokens: np.ndarray
    truncated: np.ndarray
    nan_indices: np.ndarray

    @property
    def n_nan(self) -> int:
        """How many examples got NaN."""
        return int(self.nan_indices.size)


def prior_start_id(tokenizer, func: str) -> int:
    """The BOS token id, else the EOS token id (GPT-2 style tokenizers)."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise param_error(func, "tokenizer", "a tokenizer with a BOS or an EOS token (the prior "
                      "sequence starts with one)", type(tokenizer).__name__)


def ifd_sequences(tokenizer, examples, max_length, start_id):
    """Conditioned and prior sequences with their scored masks (the IFD convention).

    Returns ``cond, prior, truncated`` where ``cond`` and ``prior`` are lists of
    ``(ids, scored)`` and a prior is ``None`` when nothing is scored.
    """
    cond, prior, truncated = [], [], []
    for enc in encode_examples(tokenizer, examples):
        window, cut = truncate(enc, max_length)
        scored = scored_mask(window)
        cond.append((window.ids, scored))
        truncated.append(cut)
        k = int(scored.sum())
        if k == 0:
            prior.append(None)
            continue
        ids = np.concatenate([[start_id], window.ids[scored]]).astype(np.int64)
        mask = np.ones(k + 1, dtype=bool)
        mask[0] = False
        prior.append((ids, mask))
    return cond, prior, np.asarray(truncated, dtype=bool)


def ifd_scores(model, tokenizer, examples, *, template="alpaca", max_length=None,
               batch_tokens=None, padding_side=None, progress=True,
               autocast=None, engine="auto"):
    """IFD of every example under ``model`` (see the module docstring for the convention).

    Parameters
    ----------
    model : transformers causal language model
    tokenizer : transformers tokenizer
    examples : list of records or FormattedExamples
        Alpaca / ShareGPT records or ``(prompt, response)`` pairs (see
        :func:`format_examples`), or the output of :func:`format_examples`.
    template : {"alpaca", "chat"} or callable, default="alpaca"
        How records are formatted (ignored for FormattedExamples and pairs).
    max_length : int, optional
        Longest sequence fed to the model; defaults to the model's position limit.
    batch_tokens : int, optional
        Token budget of a batch: of a padded batch's rows × longest row (defaults: 8,192 on
        CUDA and 1,024 on CPU, see :func:`~iterselect.scoring.batching.check_batch_tokens`),
        or of a packed batch's tokens (default 2,048; see ``engine``).
    padding_side : {"left", "right"}, optional
        Defaults to ``"right"``, which needs no attention mask (the model is causal, so padding
        after a sequence cannot change it) and runs the model's unmasked causal attention
        kernel. ``"left"`` passes the attention mask and position ids; the results agree.
    progress : bool, default=True
        Show a progress bar.
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
    IFDResult
        ``ifd``, ``cond_loss``, ``prior_loss``, ``n_response_tokens``, ``truncated``,
        ``nan_indices``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.scoring import ifd_scores
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> r = ifd_scores(model, tok, [("Name a fruit: ", "apple"), ("2+2=", "4")], progress=False)
    >>> r.ifd.shape, r.n_response_tokens.tolist()   # "apple" and "4" plus EOS each
    ((2,), [3, 2])
    >>> bool(np.allclose(r.ifd, np.exp(r.cond_loss - r.prior_loss)))
    True
    """
    func = "ifd_scores"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    examples = as_examples(examples, func, template=template, tokenizer=tokenizer)
    max_length = resolve_max_length(max_length, model, func, low=2)
    if batch_tokens is not None:
        batch_tokens = check_batch_tokens(batch_tokens, func, model)
    check_engine(engine, func)
    side = check_padding_side(padding_side, func)
    check_choice(progress, "progress", func, (True, False))
    check_autocast(autocast, func)
    start = prior_start_id(tokenizer, func)

    cond, prior, truncated = ifd_sequences(tokenizer, examples, max_length, start)
    live = [i for i, p in enumerate(prior) if p is not None]
    seqs = [cond[i][0] for i in live] + [prior[i][0] for i in live]
    masks = [cond[i][1] for i in live] + [prior[i][1] for i in live]
    sums, counts = masked_nll(model, seqs, masks, pad_id=pad_id(tokenizer), padding_side=side,
                              batch_tokens=batch_tokens, progress=progress, desc="IFD",
                              autocast=autocast, engine=engine)
    n = len(examples)
    m = len(live)
    cond_loss = np.full(n, np.nan)
    prior_loss = np.full(n, np.nan)
    n_tokens = np.zeros(n, dtype=np.int64)
    if m:
        cond_loss[live] = sums[:m] / counts[:m]
        prior_loss[live] = sums[m:] / counts[m:]
        n_tokens[live] = counts[:m]
    ifd = np.exp(cond_loss - prior_loss)
    nan_idx = np.flatnonzero(np.isnan(ifd)).astype(np.int64)
    if nan_idx.size:
        warnings.warn(f"ifd_scores: {nan_idx.size} of {n} examples have no response token left "
                      f"to score (first: {int(nan_idx[0])}); their IFD is NaN (see "
                      "result.nan_indices).", ScoringWarning, stacklevel=2)
    return IFDResult(ifd, cond_loss, prior_loss, n_tokens, truncated, nan_idx)

