"""Warnings and exceptions of iterselect."""
from __future__ import annotations


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at its iteration limit without meeting its convergence rule.

    Raised (as a warning) by :func:`iterselect.affinity_propagation` when the exemplar set did
    not stay fixed for ``convergence_iter`` iterations within ``max_iter``; the result then says
    ``converged=False``.
    """


def param_error(func: str, name: str, expected: str, got, exc=ValueError) -> Exception:
    """Build the standard error for parameter ``name`` of ``func``."""
    return exc(f"The '{name}' parameter of {func} must be {expected}. Got {got!r} instead.")
