"""Helpers shared by the torch test files (their fixtures are in conftest.py)."""
from __future__ import annotations

import contextlib

BF16_LOSS_ATOL = 0.05  # nats: bf16 rounding of activations over a few layers

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


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
