// Checks for the distributed k-center shard (kcenter/shard.hpp): a driver written here over
// several shards of one matrix must pick exactly what the single-process greedy picks (same
// indices, same radii, same min-distances bit for bit), for every storage type, both metrics,
// duplicated rows (exact ties) and a shard restored from a checkpoint halfway. Shards run two
// threads each, so the sanitizer builds see their threaded refreshes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/hooks.hpp"
#include "kcenter/kcenter.hpp"
#include "kcenter/shard.hpp"
#include "tests/harness.hpp"

namespace {

using isel::DType;
using isel::kcenter::Metric;
namespace kc = isel::kcenter;

size_t element_size(DType t) { return t == DType::float64 ? 8 : t == DType::float32 ? 4 : 2; }

// n x d normal values in the storage type; the last `duplicates` rows repeat earlier ones.
std::vector<unsigned char> make_rows(int64_t n, int64_t d, DType dtype, int duplicates, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n * d);
  for (auto& x : v) x = normal(gen);
  for (int r = 0; r < duplicates; ++r) std::memcpy(&v[(n - 1 - r) * d], &v[(2 * r) * d], sizeof(float) * d);
  std::vector<unsigned char> out(v.size() * element_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::float32) {
      std::memcpy(&out[4 * i], &v[i], 4);
    } else if (dtype == DType::float64) {
      const double x = v[i];
      std::memcpy(&out[8 * i], &x, 8);
    } else {
      const uint16_t h = dtype == DType::float16 ? isel::float_to_half(v[i]) : isel::float_to_bfloat16(v[i]);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

struct Result {
  std::vector<int64_t> indices;
  std::vector<double> radii, min_distances;
};

Result single_process(const std::vector<unsigned char>& X, int64_t n, int64_t d, int64_t k, DType dtype,
                      Metric metric) {
  Result r;
  r.indices.resize(k);
  r.radii.resize(k);
  r.min_distances.resize(n);
  kc::Problem p;
  p.X = X.data();
  p.dtype = dtype;
  p.n = n;
  p.d = d;
  p.k = k;
  p.metric = metric;
  p.threads = 2;
  kc::Output out{r.indices.data(), r.radii.data(), r.min_distances.data()};
  kc::greedy(p, out, isel::Hooks{});
  return r;
}

// The driver: shards of `rows` rows each; every pick asks each shard for its best row and takes
// the global best (value, then lowest global index). With `checkpoint_at`, shard 0 is saved
// after that many picks and replaced by a fresh shard restored from the save.
Result sharded(const std::vector<unsigned char>& X, int64_t n, int64_t d, int64_t k, DType dtype, Metric metric,
               int64_t rows, int64_t checkpoint_at = -1) {
  const size_t row_bytes = d * element_size(dtype);
  std::vector<int64_t> offsets;
  std::vector<std::unique_ptr<kc::Shard>> shards;
  auto make_shard = [&](int64_t off) {
    return std::make_unique<kc::Shard>(X.data() + off * row_bytes, dtype, std::min(rows, n - off), d, metric, 2);
  };
  for (int64_t off = 0; off < n; off += rows) {
    offsets.push_back(off);
    shards.push_back(make_shard(off));
  }
  Result r;
  std::vector<int64_t> picked;
  auto add = [&](int64_t g) {
    for (size_t s = 0; s < shards.size(); ++s) {
      const int64_t local = g >= offsets[s] && g < offsets[s] + shards[s]->rows() ? g - offsets[s] : -1;
      shards[s]->add_centers(X.data() + g * row_bytes, 1, &local);
    }
    picked.push_back(g);
  };
  add(0);  // the single process's seed
  r.indices.push_back(0);
  for (int64_t t = 1; t <= k; ++t) {
    int64_t best = -1;
    double value = -1.0;
    for (size_t s = 0; s < shards.size(); ++s) {
      const kc::ShardTop top = shards[s]->top(1);
      if (top.index.empty()) continue;
      const int64_t g = offsets[s] + top.index[0];
      if (top.value[0] > value || (top.value[0] == value && g < best)) {
        value = top.value[0];
        best = g;
      }
    }
    r.radii.push_back(best < 0 ? 0.0 : kc::reported_distance(value, metric));
    if (t == k) break;
    add(best);
    r.indices.push_back(best);
    if (t == checkpoint_at) {  // shard 0 dies and comes back from its checkpoint
      const int64_t m = shards[0]->rows();
      const size_t ub_bytes = dtype == DType::float64 ? 8 : 4;
      std::vector<unsigned char> ub(m * ub_bytes);
      std::vector<int32_t> stamp(m);
      std::vector<uint8_t> chosen(m);
      shards[0]->save(ub.data(), stamp.data(), chosen.data());
      shards[0] = make_shard(0);
      shards[0]->load(ub.data(), stamp.data(), chosen.data());
      for (int64_t g : picked) {
        const int64_t local = g < m ? g : -1;
        shards[0]->add_centers(X.data() + g * row_bytes, 1, &local);
      }
    }
  }
  for (size_t s = 0; s < shards.size(); ++s) {
    std::vector<double> md(shards[s]->rows());
    shards[s]->min_distances(md.data());
    r.min_distances.insert(r.min_distances.end(), md.begin(), md.end());
  }
  return r;
}

void expect_same(const Result& want, const Result& got) {
  EXPECT(got.indices == want.indices, "picks differ");
  EXPECT(got.radii.size() == want.radii.size(), got.radii.size(), want.radii.size());
  for (size_t t = 0; t < want.radii.size(); ++t) EXPECT(got.radii[t] == want.radii[t], t, got.radii[t], want.radii[t]);
  EXPECT(got.min_distances.size() == want.min_distances.size());
  for (size_t i = 0; i < want.min_distances.size(); ++i)
    EXPECT(got.min_distances[i] == want.min_distances[i], i, got.min_distances[i], want.min_distances[i]);
}

void check_all(Metric metric) {
  const int64_t n = isel::test::kSanitized ? 700 : 3000, d = 37, k = 60;
  for (DType dtype : {DType::float32, DType::float64, DType::float16, DType::bfloat16}) {
    const auto X = make_rows(n, d, dtype, 25, 11);
    const Result want = single_process(X, n, d, k, dtype, metric);
    for (int64_t rows : {n, n / 3 + 1, int64_t{97}}) expect_same(want, sharded(X, n, d, k, dtype, metric, rows));
    expect_same(want, sharded(X, n, d, k, dtype, metric, n / 2 + 1, k / 2));
  }
}

ISEL_CHECK_CASE(shards_pick_as_one_process_euclidean) { check_all(Metric::euclidean); }
ISEL_CHECK_CASE(shards_pick_as_one_process_cosine) { check_all(Metric::cosine); }

ISEL_CHECK_CASE(pair_sq_matches_shard_values) {
  const int64_t n = 200, d = 33;
  for (Metric metric : {Metric::euclidean, Metric::cosine}) {
    const auto X = make_rows(n, d, DType::float32, 0, 5);
    kc::Shard shard(X.data(), DType::float32, n, d, metric, 2);
    const int64_t local = 7;
    shard.add_centers(X.data() + local * d * 4, 1, &local);
    const kc::ShardTop top = shard.top(3);
    std::vector<double> sq(3);
    for (int j = 0; j < 3; ++j) {
      kc::pair_sq(X.data() + top.index[j] * d * 4, 1, X.data() + local * d * 4, 1, d, DType::float32, metric, &sq[j], 1);
      EXPECT(sq[j] == top.value[j], j, sq[j], top.value[j]);
    }
  }
}

ISEL_CHECK_CASE(bad_calls_are_refused) {
  const auto X = make_rows(10, 4, DType::float32, 0, 3);
  kc::Shard shard(X.data(), DType::float32, 10, 4, Metric::euclidean, 1);
  const int64_t bad = 10;
  EXPECT(isel::test::thrown_message([&] { shard.add_centers(X.data(), 1, &bad); }).find("local[0]") !=
         std::string::npos);
  EXPECT(isel::test::thrown_message([&] { shard.top(0); }).find("at least 1") != std::string::npos);
  std::vector<float> zeros(8, 0.0f);
  EXPECT(isel::test::thrown_message([&] { kc::Shard(zeros.data(), DType::float32, 2, 4, Metric::cosine, 1); })
             .find("zero norm") != std::string::npos);
}

}  // namespace

ISEL_TEST_MAIN()
