// TF-IDF of word n-grams (scikit-learn's TfidfVectorizer, exactly) and the lazy-greedy weighted
// coverage that IterIT uses as its diversity score.
//
// TF-IDF. Texts arrive as code-point arrays (Python's own storage: 1, 2 or 4 bytes a code
// point), already lowercased by the caller (Python's str.lower() is context dependent: final
// sigma). A token is a maximal run of two or more word characters, the word characters given as
// a table of code-point ranges (the caller builds it from Python's `re` `\w`, so the tokenizer
// agrees with `(?u)\b\w\w+\b` by construction). An n-gram is a tuple of token ids compared in
// full (no hash decides identity). Columns are the n-grams in code-point order of the string
// "tok1 tok2 ..." (a space sorts below every word character, so this is the lexicographic order
// of the token tuples). Values, all in double, under one of two weightings:
//   sklearn: raw counts times smooth idf ln((1 + n) / (1 + df)) + 1, each row divided by its l2
//            norm (summed in column order);
//   paper:   IterIT's Eq. 5, (count / total) * ln(n / df), where total is the number of n-gram
//            occurrences of the text over every length in [min_n, max_n]; no normalization.
//
// Coverage greedy. Given a nonnegative CSR matrix X (n x m), row weights w and a decay b in
// [0, 1], every column has a weight alpha (1 at the start). Each step picks the unpicked row
// with the largest gain w_i * sum_j alpha_j * x_ij (ties: lowest row) and multiplies alpha_j by
// b for every column j where the picked row is nonzero. The gain of a row is always computed the
// same way, in one canonical order on every path (CPU, CUDA, emulated grid): 32 partial sums in
// double, entry e of the row (storage order) added to partial e mod 32 as p += double(x) * alpha
// (a rounded product, then a rounded sum), then the partials folded as a warp's shuffle-down tree
// (p[l] += p[l + w] for w = 16, 8, 4, 2, 1), and gain = w_i * p[0]. So the lazy driver, a naive
// loop that recomputes every row, and the GPU compare identical values. alpha only falls, so
// gains only fall (rounding is monotone), and a stale gain is an upper bound: the lazy max-heap is
// exact. (Against scipy's X @ alpha, one sequential sum a row, a gain differs by rounding only.)
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/hooks.hpp"

namespace isel::coverage {

// ---------------------------------------------------------------- TF-IDF

// One text: `length` code points of `width` bytes each (1: Latin-1, 2: UCS-2, 4: UCS-4).
struct TextView {
  const void* data = nullptr;
  int64_t length = 0;
  int width = 1;
};

struct TfidfOptions {
  int min_n = 1, max_n = 3;          // n-gram lengths, 1 <= min_n <= max_n <= kMaxNgram
  const int32_t* word_ranges = nullptr;  // n_word_ranges pairs [first, last] of word code points
  int64_t n_word_ranges = 0;
  bool float32 = false;              // output values as float32 (computed in double either way)
  bool paper_weighting = false;      // IterIT's Eq. 5 instead of scikit-learn's weighting
  bool counts = false;               // output raw counts (no idf, no normalization, either
                                     // weighting), for a caller that weighs rows by another idf
                                     // (a sharded vocabulary)
  int threads = 0;                   // <= 0: all hardware threads
};

constexpr int kMaxNgram = 8;

// An allocator whose resize() leaves new elements uninitialized (for outputs the kernel fills
// entirely, in parallel: no serial zeroing pass, and the pages are first touched by the workers).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <class T>
using OutputVector = std::vector<T, UninitializedAllocator<T>>;

// A CSR matrix and its vocabulary. The binding hands the vectors to numpy without copying.
struct TfidfMatrix {
  int64_t n_rows = 0, n_cols = 0;
  std::vector<int64_t> indptr;       // n_rows + 1
  OutputVector<int32_t> indices;     // columns, ascending within each row
  OutputVector<double> data64;       // values (float32 = false)
  OutputVector<float> data32;        // values (float32 = true)
  std::vector<int64_t> df;           // n_cols: documents containing each n-gram
  std::vector<double> idf;           // n_cols: ln((1 + n_rows) / (1 + df)) + 1, or ln(n_rows / df)
  std::vector<char> vocabulary;      // UTF-8 terms in column order, each followed by '\n'
  std::vector<int64_t> vocabulary_offsets;  // n_cols + 1: term j is [off[j], off[j+1] - 1)
};

// The TF-IDF matrix of n texts (see the top of this file). Checked (std::invalid_argument):
// n >= 1, 1 <= options.min_n <= options.max_n <= kMaxNgram, every word range first <= last
// within Unicode.
// Columns in code-point order of the n-gram text (no ties: n-grams are distinct); a text
// without a token gives an empty row. The result does not depend on the number of threads.
// Cost: O(total n-gram occurrences) to count, plus sorting the vocabulary (O(V log V)).
// Progress: hooks.tick(done, total) over 3 * n documents (tokenize, count, write).
TfidfMatrix tfidf(const TextView* texts, int64_t n, const TfidfOptions& options, const Hooks& hooks);

// ---------------------------------------------------------------- coverage greedy

enum class ValueType { float32, float64 };
enum class IndexType { int32, int64 };

// A CSR matrix as scipy stores it: indptr and indices share one integer type.
struct CsrView {
  int64_t n_rows = 0, n_cols = 0;
  const void* indptr = nullptr;      // n_rows + 1
  const void* indices = nullptr;     // nnz
  const void* data = nullptr;        // nnz, nonnegative and finite
  int64_t nnz = -1;                  // stored entries (length of indices and data); -1: unknown
  IndexType index_type = IndexType::int32;
  ValueType value_type = ValueType::float64;
};

struct GreedyProblem {
  CsrView X;
  const double* weights = nullptr;   // n_rows nonnegative row weights (nullptr: all 1)
  double decay = 0.1;                // b in [0, 1]
  int64_t k = 0;                     // rows to pick
  const int64_t* selected = nullptr; // rows already chosen: applied first, never picked
  int64_t n_selected = 0;
  int threads = 0;
};

struct GreedyOutput {
  int64_t* indices = nullptr;        // k picks in order
  double* gains = nullptr;           // k gains at pick time
  double* alpha = nullptr;           // n_cols column weights at the end (may be nullptr)
  int64_t refreshes = 0;             // lazy re-evaluations of stale rows (for benchmarks)
};

// Picks p.k rows by the greedy above. Checked (std::invalid_argument with the values): X a CSR
// matrix with columns in range and values finite and >= 0, weights finite and >= 0, decay in
// [0, 1], 1 <= k <= n_rows - n_selected, selected unique and in range. Ties: the lowest row. A row
// is never picked twice. Output: out.indices, out.gains (non-increasing), out.alpha. The lazy
// heap returns the naive loop's picks bit for bit. Cost: O(nnz) for the first gains, then
// O(log n_rows) per heap operation plus O(row length) per refresh (out.refreshes) and per decay.
// Progress: hooks.tick(picks, k) after every pick.
void greedy(const GreedyProblem& p, GreedyOutput& out, const Hooks& hooks);

// The kernels the driver is made of, for other libraries.
// gains[i] = w_i * sum_j alpha_j * x_ij for every row (the canonical order above; weights may be
// nullptr). Cost: O(nnz).
void row_gains(const CsrView& X, const double* alpha, const double* weights, double* gains, int threads);
// alpha_j <- b * alpha_j for every column j where row `row` of X is nonzero; returns how many
// weights changed. Cost: O(length of the row).
int64_t decay_row(const CsrView& X, int64_t row, double decay, double* alpha);

}  // namespace isel::coverage
