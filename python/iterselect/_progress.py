"""Progress bars for long kernels (tqdm), driven by the kernels' progress callback."""
from __future__ import annotations

import importlib
import os
import sys
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


def silence_library_bars() -> None:
    """Turn off the progress bars that the libraries below iterselect draw on their own (model
    loading and saving in transformers, downloads in huggingface_hub, datasets' maps), for
    ``--no-progress``. huggingface_hub reads the variable when it is imported, and transformers
    follows it; libraries already imported are told directly."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    calls = (("huggingface_hub", "huggingface_hub.utils", "disable_progress_bars"),
             ("transformers", "transformers.utils.logging", "disable_progress_bar"),
             ("datasets", "datasets", "disable_progress_bars"))
    for package, module, name in calls:
        if package not in sys.modules:
            continue
        try:  # a library that half-imported (a failed optional import) has no bars to silence
            getattr(importlib.import_module(module), name)()
        except Exception:  # noqa: BLE001
            pass
