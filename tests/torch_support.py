"""Fixtures shared by the torch test files (scoring, training, methods): import them by name."""
from __future__ import annotations

import contextlib
import os

import pytest
import torch

from iterselect.datasets import load_dolly

BF16_LOSS_ATOL = 0.05  # nats: bf16 rounding of activations over a few layers

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine OpenMP threads that
    wait for each other slow a step down by an order of magnitude."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", autouse=True)
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


@pytest.fixture(scope="module")
def dolly():
    """The bundled Dolly 15k records."""
    return load_dolly()


@contextlib.contextmanager
def forward_hook_rows(model, before):
    """Call ``before(rows)`` ahead of every forward of ``model`` (it may raise); yields the list
    of batch row counts seen."""
    original = model.forward
    rows = []

    def wrapped(*args, **kwargs):
        n = kwargs["input_ids"].shape[0]
        rows.append(n)
        before(n)
        return original(*args, **kwargs)

    model.forward = wrapped
    try:
        yield rows
    finally:
        del model.forward
