"""The code points that Python's ``re`` treats as word characters (``\\w`` in a str pattern).

scikit-learn tokenizes with ``(?u)\\b\\w\\w+\\b``; the C++ tokenizer gets this table, built from
the running interpreter's own ``re`` module, so both agree on every code point by construction
(whatever Unicode version this Python ships).
"""
from __future__ import annotations

import functools
import re

import numpy as np

_LAST_CODE_POINT = 0x10FFFF


@functools.lru_cache(maxsize=1)
def word_ranges() -> np.ndarray:
    """Inclusive ranges ``[first, last]`` of word code points, shape (r, 2), int32, sorted.

    Built once per process (about 0.2 s) by matching ``\\w+`` over a string of every code point.
    """
    everything = "".join(map(chr, range(_LAST_CODE_POINT + 1)))
    spans = np.array([m.span() for m in re.finditer(r"\w+", everything)], dtype=np.int32).reshape(-1, 2)
    spans[:, 1] -= 1
    spans.setflags(write=False)
    return spans
