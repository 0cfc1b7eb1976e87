// Facility location on a sparse similarity graph: exact greedy maximization, QDIT's diversity.
//
// Inputs. A graph G in CSR form (graph.hpp): row i lists the candidates j that may represent
// point i, with similarity s_ij >= 0 (finite); an entry that is not stored is 0. Rows are the
// points to represent (n_rows), columns the candidates (n_cols; the same samples when G is a
// kNN graph, then square). A column may appear at most once in a row.
//
// Objective. With `current_i = max(0, max_{j in S} s_ij)` (point i's best similarity to the
// selection S), the facility-location function is D(S) = sum_i current_i. With per-candidate
// quality q and weight alpha in [0, 1] (QDIT: Bukharin et al., "Data Diversity Matters for
// Robust Instruction Tuning", 2023, section 3) the objective is
//     F(S) = (1 - alpha) * D(S) + alpha * sum_{j in S} q_j,
// and without quality F = D. Each step picks the unpicked candidate with the largest marginal
// gain
//     gain_j = (1 - alpha) * sum_i max(0, s_ij - current_i) + alpha * q_j     (or the sum alone)
// summed in double over the points of column j in ascending order (graph.hpp: column_gain),
// then raises current_i to s_ij for every point i of column j. Ties go to the lowest column.
//
// Exactness. current only rises, so gains only fall, and a gain computed earlier bounds the
// current one from above: the lazy greedy (a max-heap of possibly stale gains, recomputing only
// the one on top when it may be stale) picks what the plain greedy picks, bit for bit, as both
// call the same column_gain. A gain is stale only if some point of its column changed since it
// was computed; after a pick the driver marks the candidates of the points that changed (the
// rows of G), or, when that would touch more entries than there are candidates, all of them.
//
// Sharding (several processes, each holding part of the graph): a candidate's gain reads only
// its own column and `current` on that column's points, so the candidates shard by blocks of
// columns (a shard holds its columns and the points they list); a pick's column, broadcast as
// (point, s) pairs, is all any shard needs to update. Sharding by points instead would split
// each gain's sum across shards and change its rounding, so the picks could differ.
//
// Complexity. The column view (the transpose of G, for the gains) is built once: O(nnz) time
// and memory (nnz indices and values, n_cols + 1 offsets). Initial gains O(nnz), in parallel.
// Each pick: O(entries of its column) for the update, plus the marks (the rows of the points
// that changed), plus one O(entries of the column) recomputation per stale candidate reaching
// the top of the heap (O(log n_cols) each). Memory besides G and its transpose: 16 bytes a
// candidate (heap) + 4 (marks) + 8 a point (current).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.hpp"
#include "common/hooks.hpp"
#include "facility/graph.hpp"

namespace isel::facility {

struct Problem {
  Graph graph;                        // rows: points, columns: candidates
  const double* quality = nullptr;    // n_cols finite values, or nullptr (no quality term)
  double quality_weight = 0.0;        // alpha in [0, 1]; used only with quality
  int64_t k = 0;                      // candidates to pick
  const int64_t* selected = nullptr;  // candidates already chosen: applied first, never picked
  int64_t n_selected = 0;
  int threads = 0;                    // <= 0: all hardware threads
};

struct Output {
  int64_t* indices = nullptr;  // k picks, in order
  double* gains = nullptr;     // k marginal gains at pick time (of F)
  double* current = nullptr;   // n_rows: each point's best similarity at the end (may be nullptr)
  int64_t evaluations = 0;     // gains computed (the plain greedy computes k * candidates)
};

// The checks of p that read no array of the graph or of quality: at least one candidate, the
// selection and k, alpha. The device path runs these on the host as they are.
inline void check_budget(const Problem& p) {
  const int64_t n = p.graph.n_cols;
  require(n >= 1, "the graph must have at least one column (candidate); it has none");
  check_selection(p.selected, p.n_selected, n, p.k, "columns");
  if (p.quality != nullptr)
    require(std::isfinite(p.quality_weight) && p.quality_weight >= 0.0 && p.quality_weight <= 1.0,
            "quality_weight (", p.quality_weight, ") must be in [0, 1]");
}

inline void check_quality(int64_t j, double q) { require(std::isfinite(q), "quality[", j, "] (", q, ") must be finite"); }

// Checks everything about p (graph structure and values, quality, selection, k) and throws
// std::invalid_argument with the values when something is wrong. The CPU driver calls it first.
inline void validate(const Problem& p) {
  dispatch(p.graph, [&](auto g) {
    check_csr(g, "the graph", p.threads);
    return 0;
  });
  check_budget(p);
  if (p.quality != nullptr)
    for (int64_t j = 0; j < p.graph.n_cols; ++j) check_quality(j, p.quality[j]);
}

// Progress: hooks.tick(picks, k) after every pick.
void greedy(const Problem& p, Output& out, const Hooks& hooks);

// The kernels the driver is made of, for other libraries. `columns` is the column view: the
// transpose of G (rows: candidates, columns: points), e.g. G in scipy's CSC form.
// gains[j] for every candidate j given each point's current best similarity (n points).
void gains(const Graph& columns, const double* current, const double* quality, double quality_weight,
           double* gains, int threads);
// One update step: current_i <- max(current_i, s_ij) for the points of candidate j's column;
// returns how many points changed.
int64_t update(const Graph& columns, int64_t candidate, double* current);

}  // namespace isel::facility
