"""Scale out on Ray: scoring and embedding with Ray Data (:func:`score`).

Needs the ``ray`` extra; ray is imported when a function runs, not when this package is.
"""
from .scoring import RayScorer, ScoreRun, load_scores, score

__all__ = ["RayScorer", "ScoreRun", "load_scores", "score"]
