// Dense affinity propagation on a CUDA device (affinity.cu). Plain C++ declarations: the
// bindings include this without CUDA headers. Matrix pointers are device pointers (host
// pointers under emulation); the problem structs are the CPU ones (affinity.hpp) holding
// device pointers. Every kernel performs the CPU path's float operations in the CPU path's
// order (explicit round-to-nearest intrinsics, no contraction), so the results are identical:
//  - similarities: one thread per pair, 32 partial sums folded as a shuffle-down tree
//    (common/distance.hpp's canonical order);
//  - row pass: one warp per row, each lane keeps the top two of its strided entries, merged
//    exactly (values are only compared) into Y, I, Y2;
//  - column pass: one thread per column sums Rp down the rows in order (coalesced across the
//    threads of a warp), then updates the convergence run lengths;
//  - final assignment: thread per row / per member, sums in double in member order.
#pragma once

#include <cstdint>

#include "affinity/affinity.hpp"
#include "common/dtype.hpp"
#include "common/launch.hpp"
#include "common/hooks.hpp"

namespace isel::affinity::cuda {

using Device = device::Launch;

void similarity_matrix(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, void* S, DType s_dtype,
                       const Device& dev);

// numpy.median of `count` device values (radix selection; a few histogram passes).
double median(const void* values, DType dtype, int64_t count, const Device& dev);

// preference: host array of n values (per_sample) or 1.
void place_preference(void* S, DType dtype, int64_t n, const double* preference, bool per_sample, const Device& dev);

// z: host array of `count` normal draws for the entries S[0 .. count) (copied to the device).
void add_noise(void* S, DType dtype, int64_t count, const double* z, const Device& dev);

void offdiag_range(const void* S, DType dtype, int64_t n, double* lo, double* hi, const Device& dev);

// p holds device pointers (p.threads is ignored); exemplar is a host array of n flags.
RunResult dense_run(const DenseProblem& p, uint8_t* exemplar, const Device& dev, const Hooks& hooks);

// exemplar, exemplars (n) and labels (n) are host arrays; returns K.
int64_t dense_assign(const void* S, DType dtype, int64_t n, const uint8_t* exemplar, int64_t* exemplars,
                     int64_t* labels, const Device& dev);

// out: device array of n doubles.
void representation_scores(const void* R, const void* A, DType dtype, int64_t n, double* out, const Device& dev);

}  // namespace isel::affinity::cuda
