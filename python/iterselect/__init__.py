"""iterselect: fast, exact training-subset selection for LLM instruction tuning.

The public API, re-exported from one module per selector family.
"""
from ._backends import backends, cuda_unavailable_reason, has_cuda
from .kcenter import KCenterResult, kcenter_greedy
from .selectors import KCenterSelector

__version__ = "0.1.0"

__all__ = [
    "KCenterResult",
    "KCenterSelector",
    "backends",
    "cuda_unavailable_reason",
    "has_cuda",
    "kcenter_greedy",
]
