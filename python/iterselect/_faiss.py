"""faiss, an optional dependency: its import with an install hint, and its GPU count."""
from __future__ import annotations


def import_faiss(func: str):
    """Import faiss or raise an ImportError that says how to install it."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            f"{func} needs faiss, which is not installed. Install it with "
            f"`pip install iterselect[faiss]` (faiss-cpu; or a faiss-gpu build for CUDA inputs)."
        ) from exc
    return faiss


def faiss_num_gpus(faiss) -> int:
    """Number of GPUs faiss can use (0 for CPU-only builds)."""
    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None else 0
    except Exception:  # a GPU build on a machine without a driver
        return 0
