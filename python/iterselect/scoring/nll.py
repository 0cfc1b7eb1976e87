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

On CPU, Llama-family models run through :mod:`~iterselect.scoring.packed_forward` instead of
their own forward (``engine="auto"``): sequences packed end to end, no padding, fused bf16
element-wise kernels; ``engine="model"`` always calls the model.
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np

from ._common import accepts
from .._validation import check_choice
from .batching import autocast_dtype, check_batch_tokens, inference, pad_batch, plan_batches, run_batches
from .packed_forward import packed_forward_for

# Rows of logits upcast to float32 and log-softmaxed at a time: on CUDA, large chunks (few
# launches; the chunk bounds the extra memory); on CPU, chunks that stay in cache: 64 rows of a
# 32,000-token vocabulary took a fifth of the time of one 800-row chunk (measured with AMX).
_CE_ROWS = {"cuda": 4096, "cpu": 64}

# Tokens a packed batch holds by default (packed batches have no padding). With a 134M Llama
# on an AMX Xeon, oneDNN ran every product at 2,000-2,600 GFLOP/s on 2,048 rows; on 4,096
# the fused gate/up product fell to ~1,100, and below ~1,400 rows the 768-wide ones ran on
# one thread.
PACKED_BATCH_TOKENS = 2048

ENGINES = ("auto", "packed", "model")


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


def check_engine(engine, func: str) -> str:
    """``engine`` validated: "auto", "packed" or "model" (see :func:`masked_nll`)."""
    return check_choice(engine, "engine", func, ENGINES)


def _per_sequence(nll, rows, n, device):
    """Token NLLs summed into their ``n`` sequences (``rows`` says whose each one is)."""
    import torch

    sums = torch.zeros(n, dtype=torch.float64, device=device)
    sums.index_add_(0, rows.to(device), nll.double())
    return sums.cpu().numpy().tolist()


def masked_nll(model, sequences, scored, *, pad_id: int, padding_side: str = "right",
               batch_tokens: int | None = None, progress: bool = True, desc: str | None = None,
               autocast=None, engine: str = "auto"):
    """Sum of token NLLs over ``scored`` positions of each sequence.

    Parameters
    ----------
    model : causal language model (transformers)
    sequences : list of 1-D int arrays
    scored : list of 1-D bool arrays, same lengths; ``scored[i][0]`` must be False
    pad_id, padding_side, batch_tokens, progress, desc, autocast
        Batching and precision options (see :mod:`iterselect.scoring.batching`).
        ``batch_tokens`` bounds a padded batch's ``rows × longest`` (default: 1,024 on CPU,
        8,192 on CUDA), or a packed batch's tokens (default :data:`PACKED_BATCH_TOKENS`).
    engine : {"auto", "packed", "model"}, default="auto"
        "packed": iterselect's packed CPU forward for Llama-family models
        (:mod:`~iterselect.scoring.packed_forward`; a ValueError says why a model cannot
        use it); "model": the model's own forward on padded batches; "auto": packed where
        the model supports it, else the model's forward.

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
    check_engine(engine, "masked_nll")
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    first = next((i for i, m in enumerate(scored) if len(m) and m[0]), None)
    if first is not None:
        raise ValueError(f"masked_nll: scored[{first}][0] is True, but a sequence's first token "
                         "has nothing before it to predict it from; set it to False")
    state = {"mode": _logits_mode(model)}
    pass_positions = accepts(model, "position_ids")
    if not pass_positions:
        padding_side = "right"  # without position ids, left padding would shift positions
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    lengths = [len(s) for s in sequences]

    with inference(model, autocast) as device:
        packed = None
        if engine != "model":
            compute = autocast_dtype(model, autocast) or next(model.parameters()).dtype
            packed, why = packed_forward_for(model, compute, max(lengths))
            if packed is None and engine == "packed":
                raise ValueError(f"masked_nll: engine='packed' cannot run this model: {why}; "
                                 "use engine='auto' or 'model'")
        if packed is not None:
            return _as_arrays(_run_packed(packed, sequences, scored, batch_tokens, progress, desc))
        batch_tokens = check_batch_tokens(batch_tokens, "masked_nll", model)

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
            pieces = [F.cross_entropy(logits[j:j + chunk].float(), targets[j:j + chunk],
                                      reduction="none") for j in range(0, len(targets), chunk)]
            # a batch may score no token at all (its sums are then 0)
            nll = torch.cat(pieces) if pieces else torch.zeros(0, device=device)
            counts = target_mask.sum(1)
            return list(zip(_per_sequence(nll, rows, len(batch), device), counts.numpy().tolist()))

        return _as_arrays(run_batches(plan_batches(lengths, batch_tokens), step, n,
                                      progress=progress, desc=desc))


def _as_arrays(out):
    """(sums, counts) arrays from the per-sequence ``(sum, count)`` pairs of the batches."""
    return (np.array([o[0] for o in out], dtype=np.float64),
            np.array([o[1] for o in out], dtype=np.int64))


def _run_packed(packed, sequences, scored, batch_tokens, progress, desc):
    """:func:`masked_nll`'s batches through a :class:`~.packed_forward.PackedForward`."""
    import torch

    lengths = [len(s) for s in sequences]
    budget = PACKED_BATCH_TOKENS if batch_tokens is None else batch_tokens

    def step(batch):
        sizes = torch.as_tensor([lengths[i] for i in batch])
        ids = torch.as_tensor(np.concatenate([sequences[i] for i in batch]).astype(np.int64))
        target = torch.as_tensor(np.concatenate([scored[i] for i in batch]).astype(bool))
        keep = torch.zeros_like(target)
        keep[:-1] = target[1:]  # logits at t-1 predict token t; never across sequences,
        # since every sequence's first token is unscored
        # autocast off: the packed forward casts where the autocast policy would; inference
        # mode also under autocast (whose no_grad region is for its cast cache, unused here)
        with torch.inference_mode(), torch.autocast("cpu", enabled=False):
            hidden = packed.hidden_states(ids, sizes.tolist())[keep]
            nll = packed.token_nll(hidden, ids[target], _CE_ROWS["cpu"])
        rows = torch.repeat_interleave(torch.arange(len(batch)), sizes)[target]
        counts = [int(np.count_nonzero(scored[i])) for i in batch]
        return list(zip(_per_sequence(nll, rows, len(batch), "cpu"), counts))

    return run_batches(plan_batches(lengths, budget, packed=True), step, len(sequences),
                       progress=progress, desc=desc)
