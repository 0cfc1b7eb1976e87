"""Formatted examples → token ids with a response mask, and the truncation rule.

The convention every scorer and the trainer share:

* each segment (prompt text, response text) is tokenized on its own, without special tokens,
  and the pieces are concatenated; the tokenizer's EOS token follows every response unless the
  response already ends with it (a chat template's own end-of-turn token may be the EOS);
* truncation to ``max_length`` cuts the prompt first: tokens are dropped from the start of the
  sequence, but at least one token is kept before the last response; only when the last
  response alone (with its EOS) is longer than ``max_length - 1`` is it cut at its end;
* a response token is scored when at least one token precedes it in the (truncated) sequence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Encoded:
    """Token ids of one example and which of them belong to a response."""

    ids: np.ndarray  # int64
    response: np.ndarray  # bool, same length


def encode_examples(tokenizer, examples) -> list[Encoded]:
    """Tokenize every segment separately (no special tokens); EOS after each response."""
    texts = [t for ex in examples for t, _ in ex.segments]
    pieces = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    eos = tokenizer.eos_token_id
    out = []
    k = 0
    for ex in examples:
        ids, mask = [], []
        for _, is_response in ex.segments:
            piece = list(pieces[k])
            k += 1
            if is_response and eos is not None and (not piece or piece[-1] != eos):
                piece.append(eos)
            ids.extend(piece)
            mask.extend([is_response] * len(piece))
        out.append(Encoded(np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool)))
    return out


def truncate(enc: Encoded, max_length: int | None) -> tuple[Encoded, bool]:
    """Cut ``enc`` to ``max_length`` tokens, prompt first (see the module docstring).

    Returns the window and whether anything was cut.
    """
    n = len(enc.ids)
    if max_length is None or n <= max_length:
        return enc, False
    mask = enc.response
    # start of the last response run
    last = n - 1
    while last >= 0 and not mask[last]:
        last -= 1
    run = last
    while run > 0 and mask[run - 1]:
        run -= 1
    start = max(0, min(n - max_length, run - 1)) if last >= 0 else n - max_length
    stop = start + max_length
    return Encoded(enc.ids[start:stop], mask[start:stop]), True


def scored_mask(enc: Encoded) -> np.ndarray:
    """The response tokens that have a token before them (the first token is never scored)."""
    m = enc.response.copy()
    if len(m):
        m[0] = False
    return m
