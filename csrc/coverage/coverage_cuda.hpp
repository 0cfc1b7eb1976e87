// Weighted coverage on a CUDA device (coverage.cu). Plain C++ declarations: the bindings include
// this without CUDA headers. The problem structs are the CPU ones (coverage.hpp) holding device
// pointers (host pointers under emulation), except GreedyProblem::selected, a host array.
//
// Same picks, gains and column weights as the CPU path, bit for bit: a row's gain is the
// canonical sum of coverage.hpp computed by one warp (lane l takes the row's entries l, l+32, ...,
// then the shuffle-down fold), and the picks are exact argmaxes (ties: the lowest row).
//
// The greedy is lazy on the device. Gains only fall, so every row keeps its last gain as an upper
// bound, stamped with the version of the column weights it was computed from. Each step takes the
// best bound left after the previous pick (the runner-up of the previous pass), makes it exact,
// and calls it F; then one pass over the rows recomputes only the stale rows whose bound is at
// least F (a warp per such row) and takes the best two of all bounds. The best is exact (every
// row whose bound could beat F was recomputed), so it is the pick; the second is the next step's
// starting point. The column weights of the picked row's columns then decay (an atomic
// compare-and-swap per entry, so repeated columns decay once per entry, as on the CPU). The host
// waits for the device only to report progress.
#pragma once

#include <cstdint>

#include "common/hooks.hpp"
#include "common/launch.hpp"
#include "coverage/coverage.hpp"

namespace isel::coverage::cuda {

using Device = device::Launch;

// Checks X on the device: indptr from 0, nondecreasing, ending at X.nnz; columns in range; values
// finite and nonnegative. Throws the CPU path's message for the lowest offending row.
void check(const CsrView& X, const Device& dev);

// gains[i] = w_i * sum_j alpha_j * x_ij for every row (alpha, weights, gains: device arrays;
// weights may be nullptr). Checks X first.
void row_gains(const CsrView& X, const double* alpha, const double* weights, double* gains, const Device& dev);

// alpha_j <- b * alpha_j (device array) where row `row` of X is nonzero; returns how many changed.
int64_t decay_row(const CsrView& X, int64_t row, double decay, double* alpha, const Device& dev);

// out.indices (k), out.gains (k) and out.alpha (n_cols) are device arrays; out.alpha is required.
// out.refreshes counts the stale gains recomputed (the device's own count, not the CPU's).
// Progress: hooks.tick(picks, k) every 64 picks.
void greedy(const GreedyProblem& p, GreedyOutput& out, const Device& dev, const Hooks& hooks);

}  // namespace isel::coverage::cuda
