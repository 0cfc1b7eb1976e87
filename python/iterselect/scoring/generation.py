"""Batched generation with left padding (answers for kMQ's gold-vs-generated comparisons)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_float, check_int, param_error
from ._common import check_model, check_tokenizer, max_positions, model_device, pad_id
from .batching import check_batch_tokens, pad_batch, plan_batches, run_batches
from .formatting import FormattedExamples, format_prompts


@dataclass(frozen=True, eq=False)
class GenerationResult:
    """Generated continuations, in input order.

    Attributes
    ----------
    texts : tuple of str
        The new text only (the prompt is not repeated), special tokens removed.
    n_new_tokens : ndarray of int64
        Tokens generated, up to and including the EOS token.
    finished : ndarray of bool
        Whether generation stopped at EOS (False: it hit ``max_new_tokens``).
    prompt_truncated : ndarray of bool
        Prompts whose start was cut to fit ``max_length - max_new_tokens``.
    """

    texts: tuple
    n_new_tokens: np.ndarray
    finished: np.ndarray
    prompt_truncated: np.ndarray


def generate(model, tokenizer, prompts, *, max_new_tokens, template="alpaca", do_sample=False,
             temperature=1.0, top_p=1.0, seed=0, batch_size=32, batch_tokens=16384,
             max_length=None, add_special_tokens=None, progress=True):
    """Generate a continuation for every prompt, in length-sorted left-padded batches.

    Parameters
    ----------
    model : transformers causal language model
    tokenizer : transformers tokenizer
    prompts : list of str, list of records, or FormattedExamples
        Strings are used verbatim; records are formatted as prompts by
        :func:`format_prompts` (Alpaca records need no ``output``; a conversation is answered
        after its last user turn).
    max_new_tokens : int
    template : {"alpaca", "chat"} or callable, default="alpaca"
    do_sample : bool, default=False
        Greedy decoding when False (``temperature`` and ``top_p`` are then ignored).
    temperature, top_p : float
        Sampling parameters.
    seed : int, default=0
        Seeds sampling (the global torch RNG is restored afterwards). Sampled outputs depend on
        how prompts are batched, so the same seed and the same inputs give the same texts.
    batch_size : int, default=32
        Most prompts per batch.
    batch_tokens : int, default=16384
        Token budget per batch: rows × (longest prompt + ``max_new_tokens``).
    max_length : int, optional
        Longest prompt + generation; prompts are cut at their start to fit. Defaults to the
        model's position limit.
    add_special_tokens : bool, optional
        Whether prompts are tokenized with special tokens (e.g. Llama's BOS). Defaults to True,
        except for the chat template (whose rendering carries its own).
    progress : bool, default=True

    Returns
    -------
    GenerationResult
        ``texts``, ``n_new_tokens``, ``finished``, ``prompt_truncated``.

    Examples
    --------
    >>> from iterselect.scoring import generate
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> out = generate(model, tok, ["Once upon a time", "The cat"], max_new_tokens=4,
    ...                progress=False)
    >>> len(out.texts), bool((out.n_new_tokens <= 4).all())
    (2, True)
    """
    import torch

    func = "generate"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    max_new_tokens = check_int(max_new_tokens, "max_new_tokens", func, low=1)
    check_choice(do_sample, "do_sample", func, (True, False))
    temperature = check_float(temperature, "temperature", func, low=0, low_open=True)
    top_p = check_float(top_p, "top_p", func, low=0, high=1, low_open=True)
    seed = check_int(seed, "seed", func, low=0)
    batch_size = check_int(batch_size, "batch_size", func, low=1)
    batch_tokens = check_batch_tokens(batch_tokens, func)
    check_choice(progress, "progress", func, (True, False))
    limit = max_positions(model) if max_length is None else \
        check_int(max_length, "max_length", func, low=max_new_tokens + 1)
    if limit is not None and limit <= max_new_tokens:
        raise param_error(func, "max_new_tokens", f"less than the model's limit ({limit})",
                          max_new_tokens)

    if isinstance(prompts, FormattedExamples):
        chat = prompts.template == "chat"
        texts = [ex.prompt for ex in prompts]
    elif (isinstance(prompts, (list, tuple)) and prompts
          and all(isinstance(p, str) for p in prompts)):
        chat = False
        texts = list(prompts)
    else:
        chat = template == "chat"
        try:
            texts = format_prompts(prompts, template, tokenizer=tokenizer)
        except (TypeError, ValueError) as e:
            msg = str(e).replace("'records' parameter of format_prompts",
                                 "'prompts' parameter of generate")
            raise type(e)(msg.replace("parameter of format_prompts",
                                      "parameter of generate")) from None
    if add_special_tokens is None:
        add_special_tokens = not chat
    check_choice(add_special_tokens, "add_special_tokens", func, (True, False))

    seqs, cut = [], []
    room = None if limit is None else limit - max_new_tokens
    encoded = tokenizer(texts, add_special_tokens=add_special_tokens, verbose=False)["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids:
            raise param_error(func, "prompts", "prompts that give at least one token",
                              f"no tokens for the prompt at index {i}")
        c = room is not None and len(ids) > room
        seqs.append(np.asarray(ids[-room:] if c else ids, dtype=np.int64))
        cut.append(c)

    eos = tokenizer.eos_token_id
    pid = pad_id(tokenizer)
    device = model_device(model)
    gen_kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=pid)
    if eos is not None:
        gen_kwargs["eos_token_id"] = eos
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p)
    else:  # explicit greedy settings silence warnings about a model's sampling defaults
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)

    def step(batch):
        ids, mask, _ = pad_batch([seqs[i] for i in batch], pid, "left")
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             **gen_kwargs)
        new = out[:, ids.shape[1]:].cpu().numpy()
        results = []
        for row in new:
            stop = np.flatnonzero(row == eos) if eos is not None else np.array([])
            done = bool(stop.size)
            toks = row[: int(stop[0]) + 1] if done else row
            text = tokenizer.decode(toks, skip_special_tokens=True)
            results.append((text, len(toks), done))
        return results

    was_training = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            lengths = [len(s) + max_new_tokens for s in seqs]
            out = run_batches(plan_batches(lengths, batch_tokens, batch_size), step, len(seqs),
                              progress=progress, desc="generate")
    finally:
        if was_training:
            model.train()
    return GenerationResult(tuple(o[0] for o in out), np.array([o[1] for o in out], dtype=np.int64),
                            np.array([o[2] for o in out], dtype=bool), np.asarray(cut, dtype=bool))
