// Fused element-wise steps of a Llama-family decoder layer on a packed (tokens, hidden) batch,
// for the scorers' packed CPU forward (python/iterselect/scoring/packed_forward.py). Each one
// replaces several torch passes over bfloat16 activations with one: the residual add and the
// RMS norm, SiLU(gate) * up, and the rotary embedding. Arithmetic in float32, results rounded
// once to bfloat16 (round to nearest even, as torch rounds); tests compare every kernel with a
// numpy reference (tests/reference_decoder_ops.py). token_nll replaces the float32 copy and
// log-softmax of the logits, which took three times as long as the vocabulary product itself.
#pragma once

#include <cstdint>

namespace isel::decoder {

// out[r] = bf16(h[r] * (1 / sqrt(mean(h[r]^2) + eps)) * w), for r < rows (h: rows x cols float32).
void rms_norm(const float* h, int64_t rows, int64_t cols, const float* w, float eps, uint16_t* out,
              int threads);

// h[r] += y[r] (y bfloat16, h float32, in place), then out = rms_norm(h).
void add_rms_norm(float* h, const uint16_t* y, int64_t rows, int64_t cols, const float* w, float eps,
                  uint16_t* out, int threads);

// out[r, j] = bf16(silu(g) * u) with g = gate[r * stride + j], u = up[r * stride + j] (out: rows x inter,
// contiguous; gate and up may be the two halves of one [gate | up] product, stride 2 * inter).
void silu_mul(const uint16_t* gate, const uint16_t* up, int64_t rows, int64_t inter, int64_t stride, uint16_t* out,
              int threads);

// Rotary embedding in place (transformers' half-split convention) on `heads` heads of `head_dim`
// values starting at x + t * row_stride for each token t: with a = x[:half], b = x[half:],
// x = (a * cos[:half] - b * sin[:half], b * cos[half:] + a * sin[half:]); cos, sin: tokens x head_dim.
void rope(uint16_t* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
          const float* cos, const float* sin, int threads);

// out[r] = log(sum_j exp(logits[r, j])) - logits[r, targets[r]]: the cross-entropy of bfloat16
// logits, in float32 with double-precision block sums (rows x vocab; targets in [0, vocab)).
void token_nll(const uint16_t* logits, int64_t rows, int64_t vocab, const int64_t* targets, float* out,
               int threads);

}  // namespace isel::decoder
