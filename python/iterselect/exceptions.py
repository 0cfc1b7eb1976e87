"""Every warning and exception class of iterselect, and the wording of a parameter error.

Parameter errors speak as scikit-learn's do: ``The 'k' parameter of kcenter_greedy must be an
int in the range [1, 15011]. Got 20000 instead.`` (:func:`param_error`; the checks that raise
them live in ``iterselect._validation``).
"""
from __future__ import annotations


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at its iteration limit without meeting its convergence rule.

    Raised (as a warning) by :func:`iterselect.affinity_propagation` when the exemplar set did
    not stay fixed for ``convergence_iter`` iterations within ``max_iter``; the result then says
    ``converged=False``.
    """


class DataError(ValueError):
    """A data file that cannot be read as instruction records; the message names file:line."""


class MemoryModeWarning(UserWarning):
    """A default chose another mode than usual to fit the memory available, e.g. InsBank's
    sparse affinity propagation for a round too large for the dense one. The message names the
    setting that makes the choice explicit."""


class PerformanceWarning(UserWarning):
    """A setting that works but runs slower on this machine than the default would, e.g. bf16
    autocast, or a bf16 model, on a CPU where torch has no fast bf16 kernels (no AVX-512). The
    message names the faster setting."""


class RunError(ValueError):
    """A run directory that cannot be used as asked (exists without resume, other config or
    inputs, in use by another process)."""


class RecordError(ValueError):
    """A malformed record; ``index`` is its position in the input."""

    def __init__(self, index: int, message: str, exc_type=ValueError):
        super().__init__(message)
        self.index = index
        self.exc_type = exc_type


class ScoringWarning(UserWarning):
    """Something was counted rather than scored (NaN scores, skipped or truncated examples)."""


def param_error(func: str, name: str, expected: str, got, exc=ValueError) -> Exception:
    """The error for parameter ``name`` of ``func``, in scikit-learn's wording.

    ``got`` is what was passed, or a description of it; either is shown as it is, unquoted
    (``str(got)``), so that a value and a description read the same way.

    Examples
    --------
    >>> param_error("kcenter_greedy", "k", "an int in the range [1, 10]", 20)
    ValueError("The 'k' parameter of kcenter_greedy must be an int in the range [1, 10]. Got 20 instead.")
    >>> str(param_error("f", "X", "a 2-D array", "an array of shape (3,)"))
    "The 'X' parameter of f must be a 2-D array. Got an array of shape (3,) instead."
    """
    return exc(f"The '{name}' parameter of {func} must be {expected}. Got {got} instead.")
