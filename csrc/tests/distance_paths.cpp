// The canonical distance order on every vector path this CPU has (common/simd.hpp): the single
// pair (sqdist, every storage type, scaled or not), the 4 x 4 tiles (common/distance_tile.hpp)
// and the packed rows (widen_row) must give the scalar path's bits, for lengths on and off the
// 32-element pattern. The sanitizer builds run this too (the tiles' reads stay in the packing).
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/distance.hpp"
#include "common/distance_tile.hpp"
#include "common/simd.hpp"
#include "tests/harness.hpp"

namespace {

using isel::SimdLevel;

const int64_t kLengths[] = {1, 7, 16, 31, 32, 33, 47, 64, 100, 384, 385};

std::vector<SimdLevel> vector_paths() {
  std::vector<SimdLevel> out;
  for (int s = 1; s <= static_cast<int>(isel::simd_supported()); ++s) out.push_back(static_cast<SimdLevel>(s));
  return out;
}

template <class A>
bool same_bits(A a, A b) { return std::memcmp(&a, &b, sizeof(A)) == 0; }

// Restores the path chosen before, whatever the check does.
struct ForcePath {
  SimdLevel before = isel::simd_level();
  explicit ForcePath(SimdLevel s) { isel::set_simd_level(isel::simd_name(s)); }
  ~ForcePath() { isel::set_simd_level(isel::simd_name(before)); }
};

template <class T>
T stored(float v);
template <> float stored<float>(float v) { return v; }
template <> double stored<double>(float v) { return static_cast<double>(v) * 1.000001; }
template <> isel::half_bits stored<isel::half_bits>(float v) { return {isel::float_to_half(v)}; }
template <> isel::bfloat16_bits stored<isel::bfloat16_bits>(float v) { return {isel::float_to_bfloat16(v)}; }

template <class T>
void check_pairs(SimdLevel path, const char* type) {
  using A = isel::accum_t<T>;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t d : kLengths) {
    std::vector<T> x(d);
    std::vector<A> c(d);
    for (int64_t j = 0; j < d; ++j) {
      x[j] = stored<T>(normal(gen));
      c[j] = static_cast<A>(normal(gen));
    }
    for (bool scaled : {false, true}) {
      const A inv = scaled ? A(0.37) : A(1);
      const A want = isel::sqdist_scalar<T, A>(x.data(), c.data(), d, scaled, inv);
      ForcePath force(path);
      const A got = isel::sqdist<T, A>(x.data(), c.data(), d, scaled, inv);
      EXPECT(same_bits(got, want), type, isel::simd_name(path), "d", d, "scaled", scaled, "got", got, "want", want);
      std::vector<A> packed(isel::padded_dim(d) + 1, A(-1)), ref(isel::padded_dim(d), A(0));
      isel::widen_row<T, A>(x.data(), d, isel::padded_dim(d), scaled, inv, packed.data());
      for (int64_t j = 0; j < d; ++j) ref[j] = scaled ? isel::load_float(x.data(), j) * inv : isel::load_float(x.data(), j);
      EXPECT(std::memcmp(packed.data(), ref.data(), sizeof(A) * ref.size()) == 0, type, "widen_row d", d);
      EXPECT(packed.back() == A(-1), type, "widen_row wrote past the padding, d", d);
    }
  }
}

ISEL_CHECK_CASE(single_pair_every_path_every_storage_type) {
  for (SimdLevel path : vector_paths()) {
    check_pairs<float>(path, "float");
    check_pairs<double>(path, "double");
    check_pairs<isel::half_bits>(path, "float16");
    check_pairs<isel::bfloat16_bits>(path, "bfloat16");
  }
}

template <class A>
void check_tiles(SimdLevel path, const char* type) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t d : kLengths) {
    const int64_t dp = isel::padded_dim(d);
    // rows and columns with a stride longer than dp, as packed blocks may have
    const int64_t rs = dp + 32, cs = dp;
    std::vector<A> r(4 * rs, A(0)), c(4 * cs, A(0));
    for (int m = 0; m < 4; ++m)
      for (int64_t j = 0; j < d; ++j) {
        r[m * rs + j] = static_cast<A>(u(gen));
        c[m * cs + j] = m == 2 ? r[m * rs + j] : static_cast<A>(u(gen));  // one exact duplicate: 0
      }
    A out[16];
    isel::tile_kernel<A>(path)(r.data(), rs, c.data(), cs, dp, out);
    for (int m = 0; m < 4; ++m)
      for (int q = 0; q < 4; ++q) {
        const A want = isel::sqdist_scalar<A, A>(r.data() + m * rs, c.data() + q * cs, d, false, A(1));
        EXPECT(same_bits(out[4 * q + m], want), type, isel::simd_name(path), "d", d, "row", m, "column", q, "got",
               out[4 * q + m], "want", want);
      }
    EXPECT(out[4 * 2 + 2] == A(0), type, "a duplicate's distance is exactly 0");
  }
}

ISEL_CHECK_CASE(tiles_every_path) {
  check_tiles<float>(SimdLevel::scalar, "float");
  check_tiles<double>(SimdLevel::scalar, "double");
  for (SimdLevel path : vector_paths()) {
    check_tiles<float>(path, "float");
    check_tiles<double>(path, "double");
  }
}

ISEL_CHECK_CASE(forcing_a_path_the_cpu_lacks_is_an_error) {
  if (isel::simd_supported() == SimdLevel::avx512) {
    EXPECT(isel::test::thrown_message([] { isel::set_simd_level("sse9"); }).find("'scalar', 'avx2', 'avx512'") !=
           std::string::npos);
    return;
  }
  const std::string msg = isel::test::thrown_message([] { isel::set_simd_level("avx512"); });
  EXPECT(msg.find("supports at most") != std::string::npos, msg);
}

}  // namespace

ISEL_TEST_MAIN()
