// Host helpers of scikit-learn's final step, shared by the CPU and the CUDA drivers: grouping
// points by cluster (members in ascending index order) and the final renumbering of labels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace isel::affinity::detail {

// Members of cluster k are members[start[k] .. start[k + 1]), in ascending index order.
struct Groups {
  std::vector<int64_t> start, members;
};

inline Groups group_by_cluster(const int64_t* c, int64_t n, int64_t K) {
  Groups g;
  g.start.assign(K + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++g.start[c[i] + 1];
  for (int64_t k = 0; k < K; ++k) g.start[k + 1] += g.start[k];
  g.members.resize(n);
  std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
  for (int64_t i = 0; i < n; ++i) g.members[fill[c[i]]++] = i;
  return g;
}

// labels = I[c], then renumbered by the sorted exemplars (numpy.unique + searchsorted).
inline int64_t finish_labels(const std::vector<int64_t>& I, const int64_t* c, int64_t n, int64_t* exemplars,
                             int64_t* labels) {
  const int64_t K = static_cast<int64_t>(I.size());
  std::vector<int64_t> sorted(I);
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> rank(K);
  for (int64_t k = 0; k < K; ++k)
    rank[k] = std::lower_bound(sorted.begin(), sorted.end(), I[k]) - sorted.begin();
  for (int64_t k = 0; k < K; ++k) exemplars[k] = sorted[k];
  for (int64_t i = 0; i < n; ++i) labels[i] = rank[c[i]];
  return K;
}

}  // namespace isel::affinity::detail
