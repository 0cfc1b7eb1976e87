// Affinity propagation (Frey & Dueck 2007) on the CPU: dense row-blocked messages, sparse
// messages on a kNN graph, exemplar assignment, and InsBank's representation scores.
//
// The update order, damping and convergence rule are scikit-learn's
// (sklearn/cluster/_affinity_propagation.py), and every float operation is the one numpy
// performs there, in the same order, so float64 runs return sklearn's messages bit for bit:
//
//   iteration t (R, A start at 0):
//     Y_i = max_k (A + S)_ik, I_i its first argmax, Y2_i = max over k != I_i
//     R <- fl(fl(R * d) + fl(fl(S - Y) * (1 - d)))                  (S_iI - Y2 at k = I_i)
//     [history: R <- fl(fl(alpha_t * H) + fl((1 - alpha_t) * R)), alpha_t = alpha_0 * lambda^t]
//     colsum_k = sum_i Rp_ik, rows added in order i = 0, 1, ... (numpy's axis-0 sum),
//                Rp_ik = max(R_ik, 0) off the diagonal, R_kk on it
//     A <- fl(fl(A * d) - fl(T * (1 - d))),  T_ik = max(Rp_ik - colsum_k, 0), T_kk = R_kk - colsum_k
//     E_k = (A_kk + R_kk) > 0; converged once every E_k has been constant for the last
//     convergence_iter iterations (t >= convergence_iter) and some E_k is true.
//
// The dense kernel fuses the A update of iteration t-1 into the row pass of iteration t (one
// sweep reads S, A, R and writes A, R), and sums the columns of Rp while the rows are still in
// cache: workers own column slices and add finished rows in row order (dense_cpu.cpp). Memory
// is S, R and A (3 n^2 elements) plus O(n). The CUDA kernels (affinity.cu) perform the same
// operations in the same order, so both return identical bits.
#pragma once

#include <cstdint>
#include <string>

#include "common/check.hpp"
#include "common/dtype.hpp"
#include "common/hooks.hpp"

namespace isel::affinity {

// Similarity of two rows: -||x-y|| (euclidean, InsBank's), -||x-y||^2 (sqeuclidean,
// scikit-learn's), or cos(x, y) - 1 = -0.5 ||x/|x| - y/|y|||^2 (cosine). Squared distances are
// common/distance.hpp's canonical ones, accumulated in float (double for float64 X).
enum class Metric { euclidean, sqeuclidean, cosine };

inline Metric parse_metric(const std::string& m) {
  if (m == "euclidean") return Metric::euclidean;
  if (m == "sqeuclidean") return Metric::sqeuclidean;
  if (m == "cosine") return Metric::cosine;
  fail("metric must be 'euclidean', 'sqeuclidean' or 'cosine' (got '", m, "')");
}

// ------------------------------------------------------------------------ similarities

// S (n x n, row-major, `s_dtype` float32 or float64) <- similarity(x_i, x_j). Cost: O(n^2 d).
void similarity_matrix(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, void* S,
                       DType s_dtype, int threads, const Hooks& hooks);

// values[e] <- similarity(x_i, x_j) for every stored entry e = (i, j) of a CSR pattern
// (indptr: n + 1, indices: indptr[n]). Cost: O(nnz d).
void similarity_graph(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, const int64_t* indptr,
                      const int64_t* indices, void* values, DType s_dtype, int threads);

// The median of `count` values as numpy.median computes it: the middle order statistic, or
// fl(fl(a + b) / 2) of the two middle ones (in double). Exact selection by radix passes over
// the bits (no copy of the values). Cost: O(count).
double median(const void* values, DType dtype, int64_t count, int threads);

// S_ii <- preference[i] (per_sample) or preference[0] for every i.
void place_preference(void* S, DType dtype, int64_t n, const double* preference, bool per_sample);

// scikit-learn's tie-breaking noise on `count` consecutive entries:
// s <- fl(s + fl(fl(fl(eps * s) + tiny100) * z)), eps and tiny100 = 100 * tiny of the dtype
// (z rounded to float for float32 messages).
void add_noise(void* S, DType dtype, int64_t count, const double* z);

// Smallest and largest off-diagonal similarity (scikit-learn's "all similarities equal" test).
void offdiag_range(const void* S, DType dtype, int64_t n, double* lo, double* hi);

// ------------------------------------------------------------------------ dense messages

// How the iterations run: the settings the dense and the sparse problem share.
struct Iteration {
  double damping = 0.5;
  int64_t max_iter = 200, convergence_iter = 15;
  double history_weight = 0.5, history_decay = 0.99;
  int threads = 0;
};

struct DenseProblem : Iteration {
  void* S = nullptr;  // n x n similarities, preference on the diagonal (and noise, if any)
  void* R = nullptr;  // n x n responsibilities (overwritten; start at 0)
  void* A = nullptr;  // n x n availabilities (overwritten; start at 0)
  const void* H = nullptr;  // optional n x n history responsibilities
  DType dtype = DType::float32;  // of S, R, A, H: float32 or float64
  int64_t n = 0;
};

struct RunResult {
  int64_t n_iter = 0;
  bool converged = false;
};

// Runs the iterations; exemplar[k] = E_k of the last iteration. R and A hold the final messages.
// Inputs: S with the preference on its diagonal, finite (the caller's to ensure); checked
// (std::invalid_argument): n >= 2, damping in [0.5, 1), max_iter and convergence_iter >= 1. Ties in the row maxima: the first column
// (numpy's argmax). Cost: O(n^2) time per iteration, no memory beyond S, R, A and O(n).
RunResult dense_run(const DenseProblem& p, uint8_t* exemplar, const Hooks& hooks);

// The two passes of one iteration, exposed for other libraries (dense_run is these in a loop).
// Row pass of iteration t: when t > 0, A_{t-1} = update(A_{t-2}, R_{t-1}, colsum_{t-1}) is first
// written for each row, then R_t from A_{t-1}, S (and H with weight alpha). colsum must hold
// colsum_{t-1} when t > 0.
void dense_row_pass(const DenseProblem& p, int64_t t, double alpha, const void* colsum);
// Column pass: colsum_t, and the diagonal of A_t (from the A_{t-1} in A, R_t and colsum_t).
void dense_column_pass(const DenseProblem& p, void* colsum, void* diag_a);
// Writes A_t for every row (the A update alone), after the last iteration.
void dense_finish(const DenseProblem& p, const void* colsum);

// ------------------------------------------------------------------------ sparse messages

// A symmetric sparsity pattern in CSR form, every diagonal entry present, columns sorted in
// each row. transpose[e] is the entry (j, i) of entry e = (i, j); diagonal[i] the entry (i, i).
struct Graph {
  int64_t n = 0;
  const int64_t* indptr = nullptr;   // n + 1
  const int64_t* indices = nullptr;  // nnz
  const int64_t* transpose = nullptr;
  const int64_t* diagonal = nullptr;
  int64_t nnz() const { return indptr[n]; }
};

// Symmetrizes a kNN list (n x k neighbour ids, -1 for none) into CSR with the diagonal added.
// Two calls: with indices == nullptr it fills indptr (n + 1) and returns nnz; then it fills
// indices, transpose and diagonal.
int64_t knn_graph(const int64_t* neighbors, int64_t n, int64_t k, int64_t* indptr, int64_t* indices,
                  int64_t* transpose, int64_t* diagonal, int threads);

struct SparseProblem : Iteration {
  Graph g;
  void* S = nullptr;  // nnz similarities (diagonal: preference)
  void* R = nullptr;  // nnz
  void* A = nullptr;  // nnz
  const void* H = nullptr;  // optional nnz history values
  DType dtype = DType::float32;
};

// The dense iterations restricted to the graph's entries (an absent pair never wins a
// maximum). Ties: the first stored column. Cost: O(nnz) time per iteration, O(nnz) memory.
RunResult sparse_run(const SparseProblem& p, uint8_t* exemplar, const Hooks& hooks);

// Smallest and largest off-diagonal stored similarity.
void sparse_offdiag_range(const SparseProblem& p, double* lo, double* hi);

// ------------------------------------------------------------------------ exemplars and labels

// scikit-learn's final step: each point joins its most similar exemplar (exemplars themselves),
// each cluster's exemplar becomes the member with the largest similarity sum to its cluster,
// points are assigned again, and labels are renumbered by sorted exemplar index. Writes the
// sorted exemplars (returns their count K) and labels (-1 everywhere when K = 0). exemplars
// must hold n entries. Ties: the lowest index (numpy's argmax). Cost: O(n K + sum of the
// squared cluster sizes).
int64_t dense_assign(const void* S, DType dtype, int64_t n, const uint8_t* exemplar, int64_t* exemplars,
                     int64_t* labels, int threads);

// The same on a graph: similarities of stored pairs are the stored ones (with preference and
// noise); a pair that is not stored takes similarity(x_i, x_j) from X (no noise), and a point
// with no exemplar among its stored neighbours is compared with every exemplar through X.
int64_t sparse_assign(const SparseProblem& p, const void* X, DType x_dtype, int64_t d, Metric metric,
                      const uint8_t* exemplar, int64_t* exemplars, int64_t* labels);

// InsBank's representation score (Eq. 7): colsum(A + R) - rowsum(A + R) + diag(A + R), summed
// in double (rows in order for the column sums, columns in order for the row sums). Cost: O(n^2).
void representation_scores(const void* R, const void* A, DType dtype, int64_t n, double* out, int threads);

// ------------------------------------------------------------------------ shared helpers

// alpha_t = alpha_0 * lambda^t by repeated multiplication (as the published InsBank code).
inline double history_alpha(double alpha0, double decay, int64_t t) {
  double a = alpha0;
  for (int64_t i = 0; i < t; ++i) a *= decay;
  return a;
}

}  // namespace isel::affinity
