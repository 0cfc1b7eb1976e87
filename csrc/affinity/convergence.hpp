// scikit-learn's convergence rule for affinity propagation, kept with O(n) memory.
//
// sklearn stores E (A_kk + R_kk > 0) of the last `convergence_iter` iterations and, from
// iteration t = convergence_iter on, stops once every point's E was the same in all of them and
// some point is an exemplar. A run length per point says the same: E_k was constant over the
// last w iterations iff its run of equal values is at least w long. (The CUDA driver keeps the
// run lengths on the device and applies `converged_at` to the two counts it reads back.)
#pragma once

#include <cstdint>
#include <vector>

namespace isel::affinity {

inline bool converged_at(int64_t t, int64_t window, int64_t unsettled, int64_t exemplars) {
  return t >= window && unsettled == 0 && exemplars > 0;
}

class Convergence {
 public:
  Convergence(int64_t n, int64_t window) : window_(window), e_(n, 0), run_(n, 0) {}

  // E_k of the current iteration (call for every k, then step).
  void set(int64_t k, bool e) {
    const uint8_t v = e ? 1 : 0;
    if (first_ || v != e_[k]) run_[k] = 1;
    else if (run_[k] < window_) ++run_[k];
    e_[k] = v;
  }

  // True when iteration t (0-based) meets the rule.
  bool step(int64_t t) {
    first_ = false;
    int64_t exemplars = 0, unsettled = 0;
    for (size_t k = 0; k < e_.size(); ++k) {
      exemplars += e_[k];
      unsettled += run_[k] < window_;
    }
    return converged_at(t, window_, unsettled, exemplars);
  }

  void copy_to(uint8_t* out) const {
    for (size_t k = 0; k < e_.size(); ++k) out[k] = e_[k];
  }

 private:
  int64_t window_;
  bool first_ = true;
  std::vector<uint8_t> e_;
  std::vector<int64_t> run_;
};

}  // namespace isel::affinity
