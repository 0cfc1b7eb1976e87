"""Warnings and exceptions of iterselect."""
from __future__ import annotations


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at its iteration limit without meeting its convergence rule.

    Raised (as a warning) by :func:`iterselect.affinity_propagation` when the exemplar set did
    not stay fixed for ``convergence_iter`` iterations within ``max_iter``; the result then says
    ``converged=False``.
    """


class MemoryModeWarning(UserWarning):
    """A default chose another mode than usual to fit the memory available, e.g. InsBank's
    sparse affinity propagation for a round too large for the dense one. The message names the
    setting that makes the choice explicit."""


def param_error(func: str, name: str, expected: str, got, exc=ValueError) -> Exception:
    """Build the standard error for parameter ``name`` of ``func``."""
    return exc(f"The '{name}' parameter of {func} must be {expected}. Got {got!r} instead.")
