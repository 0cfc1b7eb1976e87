"""DiverseEvol's uncertainty baselines (Wu et al., 2023, §4.1): Least-Confidence and
Margin-Sampling, which pick the samples the current model is least sure of.

| | paper (§4.1) | published code (OFA-Sys/DiverseEvol) | here |
|---|---|---|---|
| Least-Confidence | "the average max-logit value across the predicted token sequence", lowest first | ``LeastConfidence``: mean over every position of the Alpaca-formatted example (prompt, response, EOS) of the largest logit; the ``n`` lowest of the unlabeled pool | the same (``positions="all"``); ``positions="response"`` averages only the positions that predict response tokens |
| Margin-Sampling | "logits ... show minimal differences in the likelihood of top two probable tokens" | ``MarginSampling``: mean over every position of (largest - second largest logit), lowest first | the same (``margin_of="logits"``); ``margin_of="probs"`` takes the margin of the softmax probabilities |
| ties | not stated | ``torch.sort`` (order of equal scores unspecified) | lowest index first |
| candidates | the unselected pool Q_t | the unlabeled data | every record not in ``selected`` |
"""
from __future__ import annotations

import numpy as np

from .._validation import check_indices, check_int, param_error
from .baselines import BaselineResult


def _candidates(records, k, selected, func):
    if isinstance(records, (str, bytes)) or not hasattr(records, "__len__") or len(records) == 0:
        raise param_error(func, "records", "a non-empty list of records", type(records).__name__,
                          TypeError)
    n = len(records)
    sel = check_indices([] if selected is None else selected, "selected", func, n)
    cand = np.setdiff1d(np.arange(n), sel)
    k = check_int(k, "k", func, 1, cand.size)
    return cand, k


def _lowest(values, cand, k, method, func) -> BaselineResult:
    """The ``k`` candidates of lowest value, ties by lowest index; NaN (nothing to average)
    left out and counted."""
    ok = ~np.isnan(values)
    if int(ok.sum()) < k:
        raise ValueError(f"{func}: only {int(ok.sum())} of {values.size} candidates could be "
                         f"scored (the others have no position to average) but k is {k}")
    order = np.lexsort((cand[ok], values[ok]))[:k]
    return BaselineResult(cand[ok][order], values[ok][order], method,
                          n_dropped=int((~ok).sum()))


def _confidence(records, cand, model, tokenizer, kwargs):
    from ..scoring.confidence import token_confidence

    return token_confidence(model, tokenizer, [records[i] for i in cand], **kwargs)


def least_confidence_select(records, k, *, model, tokenizer, selected=None, positions="all",
                            template="alpaca", max_length=None, batch_tokens=None,
                            progress=False) -> BaselineResult:
    """Least-Confidence (DiverseEvol §4.1): the ``k`` records not in ``selected`` whose mean
    largest logit under ``model`` is lowest (see :func:`~iterselect.scoring.token_confidence`).

    Parameters
    ----------
    records : list of records (Alpaca, conversations, (prompt, response) pairs)
    k : int
    model, tokenizer : the current causal LM and its tokenizer
    selected : int array, optional
        The pool already chosen (never picked again).
    positions : {"all", "response"}, default="all"
    template, max_length, batch_tokens, progress
        As for :func:`~iterselect.scoring.token_confidence`.

    Returns
    -------
    BaselineResult
        ``scores``: the mean max-logit of each pick, ascending.

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> data = [("Q: 2+2?", " 4"), ("Name a fruit.", " Apple."), ("Hi", " Hello there.")]
    >>> r = least_confidence_select(data, 2, model=model, tokenizer=tok, selected=[0])
    >>> sorted(r.indices.tolist())
    [1, 2]
    """
    func = "least_confidence_select"
    cand, k = _candidates(records, k, selected, func)
    conf = _confidence(records, cand, model, tokenizer, dict(
        positions=positions, template=template, max_length=max_length,
        batch_tokens=batch_tokens, progress=progress))
    return _lowest(conf.mean_max_logit, cand, k, "least-confidence", func)


def margin_select(records, k, *, model, tokenizer, selected=None, positions="all",
                  margin_of="logits", template="alpaca", max_length=None, batch_tokens=None,
                  progress=False) -> BaselineResult:
    """Margin-Sampling (DiverseEvol §4.1): the ``k`` records not in ``selected`` whose mean
    margin between the two most likely tokens is smallest (see
    :func:`~iterselect.scoring.token_confidence`; ``margin_of="logits"`` as the paper and the
    published code, ``"probs"`` for probabilities).

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> data = [("Q: 2+2?", " 4"), ("Name a fruit.", " Apple."), ("Hi", " Hello there.")]
    >>> margin_select(data, 1, model=model, tokenizer=tok).indices.shape
    (1,)
    """
    func = "margin_select"
    cand, k = _candidates(records, k, selected, func)
    conf = _confidence(records, cand, model, tokenizer, dict(
        positions=positions, margin_of=margin_of, template=template, max_length=max_length,
        batch_tokens=batch_tokens, progress=progress))
    return _lowest(conf.mean_margin, cand, k, "margin", func)


__all__ = ["least_confidence_select", "margin_select"]
