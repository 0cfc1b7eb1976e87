"""The model-in-the-loop methods (DiverseEvol, IterIT, iterative kMQ, InsBank/PIBE) and the
static baselines they are compared with.

Each method is a class whose ``select_round(...)`` is one selection step on precomputed
embeddings or scores, and whose ``run(...)`` trains, scores and re-selects, saving its state in a
run directory (:mod:`iterselect.runs`) after every round. Needs the ``torch`` extra for ``run``
(InsBank's ``run`` trains nothing; it needs torch only to compute MiniLM embeddings).
"""
from ._method_run import MethodRun, MethodRunResult, TrainConfig
from .baselines import (BaselineResult, deita_select, ifd_topk, kcenter_select, knn_distance,
                        longest_response, random_select)
from .diverse_evol import DiverseEvol
from .insbank import Bank, BankHistory, InsBank, InsBankRound, InsBankRoundResult
from .iterit import IterIT
from .kmq import IterativeKMQ

__all__ = [
    "Bank", "BankHistory", "BaselineResult", "DiverseEvol", "InsBank", "InsBankRoundResult", "IterIT",
    "IterativeKMQ", "MethodRunResult", "TrainConfig", "deita_select",
    "ifd_topk", "kcenter_select", "knn_distance", "longest_response", "random_select",
]
