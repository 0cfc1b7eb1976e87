"""Progress bars for long kernels (tqdm), driven by the kernels' progress callback."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def progress_callback(enabled: bool, total: int, desc: str):
    """Yield ``callback(done, total)`` for a kernel (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="it", leave=False)

    def update(done: int, _total: int) -> None:
        bar.update(max(0, done - bar.n))

    try:
        yield update
        bar.update(max(0, total - bar.n))
    finally:
        bar.close()
