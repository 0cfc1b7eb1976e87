// One shard of an exact k-center greedy spread over processes (iterselect.distributed).
//
// A driver holds no data. Every shard holds a block of rows and the lazy state of the
// single-process greedy for them (kcenter_cpu.cpp): each row's min-distance as an upper bound,
// the number of centers it has met, and a max-heap ordered by (value desc, index asc). The
// driver broadcasts every center as its raw row, so each shard compares its rows with the very
// vector the single process would (common/distance.hpp's canonical distance, cosine rows scaled
// by their canonical inverse norm); a minimum does not depend on the order it is taken in, so
// every row's exact min-distance is the single process's bit for bit.
//
// A shard answers "your best rows": top(m) returns its m best unchosen rows with their exact
// values and the exact value of the best row after them (the rest bound). A driver holding
// the candidates' rows can then make several exact picks without asking again: a candidate,
// brought up to date with the picks made since (pair_sq), is the global farthest point when it
// beats every shard's rest bound (value, then lower index).
//
// Checkpoints: save() copies the per-row state; load() on a fresh shard followed by
// add_centers() with every center so far restores it, and the rows only meet the centers
// added after the checkpoint (their stamps say which).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kcenter/kcenter.hpp"

namespace isel::kcenter {

struct ShardTop {
  std::vector<int64_t> index;  // rows of this shard, best first
  std::vector<double> value;   // their exact squared (scaled) distances (float32 values widened)
  int64_t rest_index = -1;     // the best row after them (-1: none left)
  double rest_value = 0.0;     // its exact value
};

class Shard {
 public:
  // X: n x d rows in `dtype`, row-major, kept by the caller for the shard's lifetime.
  Shard(const void* X, DType dtype, int64_t n, int64_t d, Metric metric, int threads);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  int64_t rows() const;
  int64_t dim() const;
  int64_t n_centers() const;
  int64_t evaluations() const;  // row-to-center distances computed so far

  // Appends m centers given as rows in the shard's storage type (m x d). local[c] is the
  // center's row in this shard, or -1 when another shard holds it; such rows are never
  // candidates again.
  void add_centers(const void* centers, int64_t m, const int64_t* local);
  // Brings every unchosen row up to date with every center (cache-blocked; threaded).
  void refresh_all();
  // The m best unchosen rows (fewer when fewer are left) and the rest bound; exact.
  ShardTop top(int64_t m);
  // Reported distances (sqrt, or 1 - cos) of every row to its nearest center; 0 for chosen
  // rows. Calls refresh_all() first.
  void min_distances(double* out);

  // State for a checkpoint: ub (n values of the accumulation type: float, double for float64
  // X), stamp (n centers met) and chosen (n flags).
  void save(void* ub, int32_t* stamp, uint8_t* chosen) const;
  // Restores a saved state into a shard without centers; add_centers() must then replay every
  // center the state has met (at least max(stamp) of them) before top() or refresh_all().
  void load(const void* ub, const int32_t* stamp, const uint8_t* chosen);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Squared (scaled) canonical distances of m rows to c centers, both given as rows of `dtype`
// (m x d and c x d): out[i * c + j], the values the greedy compares (accumulation type, widened
// to double).
void pair_sq(const void* rows, int64_t m, const void* centers, int64_t c, int64_t d, DType dtype, Metric metric,
             double* out, int threads);

}  // namespace isel::kcenter
