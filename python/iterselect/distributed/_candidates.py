"""The driver's side of an exact sharded greedy: several exact picks from one round trip.

Each round every shard sends its ``m`` best candidates with their exact values and its *rest
bound*: the exact value (and index) of its best candidate after those, an upper bound on every
candidate it did not send. The driver brings the candidates up to date after each pick it
makes (the selector's kernel, on the candidates alone) and picks the best one again as long as
it beats every shard's rest bound: it is then the global argmax the single-process greedy would
pick (larger value, ties to the lower global index), because no candidate left on a shard can
be larger. When it does not, the round ends: the picks are broadcast and the shards answer
again. The first candidate of a round always beats every rest bound, so each round picks.
"""
from __future__ import annotations

import numpy as np


class CandidatePool:
    """Candidates of one round. ``answers[s] = (local indices, values, rest local index or -1,
    rest value, ...)`` from shard s, whose first row is ``offsets[s]``."""

    def __init__(self, answers, offsets):
        self.ids = np.concatenate([np.asarray(a[0], np.int64) + offsets[s] for s, a in enumerate(answers)])
        self.values = np.concatenate([np.asarray(a[1], np.float64) for a in answers])
        self.shard = np.concatenate([np.full(len(a[0]), s, np.int64) for s, a in enumerate(answers)])
        self.position = np.concatenate([np.arange(len(a[0]), dtype=np.int64) for a in answers])
        self.taken = np.zeros(self.ids.size, dtype=bool)
        self.rest_id, self.rest_value = -1, -np.inf
        for s, a in enumerate(answers):
            if a[2] < 0:
                continue
            g, v = int(a[2]) + int(offsets[s]), float(a[3])
            if self.rest_id < 0 or v > self.rest_value or (v == self.rest_value and g < self.rest_id):
                self.rest_id, self.rest_value = g, v

    def best(self) -> int:
        """Position of the best candidate not taken (value, then lower index), or -1."""
        free = np.flatnonzero(~self.taken)
        if free.size == 0:
            return -1
        v = self.values[free]
        ties = free[v == v.max()]
        return int(ties[np.argmin(self.ids[ties])])

    def certified(self, j: int) -> bool:
        """Whether candidate j is the global best: it beats every candidate left on the shards."""
        if self.rest_id < 0:
            return True
        v = self.values[j]
        return v > self.rest_value or (v == self.rest_value and self.ids[j] < self.rest_id)

    @property
    def exhausted(self) -> bool:
        """No candidate left anywhere: every one sent is taken and no shard has more."""
        return self.rest_id < 0 and bool(self.taken.all())

    def free(self) -> np.ndarray:
        return np.flatnonzero(~self.taken)
