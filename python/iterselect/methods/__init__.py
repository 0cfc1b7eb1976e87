"""The model-in-the-loop methods (DiverseEvol, IterIT, iterative kMQ, InsBank/PIBE) and the
baselines their papers compare with.

Each method is a class whose ``select_round(...)`` is one selection step on precomputed
embeddings or scores, and whose ``run(...)`` trains, scores and re-selects, saving its state in a
run directory (:mod:`iterselect.runs`) after every round. Needs the ``torch`` extra for ``run``
(InsBank's ``run`` trains nothing; it needs torch only to compute MiniLM embeddings).

Baselines share one shape, ``(X or records, k, *, ...)`` returning a :class:`BaselineResult`
with ``indices`` in selection order.
"""
from ._method_run import MethodRun, MethodRunResult, TrainConfig
from .baselines import (BaselineResult, deita_select, graphfilter_select, ifd_topk,
                        kcenter_quality_select, kcenter_select, knn_distance, knn_quality_select,
                        longest_response, random_select)
from .cluster_baselines import (kmeans_closest_select, kmeans_random_select, kmq_select,
                                qdit_select)
from .diverse_evol import DiverseEvol
from .insbank import Bank, BankHistory, InsBank, InsBankRound, InsBankRoundResult
from .iterit import IterIT
from .kmq import IterativeKMQ
from .uncertainty import least_confidence_select, margin_select

__all__ = [
    "Bank", "BankHistory", "BaselineResult", "DiverseEvol", "InsBank", "InsBankRoundResult",
    "IterIT", "IterativeKMQ", "MethodRunResult", "TrainConfig", "deita_select",
    "graphfilter_select", "ifd_topk", "kcenter_quality_select", "kcenter_select",
    "kmeans_closest_select", "kmeans_random_select", "kmq_select", "knn_distance",
    "knn_quality_select", "least_confidence_select", "longest_response", "margin_select",
    "qdit_select", "random_select",
]
