"""numpy references of the fused decoder-layer kernels (csrc/decoder/decoder_ops.hpp): the plain
formulas in float64, rounded once to bfloat16 (bfloat16 values travel as uint16 bit patterns)."""
from __future__ import annotations

import numpy as np


def to_bf16_bits(x) -> np.ndarray:
    """float -> bfloat16 bits, round to nearest even (NaN stays a quiet NaN)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def from_bf16_bits(bits) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def rms_norm(h, weight, eps):
    h = np.asarray(h, dtype=np.float64)
    inv = 1.0 / np.sqrt((h * h).mean(axis=1, keepdims=True) + eps)
    return to_bf16_bits(h * inv * np.asarray(weight, dtype=np.float64))


def add_rms_norm(h, y_bits, weight, eps):
    """(the float32 residual after the add, the normalised bf16 bits)."""
    added = (np.asarray(h, dtype=np.float32) + from_bf16_bits(y_bits)).astype(np.float32)
    return added, rms_norm(added, weight, eps)


def silu_mul(gate_up_bits):
    gu = from_bf16_bits(gate_up_bits).astype(np.float64)
    gate, up = np.split(gu, 2, axis=1)
    with np.errstate(over="ignore"):
        return to_bf16_bits(gate / (1.0 + np.exp(-gate)) * up)


def rope(x_bits, offset, heads, head_dim, cos, sin):
    """x_bits with columns [offset, offset + heads * head_dim) rotated (transformers' half split)."""
    out = np.array(x_bits, dtype=np.uint16, copy=True)
    half = head_dim // 2
    cos, sin = np.asarray(cos, np.float64), np.asarray(sin, np.float64)
    for h in range(heads):
        lo = offset + h * head_dim
        a = from_bf16_bits(out[:, lo:lo + half]).astype(np.float64)
        b = from_bf16_bits(out[:, lo + half:lo + head_dim]).astype(np.float64)
        out[:, lo:lo + half] = to_bf16_bits(a * cos[:, :half] - b * sin[:, :half])
        out[:, lo + half:lo + head_dim] = to_bf16_bits(b * cos[:, half:] + a * sin[:, half:])
    return out


def token_nll(logit_bits, targets):
    """logsumexp of each row minus its target's logit, in float64."""
    x = from_bf16_bits(logit_bits).astype(np.float64)
    peak = x.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        lse = peak[:, 0] + np.log(np.exp(x - peak).sum(axis=1))
    return lse - x[np.arange(len(x)), np.asarray(targets)]


def ulp_distance(a_bits, b_bits) -> np.ndarray:
    """How many bfloat16 steps apart two arrays of bits are (0 where both are NaN)."""
    def ordered(bits):
        v = np.asarray(bits, dtype=np.uint16).astype(np.int32)
        return np.where(v & 0x8000, 0x8000 - v, v)  # -0 and +0 both map to 0

    a, b = np.asarray(a_bits), np.asarray(b_bits)
    nan = np.isnan(from_bf16_bits(a)) & np.isnan(from_bf16_bits(b))
    return np.where(nan, 0, np.abs(ordered(a) - ordered(b)))
