"""The batching engine under every scorer.

Sequences are sorted by length (longest first, so an out-of-memory shows up on the first
batch), grouped into batches whose padded size ``rows × longest`` stays within a token
budget, padded on the left or the right, and run under ``torch.inference_mode`` (bf16
autocast on CUDA for a float32 model; CPU runs in the model's own precision, float32 for the
models :func:`~iterselect.scoring.load_model` gives, unless ``autocast="bfloat16"`` asks for
bf16 matrix products there too: AVX-512-BF16 or AMX where the CPU has them; a CPU without
AVX-512 warns that it is slower than float32). Results come back in input order. On a
CUDA out-of-memory error the failing batch is split in two and retried.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .._validation import check_choice, check_int


def plan_batches(lengths, batch_tokens: int, max_batch_size: int | None = None,
                 packed: bool = False) -> list[np.ndarray]:
    """Group indices by descending length so that ``len(batch) * longest <= batch_tokens``
    (padded batches), or, with ``packed``, so that the batch's lengths sum to at most
    ``batch_tokens`` (sequences end to end, no padding).

    A sequence longer than the budget gets a batch of its own. Ties keep input order.

    Examples
    --------
    >>> from iterselect.scoring.batching import plan_batches
    >>> [b.tolist() for b in plan_batches([3, 9, 4, 4, 1], batch_tokens=10)]
    [[1], [2, 3], [0, 4]]
    >>> [b.tolist() for b in plan_batches([5, 2, 2, 2, 9], batch_tokens=10, packed=True)]
    [[4], [0, 1, 2], [3]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, current, longest, total = [], [], 0, 0
    for i in order:
        n = max(int(lengths[i]), 1)
        size = total + n if packed else max(longest, n) * (len(current) + 1)
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (size > batch_tokens or full):
            batches.append(np.asarray(current, dtype=np.int64))
            current, longest, total = [], 0, 0
        current.append(int(i))
        longest, total = max(longest, n), total + n
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


def pad_batch(sequences, pad_value: int, side: str = "right", dtype=None):
    """Stack 1-D int sequences into a (B, T) tensor plus its attention mask.

    Returns ``(tensor, mask, position_ids)``; positions count real tokens only, so a
    left-padded row sees the same positions as the unpadded sequence.

    Examples
    --------
    >>> from iterselect.scoring.batching import pad_batch
    >>> ids, mask, pos = pad_batch([[5, 6, 7], [8]], pad_value=0, side="left")
    >>> ids.tolist(), mask.tolist(), pos.tolist()
    ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]], [[0, 1, 2], [0, 0, 0]])
    """
    import torch

    longest = max(len(s) for s in sequences)
    out = torch.full((len(sequences), longest), pad_value, dtype=dtype or torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for r, s in enumerate(sequences):
        n = len(s)
        if n == 0:
            continue
        t = torch.as_tensor(np.asarray(s))
        if side == "left":
            out[r, longest - n:] = t
            mask[r, longest - n:] = 1
        else:
            out[r, :n] = t
            mask[r, :n] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return out, mask, positions


def _oom_types():
    import torch

    types = []
    for name in ("OutOfMemoryError",):
        t = getattr(torch, name, None) or getattr(torch.cuda, name, None)
        if t is not None:
            types.append(t)
    return tuple(types)


def run_batches(batches, fn, n: int, *, progress: bool = True, desc: str | None = None,
                on_oom=None) -> list:
    """Call ``fn(indices)`` for every batch and place its per-index results in input order.

    ``fn`` returns a sequence with one result per index. When it raises an out-of-memory
    error the batch is split into halves that are retried (a batch of one re-raises).
    """
    import torch
    from tqdm.auto import tqdm

    oom = _oom_types()
    results = [None] * n
    stack = [np.asarray(b) for b in reversed(batches)]
    bar = tqdm(total=int(sum(len(b) for b in batches)), desc=desc, disable=not progress,
               leave=False, unit="seq")
    try:
        while stack:
            batch = stack.pop()
            try:
                out = fn(batch)
            except oom as e:
                if len(batch) == 1:
                    raise RuntimeError(
                        f"{desc or 'scoring'}: one sequence alone does not fit in memory "
                        "(lower max_length)") from e
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if on_oom is not None:
                    on_oom(len(batch))
                half = len(batch) // 2
                stack.append(batch[half:])
                stack.append(batch[:half])
                continue
            for j, i in enumerate(batch):
                results[int(i)] = out[j]
            bar.update(len(batch))
    finally:
        bar.close()
    return results


AUTOCAST_CHOICES = (None, "bfloat16", "float16", "off")


def check_autocast(autocast, func: str):
    """``autocast`` validated: None (the device's default), "bfloat16", "float16" or "off"."""
    return check_choice(autocast, "autocast", func, AUTOCAST_CHOICES)


def autocast_dtype(model, autocast=None):
    """The dtype :func:`inference` autocasts ``model``'s matrix products to, or None.

    Examples
    --------
    >>> from iterselect.scoring.batching import autocast_dtype
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, _ = toy_model_and_tokenizer("llama")
    >>> autocast_dtype(model), autocast_dtype(model, "bfloat16")   # a CPU model
    (None, torch.bfloat16)
    """
    import torch

    from ._common import model_device, model_dtype

    if autocast is None:
        use = (model_device(model).type == "cuda" and model_dtype(model) == torch.float32
               and torch.cuda.is_bf16_supported())
        return torch.bfloat16 if use else None
    return None if autocast == "off" else getattr(torch, autocast)


@contextlib.contextmanager
def inference(model, autocast=None):
    """``torch.inference_mode`` (``no_grad`` under autocast), eval mode, and autocast.

    ``autocast=None`` runs bf16 autocast for a float32 model on CUDA and nothing elsewhere;
    "bfloat16" or "float16" runs autocast to that type on the model's device, CPU included
    (matrix products in half precision, accumulating in float32; losses stay float32);
    "off" runs the model in its own precision everywhere.
    """
    import torch

    from ._common import model_device

    was_training = model.training
    model.eval()
    device = model_device(model)
    target = autocast_dtype(model, autocast)
    use = target is not None
    if device.type == "cpu":
        _warn_if_software_half(model, target)
    try:
        # Autocast caches each weight's cast only outside inference mode (under it, every
        # call re-casts every weight: a quarter of a bf16 run on CPU), so autocast runs under
        # no_grad, in one region for the whole run.
        with torch.no_grad() if use else torch.inference_mode():
            if use:
                with torch.autocast(device.type, dtype=target):
                    yield device
            else:
                yield device
    finally:
        if was_training:
            model.train()


def cpu_multiplies_natively(dtype) -> bool:
    """Whether torch multiplies ``dtype`` matrices on this CPU with its fast (oneDNN) kernels.

    torch's own checks, which decide whether its oneDNN kernels run: bfloat16 on AVX-512
    (BW/VL/DQ; AVX-512-BF16 and AMX-BF16 multiply it directly), float16 on AVX-512-FP16 or
    AMX-FP16 (as of torch 2.13). Without them torch falls back to kernels several times slower than float32's
    (7x on a 1024x768x3072 product on a Zen 3 EPYC with AVX2 only). Float32 is native
    everywhere.

    Examples
    --------
    >>> import torch
    >>> from iterselect.scoring.batching import cpu_multiplies_natively
    >>> cpu_multiplies_natively(torch.float32)
    True
    >>> cpu_multiplies_natively(torch.bfloat16) in (True, False)   # depends on the CPU
    True
    """
    import torch

    checks = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}
    if dtype not in checks:
        return True
    check = getattr(torch.ops.mkldnn, checks[dtype], None)
    # a torch without oneDNN's check: assume native rather than warn on every call
    return True if check is None else bool(check())


def _warn_if_software_half(model, autocast_to) -> None:
    """A :class:`~iterselect.PerformanceWarning` when the products of a CPU run (autocast's
    type, else the weights') are in a half precision this CPU's torch multiplies slowly."""
    import warnings

    import torch

    from ..exceptions import PerformanceWarning
    from ._common import model_dtype

    dtype = model_dtype(model) if autocast_to is None else autocast_to
    if dtype not in (torch.bfloat16, torch.float16) or cpu_multiplies_natively(dtype):
        return
    name = str(dtype).removeprefix("torch.")
    needs = "AVX-512" if name == "bfloat16" else "AVX-512-FP16 or AMX-FP16"
    what, fix = ((f"autocast={name!r}", "leave autocast=None (float32 on a CPU)") if autocast_to is not None
                 else (f"the model's weights are {name}", "load the model in float32 (model.float())"))
    warnings.warn(f"{what}: this CPU has no {needs}, so torch multiplies {name} matrices in its "
                  f"fallback kernels, several times slower than float32. On this CPU {fix}, or run "
                  f"on a CPU or GPU that has them.", PerformanceWarning, stacklevel=4)


GPU_BATCH_TOKENS = 8192
CPU_BATCH_TOKENS = 1024


def check_batch_tokens(batch_tokens, func: str, model=None) -> int:
    """``batch_tokens`` validated; None picks the device's default.

    On CUDA the default is 8,192 tokens a batch. On CPU it is 1,024: measured on Dolly with a
    small Llama, batches that stay in cache ran about twice as fast as 8,192-token ones (the
    matrix products and the log-softmax over the vocabulary become memory-bound).
    """
    if batch_tokens is None:
        from ._common import model_device

        on_cuda = model is not None and model_device(model).type == "cuda"
        return GPU_BATCH_TOKENS if on_cuda else CPU_BATCH_TOKENS
    return check_int(batch_tokens, "batch_tokens", func, low=1)
