"""Scoring on a CUDA GPU: bf16 autocast of a float32 model, bf16 models, and the engine's
answer to a real CUDA out-of-memory error. Skipped, with the reason, where no GPU is present.

bf16 keeps about three significant digits, so GPU losses are compared with the float32 CPU
computation within a bf16 tolerance, not bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import require_module  # noqa: E402

torch = require_module("torch", "torch", module_level=True)
require_module("transformers", "torch", module_level=True)

from iterselect.scoring import embed, ifd_scores, perplexity  # noqa: E402
from iterselect.scoring.toy import toy_causal_lm, toy_tokenizer  # noqa: E402

from torch_support import BF16_LOSS_ATOL, forward_hook_rows  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("hf_offline")]


@pytest.fixture(scope="module")
def tok(dolly_records):
    return toy_tokenizer([r["instruction"] + "\n" + r["output"] for r in dolly_records[:300]],
                         vocab_size=512)


@pytest.fixture(scope="module")
def records(dolly_records):
    return [r for r in dolly_records if len(r["instruction"]) + len(r["output"]) < 300][:64]


@pytest.fixture(scope="module")
def cpu_model(tok):
    return toy_causal_lm(tok, "llama", hidden_size=64, layers=2)


@pytest.fixture(scope="module")
def cuda_model(cpu_model):
    import copy

    return copy.deepcopy(cpu_model).to("cuda")


def test_ifd_on_cuda_autocasts_and_matches_cpu(cpu_model, cuda_model, tok, records):
    want = ifd_scores(cpu_model, tok, records, progress=False)
    got = ifd_scores(cuda_model, tok, records, progress=False)
    assert next(cuda_model.parameters()).dtype == torch.float32  # autocast, weights untouched
    np.testing.assert_array_equal(got.n_response_tokens, want.n_response_tokens)
    np.testing.assert_allclose(got.cond_loss, want.cond_loss, atol=BF16_LOSS_ATOL)
    np.testing.assert_allclose(got.prior_loss, want.prior_loss, atol=BF16_LOSS_ATOL)
    # bf16 shows: the GPU numbers are not the float32 ones
    assert not np.array_equal(got.cond_loss, want.cond_loss)


def test_bf16_model_on_cuda_left_and_right_padding(cpu_model, tok, records):
    import copy

    model = copy.deepcopy(cpu_model).to("cuda", dtype=torch.bfloat16)
    want = perplexity(cpu_model, tok, records, progress=False)
    for side in ("left", "right"):
        got = perplexity(model, tok, records, padding_side=side, progress=False)
        np.testing.assert_allclose(got.loss, want.loss, atol=BF16_LOSS_ATOL)


def test_embed_on_cuda_matches_cpu(cpu_model, cuda_model, tok, records):
    texts = [r["instruction"] for r in records]
    want = embed(cpu_model, tok, texts, progress=False).embeddings
    got = embed(cuda_model, tok, texts, progress=False).embeddings
    assert got.dtype == np.float32
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.999


def test_real_cuda_out_of_memory_halves_the_batch(cuda_model, tok, records):
    """A batch of more than 4 rows asks CUDA for 2^50 bytes: a real out-of-memory error, which
    the engine answers by splitting the batch; the scores equal an unsplit run's."""
    want = ifd_scores(cuda_model, tok, records[:16], progress=False, batch_tokens=512)
    def hungry(n):
        if n > 4:
            torch.empty(1 << 50, dtype=torch.uint8, device="cuda")

    with forward_hook_rows(cuda_model, hungry) as rows:
        got = ifd_scores(cuda_model, tok, records[:16], progress=False, batch_tokens=10**6)
    assert max(rows) == 32 and max(rows[1:]) <= 16
    np.testing.assert_allclose(got.cond_loss, want.cond_loss, atol=BF16_LOSS_ATOL)
    np.testing.assert_allclose(got.prior_loss, want.prior_loss, atol=BF16_LOSS_ATOL)
