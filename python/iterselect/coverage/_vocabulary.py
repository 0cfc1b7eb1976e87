"""The n-gram vocabulary of a TF-IDF matrix, kept as one UTF-8 buffer.

A million-document vocabulary holds tens of millions of n-grams; as Python strings that is
gigabytes and seconds to build. :class:`NgramVocabulary` keeps the C++ buffer (terms in column
order, each followed by ``"\\n"``) and decodes on access.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class NgramVocabulary(Sequence):
    """The n-gram of each column, in column order (code-point order, as scikit-learn sorts).

    A read-only sequence of str: ``len(v)``, ``v[j]``, slices, iteration, ``term in v`` and
    ``v.index(term)`` (binary search: the terms are sorted), ``v.tolist()``.
    """

    def __init__(self, utf8: np.ndarray, offsets: np.ndarray):
        self._utf8 = utf8
        self._offsets = offsets
        self._utf8.setflags(write=False)
        self._offsets.setflags(write=False)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _term(self, j: int) -> str:
        return str(self._utf8[self._offsets[j]:self._offsets[j + 1] - 1], "utf-8")

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self._term(i) for i in range(*j.indices(len(self)))]
        n = len(self)
        j = int(j)
        if j < -n or j >= n:
            raise IndexError(f"vocabulary index {j} out of range for {n} n-grams")
        return self._term(j % n)

    def tolist(self) -> list[str]:
        """All terms as a list (one decode of the whole buffer)."""
        if len(self) == 0:
            return []
        return str(self._utf8, "utf-8").split("\n")[:-1]

    def __iter__(self):
        return iter(self.tolist())

    def _bisect(self, term: str) -> int:
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._term(mid) < term:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def index(self, term, start=0, stop=None) -> int:
        """The column of ``term`` (binary search); ValueError when absent."""
        j = self._bisect(term) if isinstance(term, str) else len(self)
        stop = len(self) if stop is None else stop
        if j < len(self) and self._term(j) == term and start <= j < stop:
            return j
        raise ValueError(f"{term!r} is not in the vocabulary")

    def __contains__(self, term) -> bool:
        if not isinstance(term, str):
            return False
        j = self._bisect(term)
        return j < len(self) and self._term(j) == term

    def __eq__(self, other):
        if isinstance(other, NgramVocabulary):
            return np.array_equal(self._offsets, other._offsets) and np.array_equal(self._utf8, other._utf8)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        n = len(self)
        head = ", ".join(repr(t) for t in self[:3])
        return f"NgramVocabulary({n} n-grams: {head}{', ...' if n > 3 else ''})"
