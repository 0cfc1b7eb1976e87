// Tokens for the TF-IDF: the word-character table, the tokenizer of `(?u)\b\w\w+\b`, and a table
// interning token strings (UTF-8) to dense ids.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "coverage/coverage.hpp"
#include "coverage/flat_index.hpp"

namespace isel::coverage {

// Which code points are word characters (a bitmap over U+0000..U+10FFFF).
class WordTable {
 public:
  // ranges: n pairs [first, last], inclusive.
  WordTable(const int32_t* ranges, int64_t n);
  bool is_word(uint32_t cp) const { return cp < kCodePoints && ((bits_[cp >> 6] >> (cp & 63)) & 1u); }

 private:
  static constexpr uint32_t kCodePoints = 0x110000;
  std::vector<uint64_t> bits_;
};

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Calls emit(std::string_view utf8) for each maximal run of >= 2 word characters of `s`
// (exactly what re.findall(r"(?u)\b\w\w+\b", s) returns: \b holds only at the ends of a run).
template <class CodeUnit, class Emit>
void for_each_token(const CodeUnit* s, int64_t n, const WordTable& words, std::string& scratch, Emit&& emit) {
  int64_t i = 0;
  while (i < n) {
    if (!words.is_word(static_cast<uint32_t>(s[i]))) {
      ++i;
      continue;
    }
    int64_t start = i;
    bool ascii = true;
    while (i < n && words.is_word(static_cast<uint32_t>(s[i]))) {
      ascii &= static_cast<uint32_t>(s[i]) < 0x80;
      ++i;
    }
    if (i - start < 2) continue;
    if constexpr (sizeof(CodeUnit) == 1) {
      if (ascii) {  // Latin-1 below 0x80 is its own UTF-8
        emit(std::string_view(reinterpret_cast<const char*>(s + start), static_cast<size_t>(i - start)));
        continue;
      }
    }
    scratch.clear();
    for (int64_t j = start; j < i; ++j) append_utf8(scratch, static_cast<uint32_t>(s[j]));
    emit(std::string_view(scratch));
  }
}

template <class Emit>
void for_each_token(const TextView& t, const WordTable& words, std::string& scratch, Emit&& emit) {
  switch (t.width) {
    case 1: for_each_token(static_cast<const uint8_t*>(t.data), t.length, words, scratch, emit); break;
    case 2: for_each_token(static_cast<const uint16_t*>(t.data), t.length, words, scratch, emit); break;
    default: for_each_token(static_cast<const uint32_t*>(t.data), t.length, words, scratch, emit); break;
  }
}

// Distinct token strings with dense ids in order of first appearance.
class TokenTable {
 public:
  uint32_t intern(std::string_view token) {
    const uint64_t h = hash_bytes(token.data(), token.size());
    auto [id, inserted] = index_.find_or_insert(h, [&](uint32_t id) { return get(id) == token; });
    if (inserted) {
      bytes_.insert(bytes_.end(), token.begin(), token.end());
      offsets_.push_back(bytes_.size());
    }
    return id;
  }
  std::string_view get(uint32_t id) const {
    return std::string_view(bytes_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  FlatIndex index_;
  std::vector<char> bytes_;
  std::vector<uint64_t> offsets_{0};
};

}  // namespace isel::coverage
