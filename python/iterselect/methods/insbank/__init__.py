"""InsBank / PIBE (Shi et al., 2025, "InsBank: Evolving Instruction Subset for Ongoing Alignment",
Progressive Instruction Bank Evolution): a ranked instruction bank kept up to date as datasets
arrive.

The algorithm (:class:`InsBank`, one round at a time) is in ``_algorithm``; what depends on a
round's scale (dense or sparse affinity propagation, the history matrix for either, the
representation's normalization) in ``_round``; the run over arriving datasets in ``_run``,
their parsing in ``_arrivals`` and what a run keeps on disk beside its state in
``_persistence``.
"""
from ..baselines import instruction_text
from ._algorithm import Bank, BankHistory, InsBank, InsBankRound, InsBankRoundResult, minmax

__all__ = ["Bank", "BankHistory", "InsBank", "InsBankRoundResult", "instruction_text", "minmax"]
