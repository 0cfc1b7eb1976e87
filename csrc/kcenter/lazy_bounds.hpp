// The lazy state of k-center greedy over a block of rows, shared by the single-process greedy
// (kcenter_cpu.cpp) and one shard of the distributed one (shard.cpp), so both compare the same
// packed vectors in the same blocked order and keep the same bounds.
//
// Why lazy is exact: a row's bound is the minimum over the centers it has met (its stamp says
// how many), an upper bound on its true distance to the nearest center. The heap pops the
// largest bound; a stale top is compared with the centers added since and pushed back; a
// current top is at least as far as every other bound, hence the farthest row. Heap order is
// (value desc, index asc), so ties go to the lowest index.
//
// Refreshes are blocked: stale rows are taken off the heap in batches, widened (and scaled)
// into packed rows, sorted by the first center each still needs, and compared with those
// centers four rows by four centers at a time (common/distance_tile.hpp), the centers a
// cache-sized chunk at a time. Refreshing a row earlier than the one-at-a-time loop would
// never changes a pick: its bound only becomes exact sooner. For float accumulation a bf16
// filter (kcenter/bf16_filter.hpp) first proves most tiles unable to lower their rows' bounds,
// and those are not computed; the bounds come out the same.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "common/distance.hpp"
#include "common/distance_tile.hpp"
#include "common/parallel.hpp"
#include "common/simd.hpp"
#include "kcenter/bf16_filter.hpp"
#include "kcenter/kcenter.hpp"

namespace isel::kcenter {

// Canonical inverse norms of n rows (common/distance.hpp's inverse_norm), threaded; *zero_row
// is set to the lowest row of zero norm, or -1 when there is none.
template <class T, class A = accum_t<T>>
std::vector<A> inverse_norms(const T* X, int64_t n, int64_t d, int threads, int64_t* zero_row) {
  const std::vector<A> zeros(static_cast<size_t>(d), A(0));
  std::vector<A> inv(static_cast<size_t>(n));
  std::atomic<int64_t> lowest{n};  // whichever thread finds a zero row, the lowest wins
  parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) {
      const A sq = sqdist<T, A>(X + i * d, zeros.data(), d);
      if (sq == A(0)) {
        int64_t seen = lowest.load();
        while (i < seen && !lowest.compare_exchange_weak(seen, i)) {}
      }
      inv[i] = A(1) / std::sqrt(sq);
    }
  });
  *zero_row = lowest.load() < n ? lowest.load() : -1;
  return inv;
}

template <class T>
class LazyBounds {
 public:
  using A = accum_t<T>;
  struct Entry {
    A value;
    int64_t index;
  };

  // X: n x d rows kept by the caller. Cosine rows are scaled by inv_norms (n values, moved in).
  LazyBounds(const T* X, int64_t n, int64_t d, bool cosine, std::vector<A> inv_norms, int threads)
      : X_(X), n_(n), d_(d), dp_(padded_dim(d)), cosine_(cosine), threads_(threads),
        tile_(tile_kernel<A>(simd_level())),
        filter_(std::is_same_v<A, float> ? Bf16Filter(filter_mode(), dp_) : Bf16Filter()),
        inv_(std::move(inv_norms)) {
    ub.assign(n_, std::numeric_limits<A>::infinity());
    stamp.assign(n_, 0);
    chosen.assign(n_, 0);
    buffers_.resize(resolve_threads(threads));
    if (filter_.on()) rnorm_.assign(n_, Bf16Filter::Norm{0.0, -1.0});
  }

  // The per-row state, public for checkpoints: bound (squared, scaled), centers met, chosen.
  // Whoever writes them directly calls invalidate_heap().
  std::vector<A> ub;
  std::vector<int32_t> stamp;
  std::vector<uint8_t> chosen;

  int64_t rows() const { return n_; }
  int64_t n_centers() const { return n_centers_; }
  int64_t evaluations() const { return evals_; }
  // Of those, the ones the bf16 filter proved unable to lower a bound (not computed exactly).
  int64_t filtered() const {
    int64_t f = 0;
    for (const auto& b : buffers_) f += b.filtered;
    return f;
  }
  void count_evaluations(int64_t m) { evals_ += m; }
  const T* row(int64_t i) const { return X_ + i * d_; }
  A scale(int64_t i) const { return cosine_ ? inv_[i] : A(1); }

  // Appends a center: a row in the storage type, widened and scaled by its canonical inverse
  // norm (scale(i) for a row of this block), so every block compares the same vector.
  void add_center(const T* center_row, A inv_norm) {
    const size_t need = static_cast<size_t>((n_centers_ + 1 + kTile) * dp_);
    // kTile - 1 zero rows past the last center let a tile read a whole quad
    if (centers_.size() < need) centers_.resize(std::max(need, 2 * centers_.size()), A(0));
    A* packed = centers_.data() + n_centers_ * dp_;
    widen_row<T, A>(center_row, d_, dp_, cosine_, cosine_ ? inv_norm : A(1), packed);
    if constexpr (std::is_same_v<A, float>) {
      if (filter_.on()) {  // into its block of 16 (a new block starts zeroed)
        const int64_t block = n_centers_ / kBlock;
        // three zero blocks past the last: the filter computes four blocks at a time
        const size_t block_need = static_cast<size_t>((block + 4) * kBlock * dp_);
        if (centers16_.size() < block_need) centers16_.resize(std::max(block_need, 2 * centers16_.size()), 0);
        pack_center(packed, dp_, static_cast<int>(n_centers_ % kBlock), centers16_.data() + block * kBlock * dp_);
        if (csq_lo_.size() < static_cast<size_t>((block + 4) * kBlock)) {
          csq_lo_.resize(static_cast<size_t>((block + 4) * kBlock), 0.0);
          croot_.resize(csq_lo_.size(), 0.0);
        }
        Bf16Filter::center_terms(Bf16Filter::norm(packed, dp_), &csq_lo_[n_centers_], &croot_[n_centers_]);
      }
    }
    ++n_centers_;
  }
  void reserve_centers(int64_t m) { centers_.reserve(static_cast<size_t>((m + kTile) * dp_)); }

  // Row i of this block is a center (added already): never a candidate again.
  void mark_chosen(int64_t i) {
    chosen[i] = 1;
    ub[i] = A(0);
    stamp[i] = static_cast<int32_t>(n_centers_);
  }

  // The plain loop's step for row i: its bound meets the newest center only.
  A meet_newest(int64_t i) {
    const A s = std::min(ub[i], dist(i, n_centers_ - 1));
    ub[i] = s;
    stamp[i] = static_cast<int32_t>(n_centers_);
    return s;
  }

  void invalidate_heap() { heap_valid_ = false; }

  // Brings every unchosen row up to date, a tile of rows at a time on all threads.
  void refresh_all() {
    constexpr int64_t kRows = 256;
    const int64_t tiles = (n_ + kRows - 1) / kRows;
    std::vector<int64_t> counts(buffers_.size(), 0);
    parallel_for(tiles, threads_, [&](int64_t lo, int64_t hi, int w) {
      std::vector<int64_t> idx;
      for (int64_t tile = lo; tile < hi; ++tile) {
        idx.clear();
        for (int64_t i = tile * kRows, end = std::min(n_, i + kRows); i < end; ++i)
          if (!chosen[i] && stamp[i] < n_centers_) idx.push_back(i);
        if (idx.empty()) continue;
        sort_by_stamp(idx);
        counts[w] += stale_distances(idx);
        refresh_points(idx.data(), static_cast<int64_t>(idx.size()), buffers_[w]);
      }
    }, 1);
    for (auto c : counts) evals_ += c;
    invalidate_heap();  // every bound may have changed
  }

  // The farthest unchosen row and its exact value ({0, -1} when none is left); it stays on the
  // heap. Stale entries are taken off the top in batches (stopping at the first current one)
  // and refreshed together, on all threads when the batch is large; chosen rows are dropped.
  std::pair<A, int64_t> exact_top() {
    if (!heap_valid_) build_heap();
    for (;;) {
      while (!heap_.empty() && chosen[heap_.front().index]) pop_top();
      if (heap_.empty()) return {A(0), -1};
      const Entry& top = heap_.front();
      if (stamp[top.index] == n_centers_) return {top.value, top.index};
      batch_.clear();
      // large batches (one per thread) only while they are worth the threads; otherwise small
      // ones, since a row refreshed before it reaches the top is popped, packed and sorted for
      // nothing (most of the time at 10,000 rows)
      const size_t limit = batches_parallel_ ? kBatch * buffers_.size() : kSerialBatch;
      while (!heap_.empty() && batch_.size() < limit && stamp[heap_.front().index] != n_centers_) {
        const int64_t i = pop_top().index;
        if (!chosen[i]) batch_.push_back(i);
      }
      refresh_batch();
      for (int64_t i : batch_) push({ub[i], i});
    }
  }

  Entry pop_top() {
    std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
    const Entry e = heap_.back();
    heap_.pop_back();
    return e;
  }
  void push(Entry e) {
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), lower_priority);
  }

 private:
  // The heap's order, as a type so that the heap algorithms inline it (a function pointer
  // costs a call per comparison: a sixth of the time at 10,000 rows).
  struct LowerPriority {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.value < b.value || (a.value == b.value && a.index > b.index);
    }
  };
  static constexpr LowerPriority lower_priority{};

  const A* center(int64_t c) const { return centers_.data() + c * dp_; }
  A dist(int64_t i, int64_t c) const { return sqdist<T, A>(row(i), center(c), d_, cosine_, scale(i)); }

  void build_heap() {
    heap_.clear();
    heap_.reserve(n_);
    for (int64_t i = 0; i < n_; ++i)
      if (!chosen[i]) heap_.push_back({ub[i], i});
    std::make_heap(heap_.begin(), heap_.end(), lower_priority);
    heap_valid_ = true;
  }

  // One worker's scratch: packed rows, the first center each still needs, their bounds.
  struct Buffers {
    std::vector<A> rows;
    std::vector<int32_t> from;
    std::vector<A> ub;
    std::vector<uint16_t> rows16;  // the filter's bf16 rows (whole blocks of 16) and their norms
    std::vector<Bf16Filter::Norm> norms;
    // the filter's verdicts: slot s holds, for rows block g and the 64 centers of blocks
    // b4 .. b4 + 3 (tag (g, b4)), a bit per pair it proved unable to lower the row's bound
    std::vector<float> dots = std::vector<float>(4 * kBlock * kBlock);
    uint64_t masks[4][kBlock] = {};
    int64_t tags[4][2] = {};
    bool filtering = false;  // this batch goes through the filter
    int64_t filtered = 0;
  };

  // Brings the rows idx[0, m) up to date with every center: packs them in order of their
  // stamps (callers pass them sorted), then blocks over centers and tiles of four rows.
  void refresh_points(const int64_t* idx, int64_t m, Buffers& buf) {
    if (m == 0) return;
    const int64_t padded = (m + kTile - 1) / kTile * kTile;
    buf.rows.resize(static_cast<size_t>(padded * dp_));
    buf.from.resize(padded);
    buf.ub.resize(padded);
    for (int64_t t = 0; t < padded; ++t) {
      A* dst = buf.rows.data() + t * dp_;
      if (t < m) {
        const int64_t i = idx[t];
        widen_row<T, A>(row(i), d_, dp_, cosine_, scale(i), dst);
        buf.from[t] = stamp[i];
        buf.ub[t] = ub[i];
      } else {  // a ragged last tile: zero rows that need no center
        std::fill(dst, dst + dp_, A(0));
        buf.from[t] = static_cast<int32_t>(n_centers_);
        buf.ub[t] = A(0);
      }
    }
    buf.filtering = false;
    if constexpr (std::is_same_v<A, float>) {
      // the filter pays (packing the rows, whole 16 x 64 blocks of dots) only when the rows
      // still need many centers each: at the end, not while picking rows a few centers stale
      if (filter_.on()) {
        int64_t work = 0;
        for (int64_t t = 0; t < m; ++t) work += n_centers_ - buf.from[t];
        buf.filtering = work >= kFilterCenters * m;
      }
      if (buf.filtering) {
        const int64_t blocks = (padded + kBlock - 1) / kBlock * kBlock;
        buf.rows16.assign(static_cast<size_t>(blocks * dp_), 0);
        buf.norms.resize(padded);
        for (int64_t t = 0; t < padded; ++t) {
          filter_.pack(buf.rows.data() + t * dp_, dp_, buf.rows16.data() + t * dp_);
          buf.norms[t] = t < m ? row_norm(idx[t], buf.rows.data() + t * dp_) : Bf16Filter::Norm{};
        }
        for (auto& tag : buf.tags) tag[0] = -1;
      }
    }
    refresh_block(buf, padded);
    for (int64_t t = 0; t < m; ++t) {
      ub[idx[t]] = buf.ub[t];
      stamp[idx[t]] = static_cast<int32_t>(n_centers_);
    }
  }

  // ub[t] <- min(ub[t], d(row t, c)) for every center c in [from[t], n_centers_); rows sorted by
  // from, their count a multiple of kTile. A chunk of centers stays in cache while every tile
  // of rows that needs it passes; within a tile, a center some rows already had is computed
  // for all four and counted only where it is new (the minimum is exact either way).
  void refresh_block(Buffers& buf, int64_t m) const {
    constexpr int64_t kChunk = 128;
    const A* rows = buf.rows.data();
    const int32_t* from = buf.from.data();
    A* bound = buf.ub.data();
    alignas(64) A out[kTile * kTile];
    for (int64_t c0 = from[0]; c0 < n_centers_; c0 += kChunk) {
      const int64_t c1 = std::min(n_centers_, c0 + kChunk);
      for (int64_t t = 0; t < m && from[t] < c1; t += kTile) {
        for (int64_t q0 = std::max<int64_t>(c0, from[t]); q0 < c1; q0 += kTile) {
          const int64_t qn = std::min<int64_t>(kTile, c1 - q0);
          if (filtered_out(buf, t, q0, qn)) continue;
          tile_(rows + t * dp_, dp_, center(q0), dp_, dp_, out);
          if (qn == kTile && from[t + kTile - 1] <= q0) {  // all sixteen new: a plain minimum
            for (int r = 0; r < kTile; ++r)
              bound[t + r] = std::min(std::min(std::min(bound[t + r], out[r]), std::min(out[4 + r], out[8 + r])),
                                      out[12 + r]);
            continue;
          }
          for (int r = 0; r < kTile; ++r) {
            A s = bound[t + r];
            for (int64_t q = std::max<int64_t>(0, from[t + r] - q0); q < qn; ++q) s = std::min(s, out[kTile * q + r]);
            bound[t + r] = s;
          }
        }
      }
    }
  }

  // True when the filter proves that no center q0 .. q0+qn-1 can lower the bound of any row of
  // tile t that still needs it (those pairs are then counted as filtered).
  bool filtered_out(Buffers& buf, int64_t t, int64_t q0, int64_t qn) const {
    if constexpr (std::is_same_v<A, float>) {
      if (!buf.filtering) return false;
      const int64_t g = t / kBlock, row0 = t - g * kBlock;
      if (qn == kTile && buf.from[t + kTile - 1] <= q0 && q0 % 64 <= 64 - kTile) {  // all sixteen new
        const uint64_t* mask = filter_masks(buf, g, q0 / 64 * 4);
        const int shift = static_cast<int>(q0 % 64);
        for (int r = 0; r < kTile; ++r)
          if (((mask[row0 + r] >> shift) & 0xfu) != 0xfu) return false;
        buf.filtered += kTile * kTile;
        return true;
      }
      int64_t pairs = 0;
      for (int r = 0; r < kTile; ++r)
        for (int64_t q = std::max<int64_t>(0, buf.from[t + r] - q0); q < qn; ++q, ++pairs) {
          const int64_t c = q0 + q;
          if (!((filter_masks(buf, g, c / 64 * 4)[row0 + r] >> (c % 64)) & 1u)) return false;
        }
      buf.filtered += pairs;
      return true;
    } else {
      return false;
    }
  }

  // The filter's verdicts for rows block g and center blocks b4 .. b4 + 3 (b4 a multiple of 4),
  // computed at first need: a mask of 64 centers per row. A row's bound only falls while the
  // batch is refreshed, so a verdict made against an earlier bound stays true.
  const uint64_t* filter_masks(Buffers& buf, int64_t g, int64_t b4) const {
    const int64_t slot = b4 / 4 % 4;
    int64_t* tag = buf.tags[slot];
    uint64_t* masks = buf.masks[slot];
    if (tag[0] == g && tag[1] == b4) return masks;
    float* dots = buf.dots.data();
    filter_.blocks4(buf.rows16.data() + g * kBlock * dp_, centers16_.data() + b4 * kBlock * dp_, dp_, dots);
    const int64_t rows = static_cast<int64_t>(buf.norms.size());
    for (int64_t m = 0; m < kBlock; ++m) {
      const int64_t t = g * kBlock + m;
      masks[m] = 0;
      if (t >= rows) continue;
      for (int i = 0; i < 4; ++i) {
        const int64_t c = (b4 + i) * kBlock;
        const uint64_t bits = filter_.mask16(buf.norms[t], static_cast<double>(buf.ub[t]), csq_lo_.data() + c,
                                             croot_.data() + c, dots + i * kBlock * kBlock + m * kBlock);
        masks[m] |= bits << (16 * i);
      }
    }
    tag[0] = g;
    tag[1] = b4;
    return masks;
  }

  // Row i's norms for the filter (its packed vector is given), computed once.
  Bf16Filter::Norm row_norm(int64_t i, const A* packed) {
    if (rnorm_[i].root < 0) rnorm_[i] = Bf16Filter::norm(reinterpret_cast<const float*>(packed), dp_);
    return rnorm_[i];
  }

  // Sorts rows by stamp (most stale first) so that a tile's four share most of their centers.
  void sort_by_stamp(std::vector<int64_t>& idx) const {
    std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      return stamp[a] < stamp[b] || (stamp[a] == stamp[b] && a < b);
    });
  }

  int64_t stale_distances(const std::vector<int64_t>& idx) const {
    int64_t work = 0;
    for (int64_t i : idx) work += n_centers_ - stamp[i];
    return work;
  }

  void refresh_batch() {
    sort_by_stamp(batch_);
    const int64_t m = static_cast<int64_t>(batch_.size());
    const int64_t work = stale_distances(batch_);
    evals_ += work;
    const int threads = static_cast<int>(buffers_.size());
    // would a batch for every thread have enough work to share? (projected from this batch's
    // stale centers per row; switching to threads asks for `threads` times more, so that the
    // choice does not flap)
    const double projected = static_cast<double>(work) / static_cast<double>(std::max<int64_t>(m, 1)) *
                             static_cast<double>(kBatch * threads);
    batches_parallel_ = threads > 1 && projected >= static_cast<double>(kParallelWork) * (batches_parallel_ ? 1 : threads);
    if (work < kParallelWork || threads == 1 || m < 2 * kTile * threads) {
      refresh_points(batch_.data(), m, buffers_[0]);
      return;
    }
    // worker w takes tiles w, w + threads, ...: stale and fresh tiles alike go to every worker
    const int64_t tiles = (m + kTile - 1) / kTile;
    parallel_for(threads, threads, [&](int64_t w, int64_t, int) {
      std::vector<int64_t> mine;
      for (int64_t tile = w; tile < tiles; tile += threads)
        for (int64_t t = tile * kTile; t < std::min(m, (tile + 1) * kTile); ++t) mine.push_back(batch_[t]);
      refresh_points(mine.data(), static_cast<int64_t>(mine.size()), buffers_[w]);
    }, 1);
  }

  // Stale centers a row of a batch needs on average for the batch to go through the filter.
  static constexpr int64_t kFilterCenters = 64;
  // Rows taken off the heap at once, per thread: enough tiles to share the centers' loads.
  static constexpr size_t kBatch = 256;
  // Rows taken off the heap at once while one thread refreshes them.
  static constexpr size_t kSerialBatch = 32;
  // About a millisecond of blocked distances (at d = 384): well above the cost of starting
  // threads and of packing a batch for every thread.
  static constexpr int64_t kParallelWork = 1 << 17;

  const T* X_;
  int64_t n_, d_, dp_;
  bool cosine_;
  int threads_;
  TileFn<A> tile_;
  Bf16Filter filter_;
  std::vector<A> inv_, centers_;
  std::vector<uint16_t> centers16_;  // the filter's bf16 centers, in blocks of 16 (pack_center)
  std::vector<double> csq_lo_, croot_;  // the filter's center terms (Bf16Filter::center_terms)
  // Row norms for the filter, computed at a row's first refresh (root < 0: not yet); a row's
  // packed vector never changes, and rows are refreshed many times.
  std::vector<Bf16Filter::Norm> rnorm_;
  std::vector<Buffers> buffers_;
  std::vector<Entry> heap_;
  std::vector<int64_t> batch_;
  bool heap_valid_ = false;
  bool batches_parallel_ = true;  // take a batch per thread (the last batch projected enough work)
  int64_t n_centers_ = 0, evals_ = 0;
};

}  // namespace isel::kcenter
