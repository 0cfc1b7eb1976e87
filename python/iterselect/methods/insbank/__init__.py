"""InsBank / PIBE (Shi et al., 2025, "InsBank: Evolving Instruction Subset for Ongoing Alignment",
Progressive Instruction Bank Evolution).

The algorithm (:class:`InsBank`, one arrival at a time) is in ``_algorithm``; the run over
arriving datasets in ``_run``, their parsing in ``_arrivals`` and what a run keeps on disk
beside its state in ``_persistence``.
"""
from ._algorithm import Bank, BankHistory, InsBank, InsBankRound, InsBankRoundResult, minmax

__all__ = ["Bank", "BankHistory", "InsBank", "InsBankRoundResult", "minmax"]
