// The word-character bitmap, built from the caller's code-point ranges.
#include "coverage/tokens.hpp"

#include "common/check.hpp"

namespace isel::coverage {

WordTable::WordTable(const int32_t* ranges, int64_t n) : bits_((kCodePoints + 63) / 64, 0) {
  require(n >= 0 && (n == 0 || ranges != nullptr), "word_ranges must hold ", n, " pairs");
  for (int64_t r = 0; r < n; ++r) {
    const int32_t first = ranges[2 * r], last = ranges[2 * r + 1];
    require(first >= 0 && first <= last && last < static_cast<int32_t>(kCodePoints), "word_ranges[", r,
            "] ([", first, ", ", last, "]) must be a code-point range within [0, 0x10FFFF]");
    for (int32_t cp = first; cp <= last; ++cp) bits_[cp >> 6] |= uint64_t{1} << (cp & 63);
  }
}

}  // namespace isel::coverage
