"""Which compiled backends this build has, and the choice of one per call.

``backend="auto" | "cpu" | "cuda" | "cuda-emulation"`` on every selector with a CUDA path:
"auto" lets the input's device decide (CUDA tensors/arrays run the CUDA kernels, host arrays
the C++ ones); "cuda-emulation" runs the CUDA kernels on the CPU emulation of the grid
(host arrays only), which is how CI executes every kernel without a GPU.
"""
from __future__ import annotations

import importlib

from ._arrays import array_kind
from .exceptions import param_error

BACKENDS = ("auto", "cpu", "cuda", "cuda-emulation")


def _load(name: str):
    try:
        return importlib.import_module(f"iterselect.{name}"), None
    except ImportError as exc:
        return None, str(exc)


def _build_info():
    try:
        from . import _build_info as info  # written by CMake at build time
        return info
    except ImportError:
        return None


core, _core_error = _load("_core")
if core is None:  # pragma: no cover - a broken install
    raise ImportError(
        "iterselect's compiled module iterselect._core could not be imported "
        f"({_core_error}). Reinstall with `pip install .` (or run ./dev-build.sh in a checkout).")


def _cuda_state():
    info = _build_info()
    if info is not None and not info.CUDA_BUILT:
        return None, f"not built: {info.CUDA_MISSING_REASON}"
    module, error = _load("_cuda")
    if module is None:
        return None, f"iterselect._cuda could not be imported ({error})"
    return module, None


def _emulation_state():
    module, error = _load("_cuda_emu")
    if module is None:
        return None, ("not built: rebuild with ITERSELECT_CUDA_EMULATION=ON "
                      "(`ITERSELECT_CUDA_EMULATION=ON pip install .`, or ./dev-build.sh)")
    return module, None


def _gpu_present() -> tuple[bool, str]:
    try:
        import torch

        if torch.cuda.is_available():
            return True, ""
    except ImportError:
        pass
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return True, ""
    except Exception:
        pass
    return False, "no CUDA device is visible (to torch or cupy)"


def has_cuda() -> bool:
    """True when iterselect._cuda is built and a CUDA device is visible."""
    module, _ = _cuda_state()
    return module is not None and _gpu_present()[0]


def cuda_unavailable_reason() -> str | None:
    """Why :func:`has_cuda` is False (``None`` when it is True)."""
    module, reason = _cuda_state()
    if module is None:
        return reason
    present, why = _gpu_present()
    return None if present else why


def backends() -> dict:
    """Every backend with ``"available"`` or the reason it is not.

    Examples
    --------
    >>> import iterselect
    >>> iterselect.backends()["cpu"]
    'available'
    """
    emu, emu_reason = _emulation_state()
    cuda_reason = cuda_unavailable_reason()
    return {
        "cpu": "available",
        "cuda": "available" if cuda_reason is None else f"unavailable: {cuda_reason}",
        "cuda-emulation": "available" if emu is not None else f"unavailable: {emu_reason}",
    }


def resolve(backend: str, on_cuda: bool, func: str) -> str:
    """The backend a call runs on, given the input's device; raises when it cannot run."""
    if backend not in BACKENDS:
        raise param_error(func, "backend", "one of 'auto', 'cpu', 'cuda', 'cuda-emulation'", backend)
    if backend == "auto":
        backend = "cuda" if on_cuda else "cpu"
    if on_cuda and backend != "cuda":
        raise ValueError(
            f"{func}: the input lives on a CUDA device but backend={backend!r} runs on the host. "
            "Pass backend='cuda' (or 'auto'), or move the input to the CPU first (no silent copies).")
    if backend == "cuda":
        if not on_cuda:
            raise ValueError(
                f"{func}: backend='cuda' needs the input on a CUDA device (a torch CUDA tensor or a "
                "cupy array); this one is on the CPU. Move it to the GPU, or use backend='cpu'.")
        module, reason = _cuda_state()
        if module is None:
            raise RuntimeError(f"{func}: backend='cuda' is unavailable: {reason}.")
    if backend == "cuda-emulation" and _emulation_state()[0] is None:
        raise RuntimeError(f"{func}: backend='cuda-emulation' is unavailable: {_emulation_state()[1]}.")
    return backend


def cuda_module(backend: str):
    """The compiled module that runs CUDA kernels for ``backend`` ('cuda' or 'cuda-emulation')."""
    return (_cuda_state() if backend == "cuda" else _emulation_state())[0]


def stream_of(obj) -> int:
    """The current CUDA stream of the framework that owns ``obj`` (0 for host arrays)."""
    kind = array_kind(obj)
    if kind == "torch" and obj.is_cuda:
        import torch

        return torch.cuda.current_stream(obj.device).cuda_stream
    if kind == "cupy":
        import cupy

        return cupy.cuda.get_current_stream().ptr
    return 0
