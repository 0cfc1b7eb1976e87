// TF-IDF of word n-grams, parallel over documents, equal to scikit-learn's TfidfVectorizer.
//
// Documents are cut into one contiguous chunk per thread. The phases:
//   1. tokenize (parallel): each chunk interns its tokens (UTF-8) in its own table;
//   2. merge tokens: one global table, sorted by bytes (= code-point order); every token becomes
//      its rank + 1 (0 pads short n-grams, so a prefix sorts first, like the string "a" < "a b");
//   3. count (parallel): each chunk maps its n-grams (tuples of ranks, compared in full) to
//      local ids, with per-document counts and per-chunk document frequencies;
//   4. merge n-grams (parallel over shards): shard s owns the n-grams whose first token falls in
//      its range of ranks, so sorting each shard and laying the shards end to end gives the
//      sorted vocabulary; document frequencies add up across chunks;
//   5. write (parallel): each document's (column, count) pairs sorted by column, weighted (count
//      times idf over the row's l2 norm, or count over the document's n-gram total times idf),
//      into its slice of the CSR arrays.
// The result does not depend on the number of threads.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/check.hpp"
#include "common/parallel.hpp"
#include "coverage/coverage.hpp"
#include "coverage/flat_index.hpp"
#include "coverage/ngram_index.hpp"
#include "coverage/tokens.hpp"

namespace isel::coverage {
namespace {

// Progress over all workers. Every worker adds the documents it finished; worker 0 runs on the
// calling thread and forwards to the hooks; once the hooks ask to stop, every worker returns at
// its next document and parallel_for rethrows worker 0's Cancelled.
class SharedProgress {
 public:
  SharedProgress(const Hooks& hooks, int64_t total) : hooks_(hooks), total_(total) {}

  void add(int worker, int64_t docs = 1) {
    done_.fetch_add(docs, std::memory_order_relaxed);
    if (worker == 0 && ++calls_ % 64 == 0) report();
  }
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }
  void report() {
    try {
      hooks_.tick(std::min(done_.load(std::memory_order_relaxed), total_ - 1), total_);
    } catch (...) {
      stop_.store(true, std::memory_order_relaxed);
      throw;
    }
  }

 private:
  const Hooks& hooks_;
  const int64_t total_;
  std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
  int64_t calls_ = 0;
};

struct Term {
  uint32_t column;
  double idf;
};

struct Chunk {
  int64_t lo = 0, hi = 0;
  TokenTable tokens;                  // phase 1 (freed after phase 2)
  std::vector<uint32_t> ids;          // token ids of docs lo..hi, then their ranks + 1
  std::vector<uint32_t> entry_ids;    // phase 3: per doc, its distinct n-grams (local ids) ...
  std::vector<uint32_t> entry_counts; // ... and their counts
  std::vector<uint32_t> df;           // per local n-gram: docs of this chunk containing it
  std::vector<uint32_t> column;       // per local n-gram: its id in its shard
  std::vector<Term> term;             // per local n-gram: its column and idf
};

template <class T>
void free_vector(std::vector<T>& v) {
  std::vector<T>().swap(v);
}

template <int W>
class Builder {
 public:
  Builder(const TextView* texts, int64_t n, const TfidfOptions& o, const Hooks& hooks)
      : texts_(texts), n_(n), o_(o), words_(o.word_ranges, o.n_word_ranges), progress_(hooks, 3 * n) {
    const int64_t t = std::max<int64_t>(1, std::min<int64_t>(resolve_threads(o.threads), n / 256));
    chunks_.resize(t);
    for (int64_t c = 0; c < t; ++c) {
      chunks_[c].lo = n * c / t;
      chunks_[c].hi = n * (c + 1) / t;
    }
    ntok_.assign(n, 0);
    nnz_.assign(n, 0);
  }

  TfidfMatrix run() {
    for_chunks([&](Chunk& c, int w) { tokenize(c, w); });
    progress_.report();
    merge_tokens();
    progress_.report();
    std::vector<std::vector<Key<W>>> keys(chunks_.size());
    for_chunks([&](Chunk& c, int w) { count(c, keys[&c - chunks_.data()], w); });
    progress_.report();
    TfidfMatrix m;
    m.n_rows = n_;
    merge_ngrams(keys, m);
    progress_.report();
    write(m);
    return m;
  }

 private:
  template <class Fn>
  void for_chunks(Fn&& fn) {
    const int64_t t = static_cast<int64_t>(chunks_.size());
    parallel_for(t, static_cast<int>(t), [&](int64_t lo, int64_t hi, int w) {
      for (int64_t c = lo; c < hi; ++c) fn(chunks_[c], w);
    }, 1);
  }

  // Phase 1.
  void tokenize(Chunk& c, int w) {
    std::string scratch;
    for (int64_t i = c.lo; i < c.hi; ++i) {
      if (progress_.stopped()) return;
      const TextView& t = texts_[i];
      const size_t before = c.ids.size();
      for_each_token(t, words_, scratch, [&](std::string_view tok) { c.ids.push_back(c.tokens.intern(tok)); });
      const size_t m = c.ids.size() - before;
      require(m < 0xFFFFFFFFull, "text ", i, " has more than 2^32 - 2 tokens");
      ntok_[i] = static_cast<uint32_t>(m);
      progress_.add(w);
    }
  }

  // Phase 2: token ids -> global rank + 1; the shard of every rank.
  void merge_tokens() {
    TokenTable global;
    std::vector<std::vector<uint32_t>> to_global(chunks_.size());
    for (size_t c = 0; c < chunks_.size(); ++c) {
      const TokenTable& local = chunks_[c].tokens;
      to_global[c].resize(local.size());
      for (uint32_t l = 0; l < local.size(); ++l) to_global[c][l] = global.intern(local.get(l));
      chunks_[c].tokens = TokenTable();
    }
    const uint32_t g = static_cast<uint32_t>(global.size());
    std::vector<uint32_t> order(g);
    for (uint32_t i = 0; i < g; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return global.get(a) < global.get(b); });
    std::vector<uint32_t> rank(g);
    for (uint32_t r = 0; r < g; ++r) rank[order[r]] = r + 1;
    token_text_.assign(g + 1, std::string_view());
    token_bytes_.clear();
    size_t bytes = 0;
    for (uint32_t r = 0; r < g; ++r) bytes += global.get(order[r]).size();
    token_bytes_.reserve(bytes);
    std::vector<size_t> start(g + 1, 0);
    for (uint32_t r = 0; r < g; ++r) {
      std::string_view s = global.get(order[r]);
      start[r] = token_bytes_.size();
      token_bytes_.insert(token_bytes_.end(), s.begin(), s.end());
    }
    for (uint32_t r = 0; r < g; ++r)
      token_text_[r + 1] = std::string_view(token_bytes_.data() + start[r], global.get(order[r]).size());

    for_chunks([&](Chunk& c, int) {
      const auto& map = to_global[&c - chunks_.data()];
      for (auto& id : c.ids) id = rank[map[id]];
    });
    // Shards: ranges of first-token ranks holding about equal numbers of token occurrences.
    n_shards_ = static_cast<int>(chunks_.size());
    std::vector<int64_t> occ(g + 1, 0);
    for (const Chunk& c : chunks_)
      for (uint32_t id : c.ids) ++occ[id];
    int64_t total = 0;
    for (auto x : occ) total += x;
    shard_of_rank_.assign(g + 1, 0);
    int64_t seen = 0;
    for (uint32_t r = 1; r <= g; ++r) {
      shard_of_rank_[r] = static_cast<uint32_t>(
          std::min<int64_t>(n_shards_ - 1, total == 0 ? 0 : seen * n_shards_ / total));
      seen += occ[r];
    }
  }

  // Phase 3. Each document's n-grams are hashed first and their slots prefetched, so the
  // lookups' cache misses overlap.
  void count(Chunk& c, std::vector<Key<W>>& keys, int w) {
    struct Info {
      uint32_t df;    // docs of this chunk containing the n-gram
      uint32_t last;  // 1 + the chunk-local doc that last had it
      uint32_t pos;   // its entry's offset in that doc
    };
    KeyIndex<W, Info> index(1 << 16);
    std::vector<Key<W>> doc_keys;
    std::vector<uint64_t> doc_hashes;
    const uint32_t* toks = c.ids.data();
    for (int64_t i = c.lo; i < c.hi; ++i) {
      if (progress_.stopped()) return;
      const int64_t m = ntok_[i];
      const uint32_t doc = static_cast<uint32_t>(i - c.lo + 1);
      doc_keys.clear();
      doc_hashes.clear();
      for (int len = o_.min_n; len <= o_.max_n; ++len) {
        for (int64_t p = 0; p + len <= m; ++p) {
          Key<W> key{};
          for (int q = 0; q < len; ++q) key.t[q] = toks[p + q];
          const uint64_t h = key.hash();
          index.prefetch(h);
          doc_keys.push_back(key);
          doc_hashes.push_back(h);
        }
      }
      const size_t start = c.entry_ids.size();
      for (size_t q = 0; q < doc_keys.size(); ++q) {
        auto* slot = index.find_or_insert(doc_keys[q], doc_hashes[q]).first;
        Info& f = slot->value;
        if (f.last != doc) {
          f.last = doc;
          ++f.df;
          f.pos = static_cast<uint32_t>(c.entry_ids.size() - start);
          c.entry_ids.push_back(slot->id);
          c.entry_counts.push_back(1);
        } else {
          ++c.entry_counts[start + f.pos];
        }
      }
      nnz_[i] = static_cast<int64_t>(c.entry_ids.size() - start);
      toks += m;
      progress_.add(w);
    }
    free_vector(c.ids);
    keys.resize(index.size());
    c.df.resize(index.size());
    index.drain([&](const auto& slot) {
      keys[slot.id] = slot.key;
      c.df[slot.id] = slot.value.df;
    });
  }

  // Phase 4: columns, document frequencies, idf and the vocabulary.
  void merge_ngrams(std::vector<std::vector<Key<W>>>& keys, TfidfMatrix& m) {
    const size_t nc = chunks_.size();
    const int s_count = n_shards_;
    // Local ids of every chunk, bucketed by shard.
    std::vector<std::vector<std::vector<uint32_t>>> bucket(nc, std::vector<std::vector<uint32_t>>(s_count));
    for_chunks([&](Chunk& c, int) {
      const size_t ci = &c - chunks_.data();
      for (uint32_t l = 0; l < keys[ci].size(); ++l) bucket[ci][shard_of_rank_[keys[ci][l].t[0]]].push_back(l);
      c.column.assign(keys[ci].size(), 0);
    });
    struct Ranked {
      Key<W> key;
      uint32_t id;
    };
    std::vector<std::vector<Ranked>> sorted(s_count);
    std::vector<std::vector<int64_t>> shard_df(s_count);
    std::vector<std::vector<uint32_t>> rank_in_shard(s_count);
    parallel_for(s_count, s_count, [&](int64_t lo, int64_t hi, int) {
      for (int64_t s = lo; s < hi; ++s) {
        KeyIndex<W, int64_t> index(1 << 16);
        constexpr size_t kBatch = 32;
        uint64_t hashes[kBatch];
        for (size_t ci = 0; ci < nc; ++ci) {
          Chunk& c = chunks_[ci];
          const std::vector<uint32_t>& ids = bucket[ci][s];
          for (size_t b = 0; b < ids.size(); b += kBatch) {
            const size_t e = std::min(ids.size(), b + kBatch);
            for (size_t q = b; q < e; ++q) {
              hashes[q - b] = keys[ci][ids[q]].hash();
              index.prefetch(hashes[q - b]);
            }
            for (size_t q = b; q < e; ++q) {
              const uint32_t l = ids[q];
              auto* slot = index.find_or_insert(keys[ci][l], hashes[q - b]).first;
              slot->value += c.df[l];
              c.column[l] = slot->id;
            }
          }
          free_vector(bucket[ci][s]);
        }
        std::vector<Ranked>& sk = sorted[s];
        std::vector<int64_t>& df = shard_df[s];
        sk.resize(index.size());
        df.resize(index.size());
        index.drain([&](const auto& slot) {
          sk[slot.id] = {slot.key, slot.id};
          df[slot.id] = slot.value;
        });
        std::sort(sk.begin(), sk.end(), [](const Ranked& a, const Ranked& b) { return a.key < b.key; });
        rank_in_shard[s].resize(sk.size());
        for (uint32_t r = 0; r < sk.size(); ++r) rank_in_shard[s][sk[r].id] = r;
      }
    }, 1);
    std::vector<int64_t> offset(s_count + 1, 0);
    for (int s = 0; s < s_count; ++s) offset[s + 1] = offset[s] + static_cast<int64_t>(sorted[s].size());
    const int64_t v = offset[s_count];
    require(v < (int64_t{1} << 31), "the vocabulary has ", v, " n-grams; at most 2^31 - 1 are supported");
    m.n_cols = v;
    // Document frequencies, idf and the terms, column by column.
    m.df.resize(v);
    m.idf.resize(v);
    m.vocabulary_offsets.assign(v + 1, 0);
    const double n = static_cast<double>(n_);
    const double n1 = static_cast<double>(n_ + 1);
    parallel_for(s_count, s_count, [&](int64_t lo, int64_t hi, int) {
      for (int64_t s = lo; s < hi; ++s)
        for (size_t r = 0; r < sorted[s].size(); ++r) {
          const int64_t col = offset[s] + static_cast<int64_t>(r);
          const int64_t df = shard_df[s][sorted[s][r].id];
          m.df[col] = df;
          m.idf[col] = o_.paper_weighting ? std::log(n / static_cast<double>(df))
                                          : std::log(n1 / static_cast<double>(df + 1)) + 1.0;
          size_t len = 0;
          for (int q = 0; q < W && sorted[s][r].key.t[q] != 0; ++q) len += token_text_[sorted[s][r].key.t[q]].size() + 1;
          m.vocabulary_offsets[col + 1] = static_cast<int64_t>(len);
        }
    }, 1);
    for_chunks([&](Chunk& c, int) {
      const size_t ci = &c - chunks_.data();
      c.term.resize(c.column.size());
      for (uint32_t l = 0; l < c.column.size(); ++l) {
        const uint32_t s = shard_of_rank_[keys[ci][l].t[0]];
        const int64_t col = offset[s] + rank_in_shard[s][c.column[l]];
        c.term[l] = {static_cast<uint32_t>(col), m.idf[col]};
      }
      free_vector(keys[ci]);
      free_vector(c.df);
      free_vector(c.column);
    });
    for (int64_t j = 0; j < v; ++j) m.vocabulary_offsets[j + 1] += m.vocabulary_offsets[j];
    m.vocabulary.resize(static_cast<size_t>(m.vocabulary_offsets[v]));
    parallel_for(s_count, s_count, [&](int64_t lo, int64_t hi, int) {
      for (int64_t s = lo; s < hi; ++s) {
        for (size_t r = 0; r < sorted[s].size(); ++r) {
          char* out = m.vocabulary.data() + m.vocabulary_offsets[offset[s] + static_cast<int64_t>(r)];
          const Key<W>& key = sorted[s][r].key;
          for (int q = 0; q < W && key.t[q] != 0; ++q) {
            if (q > 0) *out++ = ' ';
            std::string_view tok = token_text_[key.t[q]];
            std::memcpy(out, tok.data(), tok.size());
            out += tok.size();
          }
          *out = '\n';
        }
        free_vector(sorted[s]);
      }
    }, 1);
  }

  // Phase 5.
  void write(TfidfMatrix& m) {
    m.indptr.assign(n_ + 1, 0);
    for (int64_t i = 0; i < n_; ++i) m.indptr[i + 1] = m.indptr[i] + nnz_[i];
    const int64_t nnz = m.indptr[n_];
    m.indices.resize(nnz);
    if (o_.float32) m.data32.resize(nnz);
    else m.data64.resize(nnz);
    for_chunks([&](Chunk& c, int w) {
      std::vector<uint64_t> order;  // column << 32 | position in the document's entries
      std::vector<double> values;   // count * idf, by position
      size_t e = 0;
      for (int64_t i = c.lo; i < c.hi; ++i) {
        if (progress_.stopped()) return;
        const int64_t len = nnz_[i];
        order.resize(len);
        values.resize(len);
        int64_t total = 0;  // the document's n-gram occurrences, every length together
        for (int64_t j = 0; j < len; ++j) total += c.entry_counts[e + j];
        for (int64_t j = 0; j < len; ++j, ++e) {
          const Term& t = c.term[c.entry_ids[e]];
          const double count = static_cast<double>(c.entry_counts[e]);
          order[j] = (static_cast<uint64_t>(t.column) << 32) | static_cast<uint64_t>(j);
          if (o_.counts) values[j] = count;
          else values[j] = o_.paper_weighting ? count / static_cast<double>(total) * t.idf : count * t.idf;
        }
        std::sort(order.begin(), order.end());
        double norm = 1.0;
        if (!o_.paper_weighting && !o_.counts) {
          double sumsq = 0.0;  // in column order, as the row is stored
          for (uint64_t o : order) sumsq += values[o & 0xFFFFFFFFu] * values[o & 0xFFFFFFFFu];
          if (sumsq != 0.0) norm = std::sqrt(sumsq);  // 0 only for a row without entries
        }
        const int64_t at = m.indptr[i];
        for (int64_t j = 0; j < len; ++j) {
          const double v = values[order[j] & 0xFFFFFFFFu] / norm;
          m.indices[at + j] = static_cast<int32_t>(order[j] >> 32);
          if (o_.float32) m.data32[at + j] = static_cast<float>(v);
          else m.data64[at + j] = v;
        }
        progress_.add(w);
      }
      free_vector(c.entry_ids);
      free_vector(c.entry_counts);
      free_vector(c.term);
    });
    progress_.report();
  }

  const TextView* texts_;
  const int64_t n_;
  const TfidfOptions& o_;
  WordTable words_;
  SharedProgress progress_;
  std::vector<Chunk> chunks_;
  std::vector<uint32_t> ntok_;
  std::vector<int64_t> nnz_;
  std::vector<char> token_bytes_;
  std::vector<std::string_view> token_text_;  // by rank (1-based)
  std::vector<uint32_t> shard_of_rank_;
  int n_shards_ = 1;
};

}  // namespace

TfidfMatrix tfidf(const TextView* texts, int64_t n, const TfidfOptions& o, const Hooks& hooks) {
  require(n >= 1, "texts must hold at least one text (got ", n, ")");
  require(n < (int64_t{1} << 32) - 1, "texts holds ", n, " texts; at most 2^32 - 2 are supported");
  require(o.min_n >= 1 && o.min_n <= o.max_n && o.max_n <= kMaxNgram, "ngram_range (", o.min_n, ", ", o.max_n,
          ") must satisfy 1 <= min_n <= max_n <= ", kMaxNgram);
  for (int64_t i = 0; i < n; ++i) {
    const TextView& t = texts[i];
    require(t.width == 1 || t.width == 2 || t.width == 4, "text ", i, " has code points of ", t.width,
            " bytes; expected 1, 2 or 4");
    require(t.length >= 0 && (t.length == 0 || t.data != nullptr), "text ", i, " has no data");
  }
  if (o.max_n <= 1) return Builder<1>(texts, n, o, hooks).run();
  if (o.max_n <= 2) return Builder<2>(texts, n, o, hooks).run();
  if (o.max_n <= 4) return Builder<4>(texts, n, o, hooks).run();
  return Builder<8>(texts, n, o, hooks).run();
}

}  // namespace isel::coverage
