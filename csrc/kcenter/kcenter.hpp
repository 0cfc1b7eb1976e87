// Exact k-center greedy (Gonzalez's farthest-first traversal) on the CPU.
//
// Every distance is common/distance.hpp's canonical one, so the lazy driver, the plain loop and
// the CUDA kernels (kcenter.cu) all pick the same points. Ties go to the lowest index.
#pragma once

#include <cstdint>
#include <string>

#include "common/check.hpp"

#include "common/dtype.hpp"
#include "common/hooks.hpp"

namespace isel::kcenter {

enum class Metric { euclidean, cosine };

inline Metric parse_metric(const std::string& m) {
  if (m == "euclidean") return Metric::euclidean;
  if (m == "cosine") return Metric::cosine;
  fail("metric must be 'euclidean' or 'cosine' (got '", m, "')");
}

struct Problem {
  const void* X = nullptr;  // n x d, row-major, storage type given by dtype
  DType dtype = DType::float32;
  int64_t n = 0, d = 0;
  int64_t k = 0;                       // new centers to pick
  const int64_t* selected = nullptr;   // existing pool (may be empty)
  int64_t n_selected = 0;
  Metric metric = Metric::euclidean;
  int64_t seed_index = 0;              // first pick when the pool is empty
  int threads = 0;                     // <= 0: all hardware threads
  bool lazy = true;                    // lazy per-point bounds (false: one full pass per pick)
};

struct Output {
  int64_t* indices = nullptr;          // k picks, in order
  double* radii = nullptr;             // k: covering radius after each pick
  double* min_distances = nullptr;     // n: distance of every point to its nearest center (null:
                                       // not computed, and the lazy loop's final pass is skipped)
  int64_t distance_evaluations = 0;    // row-to-center distances computed while picking
  int64_t final_evaluations = 0;       // ... and afterwards, to make min_distances exact
  int64_t filtered_evaluations = 0;    // of both, those the bf16 filter ruled out (not computed)
};

// Reported distance from the internal squared value: sqrt for euclidean, 1 - cos for cosine.
double reported_distance(double sq, Metric metric);

// Picks p.k points by farthest-first traversal. Inputs: X (n x d, row-major, p.dtype) finite
// (the caller's to ensure); checked, with std::invalid_argument naming the values: n, d >= 1,
// 1 <= k <= n - n_selected, selected unique and in [0, n), seed_index in [0, n), and rows of
// non-zero norm for the cosine metric. The first pick is the point farthest from `selected`
// (p.seed_index when there is none); each later pick the point farthest from every center.
// Ties: the lowest index. Output: out.indices (k), out.radii (k, non-increasing),
// out.min_distances (n, unless null); the same picks whether p.lazy or not, and as the CUDA kernels.
// Cost: O((n_selected + k) n d) time for the plain loop (lazy: fewer distance evaluations,
// counted in out.distance_evaluations), O(n) extra memory; p.threads threads.
void greedy(const Problem& p, Output& out, const Hooks& hooks);

// One step of the plain loop, exposed for other libraries: min_sq[i] <- min(min_sq[i],
// d(x_i, x_center)) for every row with mask[i] == 0, and returns the argmax of min_sq over
// those rows (lowest index on ties; -1 if none). min_sq holds squared (scaled) distances in
// float32 (float64 for float64 X); inv_norms is required for the cosine metric. Cost: O(n d).
int64_t update_step(const void* X, DType dtype, int64_t n, int64_t d, int64_t center, Metric metric,
                    const void* inv_norms, void* min_sq, const uint8_t* mask, int threads);

}  // namespace isel::kcenter
