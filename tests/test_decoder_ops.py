"""The fused decoder-layer kernels of _core (csrc/decoder) against their numpy references, on
every vector path (bit for bit the same), with hypothesis-drawn shapes and values."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iterselect._backends import core

import reference_decoder_ops as ref
from test_simd_paths import PATHS, simd_path

SCALES = (1e-3, 1.0, 30.0)


def bf16_array(rng, shape, scale=1.0):
    return ref.to_bf16_bits(rng.standard_normal(shape).astype(np.float32) * np.float32(scale))


def run_norm(h, y, w, eps, threads=2):
    h = h.copy()
    out = np.empty(h.shape, dtype=np.uint16)
    core.decoder_add_rms_norm(h, y, w, eps, out, threads)
    return h, out


def assert_within_one_ulp(got, want, max_share=0.01):
    dist = ref.ulp_distance(got, want)
    assert dist.max(initial=0) <= 1, f"{dist.max()} bf16 steps apart"
    assert (dist > 0).mean() <= max_share if dist.size else True


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 70), cols=st.integers(1, 90), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from(SCALES), eps=st.sampled_from([1e-6, 1e-5, 0.0]),
       add=st.booleans())
def test_add_rms_norm_matches_reference(rows, cols, seed, scale, eps, add):
    rng = np.random.default_rng(seed)
    h = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
    if rows > 2:
        h[1] = h[0]  # duplicate rows
    w = rng.uniform(0.5, 1.5, cols).astype(np.float32)
    y = bf16_array(rng, (rows, cols), scale) if add else None
    got_h, got = run_norm(h, y, w, eps)
    if add:
        want_h, want = ref.add_rms_norm(h, y, w, eps)
        np.testing.assert_array_equal(got_h, want_h)  # one float32 add: exact
    else:
        want = ref.rms_norm(h, w, eps)
        np.testing.assert_array_equal(got_h, h)  # without y, h is only read
    assert_within_one_ulp(got, want, max_share=0.05)


def test_rms_norm_of_a_zero_row_is_zero_and_nan_propagates():
    h = np.zeros((3, 8), dtype=np.float32)
    h[2, 3] = np.nan
    _, out = run_norm(h, None, np.ones(8, np.float32), 1e-6)
    assert (out[:2] == 0).all()
    assert np.isnan(ref.from_bf16_bits(out[2])).all()


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 70), inter=st.integers(1, 70), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from(SCALES + (200.0,)))
def test_silu_mul_matches_reference(rows, inter, seed, scale):
    rng = np.random.default_rng(seed)
    gu = bf16_array(rng, (rows, 2 * inter), scale)
    out = np.empty((rows, inter), dtype=np.uint16)
    core.decoder_silu_mul(gu[:, :inter], gu[:, inter:], out, 2)  # halves of one product
    separate = np.empty_like(out)
    core.decoder_silu_mul(gu[:, :inter].copy(), gu[:, inter:].copy(), separate, 2)
    np.testing.assert_array_equal(separate, out)
    # silu of a gate below about -87 underflows differently (exp is clamped): compare the rest
    gate = ref.from_bf16_bits(gu[:, :inter])
    keep = gate > -80
    assert_within_one_ulp(out[keep], ref.silu_mul(gu)[keep])
    assert np.all(np.abs(ref.from_bf16_bits(out[~keep])) < 1e-30)


@settings(max_examples=40, deadline=None)
@given(tokens=st.integers(0, 70), heads=st.integers(1, 4), half=st.integers(1, 12),
       offset=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_rope_matches_reference(tokens, heads, half, offset, seed):
    rng = np.random.default_rng(seed)
    head_dim = 2 * half
    width = offset + heads * head_dim + 3
    x = bf16_array(rng, (tokens, width))
    angles = rng.uniform(0, 100, (tokens, half))
    cos = np.cos(np.concatenate([angles, angles], 1)).astype(np.float32)
    sin = np.sin(np.concatenate([angles, angles], 1)).astype(np.float32)
    got = x.copy()
    core.decoder_rope(got[:, offset:], heads, head_dim, cos, sin, 2)  # a column slice, in place
    want = ref.rope(x, offset, heads, head_dim, cos, sin)
    untouched = np.ones(width, bool)
    untouched[offset:offset + heads * head_dim] = False
    np.testing.assert_array_equal(got[:, untouched], x[:, untouched])
    # one bf16 step (2^-7 relative), plus float32 rounding, which a*cos - b*sin can make large
    # next to a cancelled result
    g, w = ref.from_bf16_bits(got).astype(np.float64), ref.from_bf16_bits(want).astype(np.float64)
    xs = np.abs(ref.from_bf16_bits(x)).astype(np.float64)
    bound = np.abs(w) * 2.0**-7 + 2.0**-21 * (xs.max(axis=1, keepdims=True) + 1e-30)
    assert np.all(np.abs(g - w) <= bound)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 20), vocab=st.integers(1, 2100), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from((1e-2, 1.0, 8.0, 300.0)), masked=st.booleans())
def test_token_nll_matches_reference(rows, vocab, seed, scale, masked):
    rng = np.random.default_rng(seed)
    logits = bf16_array(rng, (rows, vocab), scale)
    if masked and vocab > 1:
        logits[:, ::3] = ref.to_bf16_bits(-np.inf)  # -inf logits (masked tokens) add nothing
        logits[:, 1] = logits[:, 2] if vocab > 2 else logits[:, 1]  # a tie
    targets = rng.integers(0, vocab, rows)
    got = core.decoder_token_nll(logits, targets, 2)
    want = ref.token_nll(logits, targets)
    assert got.dtype == np.float32 and got.shape == (rows,)
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(got[~finite], want[~finite])  # +inf at a masked target


def test_token_nll_of_a_nan_row_is_nan():
    logits = ref.to_bf16_bits(np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]], np.float32))
    got = core.decoder_token_nll(logits, np.array([0, 2]), 1)
    assert np.isnan(got[0]) and np.isfinite(got[1])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_vector_path_and_thread_count_gives_the_same_bits(threads):
    rng = np.random.default_rng(7)
    h = rng.standard_normal((67, 50)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, 50).astype(np.float32)
    y = bf16_array(rng, (67, 50))
    gu = bf16_array(rng, (67, 2 * 37), 4.0)
    x = bf16_array(rng, (67, 3 * 16))
    cs = rng.uniform(-1, 1, (2, 67, 16)).astype(np.float32)
    results = {}
    for path in PATHS:
        with simd_path(path):
            hh, normed = run_norm(h, y, w, 1e-6, threads)
            act = np.empty((67, 37), dtype=np.uint16)
            core.decoder_silu_mul(gu[:, :37], gu[:, 37:], act, threads)
            rot = x.copy()
            core.decoder_rope(rot, 3, 16, cs[0], cs[1], threads)
            nll = core.decoder_token_nll(gu, np.arange(67) % 74, threads)
            results[path] = (hh, normed, act, rot, nll)
    first = results[PATHS[0]]
    for path in PATHS[1:]:
        for a, b in zip(first, results[path]):
            np.testing.assert_array_equal(a, b, err_msg=path)


def test_bad_arguments_are_refused_with_what_was_wrong():
    h = np.zeros((4, 8), dtype=np.float32)
    out = np.zeros((4, 8), dtype=np.uint16)
    w = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="out must have h's shape"):
        core.decoder_add_rms_norm(h, None, w, 1e-6, np.zeros((4, 7), np.uint16))
    with pytest.raises(ValueError, match="wrong dtype"):
        core.decoder_add_rms_norm(h.astype(np.float64), None, w, 1e-6, out)
    with pytest.raises(ValueError, match="one float32 value per column"):
        core.decoder_add_rms_norm(h, None, np.ones(5, np.float32), 1e-6, out)
    with pytest.raises(ValueError, match="C-contiguous"):
        core.decoder_add_rms_norm(np.zeros((8, 4), np.float32).T, None, w, 1e-6, out)
    with pytest.raises(ValueError, match="writable"):
        ro = out.copy()
        ro.flags.writeable = False
        core.decoder_add_rms_norm(h, None, w, 1e-6, ro)
    with pytest.raises(ValueError, match="same shape"):
        core.decoder_silu_mul(np.zeros((4, 5), np.uint16), np.zeros((4, 5), np.uint16),
                              np.zeros((4, 4), np.uint16))
    gu = np.zeros((4, 10), np.uint16)
    with pytest.raises(ValueError, match="same row stride"):
        core.decoder_silu_mul(gu[:, :5], gu[:, 5:].copy(), np.zeros((4, 5), np.uint16))
    with pytest.raises(ValueError, match="columns must be adjacent"):
        core.decoder_silu_mul(gu[:, ::2], gu[:, 1::2], np.zeros((4, 5), np.uint16))
    with pytest.raises(ValueError, match="do not fit"):
        core.decoder_rope(np.zeros((4, 8), np.uint16), 2, 8, np.zeros((4, 8), np.float32),
                          np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match=r"targets\[1\] = 9 is outside \[0, 8\)"):
        core.decoder_token_nll(out, np.array([0, 9, 0, 0]))
    with pytest.raises(ValueError, match="one int64 per row"):
        core.decoder_token_nll(out, np.array([0, 1]))
    with pytest.raises(ValueError, match="even head_dim"):
        core.decoder_rope(np.zeros((4, 8), np.uint16), 1, 3, np.zeros((4, 3), np.float32),
                          np.zeros((4, 3), np.float32))
    ro = np.zeros((4, 8), np.uint16)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        core.decoder_rope(ro, 1, 8, np.zeros((4, 8), np.float32), np.zeros((4, 8), np.float32))
