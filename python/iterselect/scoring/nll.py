"""Summed negative log-likelihood of chosen tokens, batched: the kernel of IFD and perplexity.

For each sequence and a boolean mask of the tokens to score (token ``t`` is predicted from the
logits at ``t - 1``, so token 0 is never scored), return the sum of ``-log p(token)`` and the
number of tokens scored. Logits are only computed where they are needed when the model
supports ``logits_to_keep`` (a boolean mask on transformers 5, the last ``K`` positions on
older versions), and the log-softmax runs in float32, a few thousand rows at a time.

Right padding (the default) runs the model without an attention mask: the model is causal, so
padding after a sequence cannot change its tokens' logits, and the model's unmasked causal
attention kernel (flash attention where available) does the work, skipping the masked half.
Left padding passes the attention mask and position ids instead.
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np

from ._common import accepts
from .batching import inference, pad_batch, plan_batches, run_batches

# Rows of logits upcast to float32 and log-softmaxed at a time: on CUDA, large chunks (few
# launches; the chunk bounds the extra memory); on CPU, chunks that stay in cache: 64 rows of a
# 32,000-token vocabulary took a fifth of the time of one 800-row chunk (measured with AMX).
_CE_ROWS = {"cuda": 4096, "cpu": 64}


class _DropMaskAdvice(logging.Filter):
    """transformers' advice to pass an attention mask when it sees padding, which does not
    apply to the right-padded batches here (see the module's note)."""

    def filter(self, record) -> bool:
        return "passing in an `attention_mask`" not in record.getMessage()


@contextlib.contextmanager
def _unmasked_on_purpose():
    logger = logging.getLogger("transformers.modeling_utils")
    drop = _DropMaskAdvice()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _logits_mode(model) -> str:
    """'mask' (a boolean position mask), 'tail' (last K positions) or 'full' (all logits)."""
    if not accepts(model, "logits_to_keep"):
        return "full"
    try:
        from transformers.modeling_utils import slice_logits_to_keep  # noqa: F401  (>= 5.x)
    except ImportError:
        return "tail"
    return "mask"


def masked_nll(model, sequences, scored, *, pad_id: int, padding_side: str = "right",
               batch_tokens: int = 1024, progress: bool = True, desc: str | None = None,
               autocast=None):
    """Sum of token NLLs over ``scored`` positions of each sequence.

    Parameters
    ----------
    model : causal language model (transformers)
    sequences : list of 1-D int arrays
    scored : list of 1-D bool arrays, same lengths; ``scored[i][0]`` must be False
    pad_id, padding_side, batch_tokens, progress, desc, autocast
        Batching and precision options (see :mod:`iterselect.scoring.batching`).

    Returns
    -------
    sums : ndarray of float64
    counts : ndarray of int64

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.scoring.nll import masked_nll
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer("llama")
    >>> seqs = [np.array([1, 40, 41, 42]), np.array([1, 43])]
    >>> scored = [np.array([False, False, True, True]), np.array([False, True])]
    >>> sums, counts = masked_nll(model, seqs, scored, pad_id=0, progress=False)
    >>> counts.tolist(), bool((sums > 0).all())   # NLL summed over the scored tokens
    ([2, 1], True)
    """
    import torch
    import torch.nn.functional as F

    n = len(sequences)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    state = {"mode": _logits_mode(model)}
    pass_positions = accepts(model, "position_ids")
    if not pass_positions:
        padding_side = "right"  # without position ids, left padding would shift positions
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    lengths = [len(s) for s in sequences]

    with inference(model, autocast) as device:

        def forward(kwargs, keep):
            """Logits at the ``keep`` positions, shape (keep.sum(), vocab)."""
            b, t = keep.shape
            kwargs = dict(kwargs)
            mode = state["mode"]
            if mode == "mask":
                kwargs["logits_to_keep"] = keep.to(device)
            elif mode == "tail":
                cols = torch.nonzero(keep.any(0))
                kwargs["logits_to_keep"] = t - int(cols[0]) if len(cols) else 1
            try:
                with _unmasked_on_purpose() if "attention_mask" not in kwargs else contextlib.nullcontext():
                    logits = model(**kwargs).logits
            except TypeError as e:
                if mode == "full" or "logits_to_keep" not in str(e):
                    raise
                state["mode"] = "full"
                return forward({k: v for k, v in kwargs.items() if k != "logits_to_keep"}, keep)
            n_keep = int(keep.sum())
            if logits.ndim == 2 and logits.shape[0] == n_keep:
                return logits
            if logits.ndim == 3 and logits.shape[0] == b and logits.shape[1] <= t:
                return logits[keep[:, t - logits.shape[1]:].to(device)]
            raise RuntimeError(f"masked_nll: the model returned logits of shape "
                               f"{tuple(logits.shape)} for a batch of shape {(b, t)}")

        def step(batch):
            ids, mask, positions = pad_batch([sequences[i] for i in batch], pad_id, padding_side)
            target_mask, _, _ = pad_batch([scored[i] for i in batch], 0, padding_side,
                                          dtype=torch.bool)
            keep = torch.zeros_like(target_mask)
            keep[:, :-1] = target_mask[:, 1:]  # logits at t-1 predict token t
            targets = ids[target_mask]
            rows = torch.nonzero(target_mask, as_tuple=True)[0]
            kwargs = {"input_ids": ids.to(device), "use_cache": False}
            if padding_side == "left":
                kwargs["attention_mask"] = mask.to(device)
                if pass_positions:
                    kwargs["position_ids"] = positions.to(device)
            # Right padding needs no mask: in a causal model, tokens after a sequence cannot
            # change it, so the model runs its unmasked causal kernel, as for one sequence.
            logits = forward(kwargs, keep)
            targets = targets.to(device)
            chunk = _CE_ROWS.get(device.type, _CE_ROWS["cuda"])
            nll = torch.cat([F.cross_entropy(logits[j:j + chunk].float(), targets[j:j + chunk],
                                             reduction="none")
                             for j in range(0, len(targets), chunk)])
            sums = torch.zeros(len(batch), dtype=torch.float64, device=device)
            sums.index_add_(0, rows.to(device), nll.double())
            counts = target_mask.sum(1)
            return list(zip(sums.cpu().numpy().tolist(), counts.numpy().tolist()))

        out = run_batches(plan_batches(lengths, batch_tokens), step, n, progress=progress,
                          desc=desc)
    sums = np.array([o[0] for o in out], dtype=np.float64)
    counts = np.array([o[1] for o in out], dtype=np.int64)
    return sums, counts
