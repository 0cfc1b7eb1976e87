"""TF-IDF (against scikit-learn) and the lazy coverage greedy (against the naive numpy loop)."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iterselect import _backends
from iterselect.coverage._wordchars import word_ranges
from iterselect.coverage import (
    CoverageResult,
    IterITResult,
    TfidfResult,
    coverage_decay,
    coverage_gains,
    coverage_greedy,
    iterit_select,
    tfidf_matrix,
)
from conftest import needs_emulation, require_module, shared_file
from reference_coverage import (assert_same_greedy, canonical_row_sums, naive_coverage_greedy, paper_tfidf,
                                sklearn_tfidf)

require_module("sklearn", "test", module_level=True)

def _responses(name: str) -> list[str]:
    """The responses of a shared data set (Alpaca: not bundled)."""
    with gzip.open(shared_file(name), "rt", encoding="utf-8") as f:
        return [json.loads(line)["output"] for line in f]


@pytest.fixture(scope="module")
def dolly_tfidf(dolly_responses) -> TfidfResult:
    return tfidf_matrix(dolly_responses, progress=False)


def assert_matches_sklearn(result: TfidfResult, texts, ngram_range=(1, 3), lowercase=True, atol=1e-6):
    ref = sklearn_tfidf(texts, ngram_range, lowercase)
    if ref is None:  # scikit-learn: "empty vocabulary"
        assert result.matrix.shape == (len(texts), 0)
        assert len(result.vocabulary) == 0 and result.matrix.nnz == 0
        return
    Y, vocabulary, idf = ref
    X = result.matrix
    assert result.vocabulary.tolist() == vocabulary
    assert X.shape == Y.shape
    np.testing.assert_array_equal(X.indptr, Y.indptr)
    np.testing.assert_array_equal(X.indices, Y.indices)
    np.testing.assert_allclose(X.data, Y.data, rtol=0, atol=atol)
    np.testing.assert_allclose(result.idf, idf, rtol=1e-15)
    np.testing.assert_array_equal(result.df, np.bincount(Y.indices, minlength=Y.shape[1]))


# ----------------------------------------------------------------------------- TF-IDF

def test_tfidf_matches_sklearn_on_dolly(dolly_responses, dolly_tfidf):
    assert any(not t.isascii() for t in dolly_responses)
    assert dolly_tfidf.matrix.dtype == np.float64
    assert dolly_tfidf.matrix.has_sorted_indices
    assert_matches_sklearn(dolly_tfidf, dolly_responses)


def test_tfidf_matches_sklearn_on_alpaca_sample():
    texts = _responses("alpaca_52k.jsonl.gz")
    # every non-ASCII response (Greek capital sigma, CJK, emoji, ...) and a stride of the rest
    sample = [t for i, t in enumerate(texts) if not t.isascii() or i % 40 == 0]
    assert sum(not t.isascii() for t in sample) > 1000
    assert any("\u03a3" in t for t in sample)  # final-sigma lowercasing depends on context
    assert_matches_sklearn(tfidf_matrix(sample, progress=False), sample)


@pytest.mark.slow
def test_tfidf_matches_sklearn_on_all_of_alpaca():
    """All 52,002 Alpaca responses. Run by CI (tools/test.sh runs `pytest -m slow` after the rest)."""
    texts = _responses("alpaca_52k.jsonl.gz")
    assert_matches_sklearn(tfidf_matrix(texts, progress=False), texts)


WORDS = ["the", "The", "cat", "CAT", "sat", "a", "I", "x1", "_", "__init__", "a_b", "Straße", "naïve",
         "ΣΊΣΥΦΟΣ", "ΟΔΟΣ", "σς", "İstanbul", "ǅungla", "ﬁne", "日本語", "한국어", "١٢٣", "x²", "Ⅻ", "e\u0301t\u00e9",
         "a\u0307b", "😀", "emoji😀face", "👍🏽ok", "\u200dzw", "Ω", "KELVIN\u212a", "9", "42", "3.14", "don't"]
SEPARATORS = [" ", "  ", "\n", ", ", ". ", "! ", "-", "—", "\t", "", "'", "/", "\u00a0", "\u3000"]

word_texts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=25).map(
    lambda pairs: "".join(w + s for w, s in pairs))
any_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
punctuation = st.text(alphabet=" .,;:!?-—()[]\"'…\n\t", max_size=20)
texts_strategy = st.lists(st.one_of(word_texts, word_texts, any_texts, punctuation, st.just(""),
                                    st.sampled_from(WORDS)), min_size=1, max_size=12)
ngram_ranges = st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (1, 5), (2, 8)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_strategy, ngram_range=ngram_ranges, lowercase=st.booleans())
def test_tfidf_matches_sklearn_on_generated_texts(texts, ngram_range, lowercase):
    result = tfidf_matrix(texts, ngram_range, lowercase, progress=False)
    assert_matches_sklearn(result, texts, ngram_range, lowercase)


def test_tfidf_edge_texts_match_sklearn():
    texts = ["", "   ", "...!?", "a", "ab", "ab ab ab ab", "ab " * 20000, "x\ud800yz lone surrogate",
             "\U0001F600\U0001F600", "ΣΑΣ Σ ΑΣ. ΌΣΟΣ", "İİ", "ab", "a" * 70000 + " b" * 5000]
    assert_matches_sklearn(tfidf_matrix(texts, progress=False), texts)
    assert_matches_sklearn(tfidf_matrix(texts, (1, 8), progress=False), texts, (1, 8))


# ----------------------------------------------------------------------------- TF-IDF, IterIT's Eq. 5

def assert_matches_paper(result: TfidfResult, texts, ngram_range=(1, 3), lowercase=True):
    ref = paper_tfidf(texts, ngram_range, lowercase)
    if ref is None:
        assert result.matrix.shape == (len(texts), 0)
        return
    Y, vocabulary, idf = ref
    X = result.matrix
    assert result.weighting == "paper" and result.vocabulary.tolist() == vocabulary
    np.testing.assert_allclose(result.idf, idf, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(X.indptr, Y.indptr)
    np.testing.assert_array_equal(X.indices, Y.indices)
    np.testing.assert_allclose(X.data, Y.data, rtol=1e-14, atol=0)


def test_tfidf_paper_two_documents_by_hand():
    """Eq. 5 on "The cat sat." and "the dog": TF = f_g / sum_k f_k over every n-gram of the
    text, IDF = ln(N'/N_g) with N' = 2, no normalization."""
    r = tfidf_matrix(["The cat sat.", "the dog"], ngram_range=(1, 1), weighting="paper", progress=False)
    assert r.vocabulary.tolist() == ["cat", "dog", "sat", "the"]
    ln2 = np.log(2.0)
    assert r.idf.tolist() == [ln2, ln2, ln2, 0.0]  # "the" is in both texts: ln(2/2) = 0
    # text 0 has 3 unigrams (the, cat, sat): cat and sat are 1/3 x ln 2; "the" counts in the total
    # but its value is 0 and it is not stored
    assert r.matrix.toarray().tolist() == [[1 / 3 * ln2, 0.0, 1 / 3 * ln2, 0.0],
                                           [0.0, 1 / 2 * ln2, 0.0, 0.0]]
    assert r.matrix.nnz == 3
    # with bigrams, text 0 has 5 n-grams (3 unigrams + 2 bigrams), text 1 has 3
    r2 = tfidf_matrix(["The cat sat.", "the dog"], ngram_range=(1, 2), weighting="paper", progress=False)
    assert r2.vocabulary.tolist() == ["cat", "cat sat", "dog", "sat", "the", "the cat", "the dog"]
    assert r2.matrix.toarray().tolist() == [[ln2 / 5, ln2 / 5, 0.0, ln2 / 5, 0.0, ln2 / 5, 0.0],
                                            [0.0, 0.0, ln2 / 3, 0.0, 0.0, 0.0, ln2 / 3]]
    # scikit-learn's weighting of the same texts: smooth idf, l2 rows
    s = tfidf_matrix(["The cat sat.", "the dog"], ngram_range=(1, 1), progress=False)
    assert s.weighting == "sklearn" and np.allclose(np.linalg.norm(s.matrix.toarray(), axis=1), 1.0)


def test_tfidf_paper_matches_reference_on_dolly(dolly_responses):
    texts = dolly_responses[:4000]
    assert_matches_paper(tfidf_matrix(texts, weighting="paper", progress=False), texts)
    f32 = tfidf_matrix(texts, weighting="paper", dtype=np.float32, progress=False)
    assert f32.matrix.dtype == np.float32


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_strategy, ngram_range=ngram_ranges, lowercase=st.booleans())
def test_tfidf_paper_matches_reference_on_generated_texts(texts, ngram_range, lowercase):
    result = tfidf_matrix(texts, ngram_range, lowercase, weighting="paper", progress=False)
    assert_matches_paper(result, texts, ngram_range, lowercase)


VOCABULARY = [f"w{i}" for i in range(400)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(others=st.lists(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=30), min_size=1,
                       max_size=8),
       words=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=20),
       repeats=st.integers(2, 20))
def test_paper_diversity_does_not_grow_with_response_length(others, words, repeats):
    """Under Eq. 5 a response's diversity S_DIV = sum_g TF-IDF(g) is an average of idfs weighted
    by the n-grams' shares, at most ln(N'): it cannot grow with the response's length. Unigrams:
    a response repeated r times keeps its TF, so its S_DIV is unchanged (to rounding), where
    scikit-learn's l2-normalized row sum is a norm-1 vector's sum and grows with the number of
    distinct n-grams."""
    texts = [" ".join(w) for w in others]
    short, long_ = " ".join(words), " ".join(words * repeats)
    for ngram_range in ((1, 1), (1, 3)):
        for response in (short, long_):
            X = tfidf_matrix(texts + [response], ngram_range, weighting="paper", progress=False).matrix
            sums = np.asarray(X.sum(axis=1)).ravel()
            assert np.all(sums <= np.log(len(texts) + 1) * (1 + 1e-12))
    a = tfidf_matrix(texts + [short], (1, 1), weighting="paper", progress=False).matrix.sum(axis=1)[-1]
    b = tfidf_matrix(texts + [long_], (1, 1), weighting="paper", progress=False).matrix.sum(axis=1)[-1]
    assert b == pytest.approx(a, rel=1e-12, abs=1e-15)


def test_paper_diversity_of_random_text_barely_grows_with_length():
    """The issue's measurement: random text of 10 and 640 words among other random texts."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    lengths = [10, 40, 160, 640]
    texts = [" ".join(rng.choice(words, size=L)) for L in lengths for _ in range(50)]
    for weighting, lo, hi in (("paper", 0.9, 1.1), ("sklearn", 5.0, np.inf)):
        sums = np.asarray(tfidf_matrix(texts, weighting=weighting, progress=False).matrix.sum(axis=1)).ravel()
        by_length = sums.reshape(len(lengths), 50).mean(axis=1)
        ratio = by_length[-1] / by_length[0]
        assert lo <= ratio <= hi, (weighting, by_length)


def test_greedy_matches_naive_on_edge_texts():
    rng = np.random.default_rng(9)
    long_doc = " ".join(rng.choice(WORDS, 30000))
    texts = ["", "!!", "ab", "ab", "ab cd", "cd ab", long_doc, long_doc[:5000], "\U0001F600 ok", "ΣΑΣ σας",
             "x" * 1000, "ab ab ab ab", "", "naïve café", long_doc[5000:9000]]
    X = tfidf_matrix(texts, progress=False).matrix
    for decay in (0.0, 0.1, 1.0):
        r = coverage_greedy(X, len(texts), decay=decay, progress=False)
        ref = naive_coverage_greedy(X, len(texts), None, decay)
        np.testing.assert_array_equal(r.indices, ref.indices)
        np.testing.assert_array_equal(r.gains, ref.gains)
        assert sorted(r.indices.tolist()) == list(range(len(texts)))


def test_tfidf_without_tokens_has_no_columns():
    r = tfidf_matrix(["", "!", "a b c"], progress=False)
    assert r.matrix.shape == (3, 0) and r.matrix.nnz == 0 and r.vocabulary.tolist() == []


def test_tfidf_many_chunks_and_threads_agree():
    rng = np.random.default_rng(5)
    words = WORDS + [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 60))) for _ in range(2600)]
    one = tfidf_matrix(texts, threads=1, progress=False)
    assert_matches_sklearn(one, texts)
    for threads in (2, 3, 7):
        other = tfidf_matrix(texts, threads=threads, progress=False)
        assert other.vocabulary == one.vocabulary
        for a, b in ((other.matrix.indptr, one.matrix.indptr), (other.matrix.indices, one.matrix.indices),
                     (other.matrix.data, one.matrix.data), (other.idf, one.idf), (other.df, one.df)):
            np.testing.assert_array_equal(a, b)


def test_tfidf_float32(dolly_responses):
    texts = dolly_responses[:2000]
    r = tfidf_matrix(texts, dtype=np.float32, progress=False)
    assert r.matrix.dtype == np.float32
    assert_matches_sklearn(r, texts)


def test_tfidf_progress_bar_runs(dolly_responses):
    r = tfidf_matrix(dolly_responses[:600], progress=True, threads=2)
    assert r.matrix.shape[0] == 600


def test_word_table_agrees_with_re():
    import re

    ranges = word_ranges()
    assert ranges.dtype == np.int32 and ranges.shape[1] == 2
    assert np.all(ranges[:, 0] <= ranges[:, 1]) and np.all(ranges[1:, 0] > ranges[:-1, 1] + 1)
    is_word = np.zeros(0x110000, dtype=bool)
    for lo, hi in ranges:
        is_word[lo:hi + 1] = True
    rng = np.random.default_rng(0)
    sample = np.concatenate([np.arange(0x3000), rng.integers(0, 0x110000, 20000)])
    pattern = re.compile(r"\w")
    for cp in sample:
        assert bool(pattern.match(chr(cp))) == is_word[cp], hex(cp)
    for ch, word in [("_", True), ("²", True), ("Ⅻ", True), ("\u0307", False), ("😀", False), ("\u200d", False)]:
        assert is_word[ord(ch)] == word, ch


def test_vocabulary_sequence(dolly_tfidf):
    v = dolly_tfidf.vocabulary
    terms = v.tolist()
    assert len(v) == len(terms) == dolly_tfidf.matrix.shape[1]
    assert v[0] == terms[0] and v[-1] == terms[-1] and v[12345] == terms[12345]
    assert v[10:15] == terms[10:15] and v[-3:] == terms[-3:]
    assert list(iter(v))[:100] == terms[:100]
    for j in (0, 7, 54321, len(v) - 1):
        assert v.index(terms[j]) == j and terms[j] in v
    assert "no such n-gram here" not in v and 5 not in v
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.index("no such n-gram here")
    with pytest.raises(IndexError):
        v[len(v)]
    assert repr(v).startswith(f"NgramVocabulary({len(v)} n-grams: ")
    assert tfidf_matrix(["ab CD"], progress=False).vocabulary == tfidf_matrix(["AB cd"], progress=False).vocabulary
    assert v != tfidf_matrix(["xy zw"], progress=False).vocabulary and v != terms


def test_tfidf_bad_inputs():
    with pytest.raises(ValueError, match="'texts' parameter of tfidf_matrix"):
        tfidf_matrix([], progress=False)
    with pytest.raises(TypeError, match="'texts'.*int at position 1"):
        tfidf_matrix(["a", 3], progress=False)
    with pytest.raises(TypeError, match="'texts'.*single str"):
        tfidf_matrix("just one string", progress=False)
    for bad in [(0, 2), (3, 2), (1, 9), (1,), "ab", (1.0, 2)]:
        with pytest.raises(ValueError, match="'ngram_range' parameter of tfidf_matrix"):
            tfidf_matrix(["ab cd"], bad, progress=False)
    with pytest.raises(ValueError, match="'dtype'"):
        tfidf_matrix(["ab cd"], dtype=np.int32, progress=False)
    with pytest.raises(TypeError, match="'lowercase'"):
        tfidf_matrix(["ab cd"], lowercase="yes", progress=False)
    with pytest.raises(ValueError, match="'threads'"):
        tfidf_matrix(["ab cd"], threads=0, progress=False)
    with pytest.raises(ValueError, match="'weighting' parameter of tfidf_matrix must be one of"):
        tfidf_matrix(["ab cd"], weighting="l1", progress=False)


def test_tfidf_stops_when_progress_callback_raises(dolly_responses):
    class Stop(Exception):
        pass

    calls = []

    def callback(done, total):
        calls.append(done)
        raise Stop

    with pytest.raises(Stop):
        _backends.core.coverage_tfidf([t.lower() for t in dolly_responses[:3000]], word_ranges(), 1, 3,
                                      False, False, 2, callback)
    assert len(calls) == 1


# ----------------------------------------------------------------------------- greedy

def test_greedy_matches_naive_on_dolly(dolly_tfidf):
    X = dolly_tfidf.matrix
    rng = np.random.default_rng(1)
    w = rng.uniform(0.2, 1.0, X.shape[0])
    for decay, weights, k in [(0.1, w, 300), (0.0, w, 300), (0.5, None, 150)]:
        r = coverage_greedy(X, k, weights=weights, decay=decay, progress=False)
        ref = naive_coverage_greedy(X, k, weights, decay)
        assert assert_same_greedy(r.indices, r.gains, ref) is None
        np.testing.assert_array_equal(r.alpha, ref.alpha)
        assert r.refreshes < 0.2 * k * X.shape[0]  # laziness skips most of the naive work
        assert np.all(np.diff(r.gains) <= 0) or weights is not None or decay > 0


def test_greedy_with_selected_on_dolly(dolly_tfidf):
    X = dolly_tfidf.matrix
    w = np.random.default_rng(2).uniform(0.2, 1.0, X.shape[0])
    pool = [5, 17, 1000, 14000]
    r = coverage_greedy(X, 100, weights=w, decay=0.1, selected=pool, progress=False)
    ref = naive_coverage_greedy(X, 100, w, 0.1, pool)
    assert assert_same_greedy(r.indices, r.gains, ref) is None
    assert not set(r.indices.tolist()) & set(pool)
    # a warm start continues the same greedy: picks after a prefix equal the full run's
    full = coverage_greedy(X, 150, weights=w, decay=0.1, progress=False)
    rest = coverage_greedy(X, 100, weights=w, decay=0.1, selected=full.indices[:50], progress=False)
    np.testing.assert_array_equal(rest.indices, full.indices[50:])
    np.testing.assert_array_equal(rest.gains, full.gains[50:])


@st.composite
def sparse_problems(draw):
    n = draw(st.integers(1, 30))
    m = draw(st.integers(0, 12))
    density = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    values = draw(st.sampled_from(["small-ints", "floats", "float32"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if values == "small-ints":  # many exact ties
        dense = rng.integers(0, 3, (n, m)).astype(np.float64)
    else:
        dense = rng.uniform(0, 1, (n, m))
    dense[rng.uniform(size=(n, m)) >= density] = 0.0
    if values == "float32":
        dense = dense.astype(np.float32)
    rows = draw(st.lists(st.integers(0, n - 1), max_size=n))
    if rows:  # repeated rows: equal gains, lowest index must win
        dense[rows[1:]] = dense[rows[0]]
    selected = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n - 1))
    k = draw(st.integers(1, n - len(selected)))
    weights = draw(st.sampled_from([None, "ones", "random", "ties"]))
    if weights == "ones":
        weights = np.ones(n)
    elif weights == "random":
        weights = rng.uniform(0, 1, n)
    elif weights == "ties":
        weights = rng.integers(0, 2, n).astype(np.float64)
    decay = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0, 0.999]))
    fmt = draw(st.sampled_from(["csr", "csc", "coo", "dense"]))
    X = dense if fmt == "dense" else getattr(sp, f"{fmt}_array")(dense)
    return X, k, weights, decay, selected


@settings(max_examples=300, deadline=None)
@given(sparse_problems())
def test_greedy_matches_naive_on_generated_matrices(problem):
    X, k, weights, decay, selected = problem
    r = coverage_greedy(X, k, weights=weights, decay=decay, selected=selected, progress=False)
    ref = naive_coverage_greedy(X, k, weights, decay, selected)
    np.testing.assert_array_equal(r.indices, ref.indices)
    np.testing.assert_array_equal(r.gains, ref.gains)
    np.testing.assert_array_equal(r.alpha, ref.alpha)
    assert len(set(r.indices.tolist()) | set(selected)) == k + len(selected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.one_of(word_texts, st.just(""), st.sampled_from(WORDS), punctuation, any_texts),
                      min_size=1, max_size=25).map(lambda ts: ts + ts[::3]),  # repeated docs: exact ties
       decay=st.sampled_from([0.0, 0.1, 1.0]), data=st.data())
def test_greedy_matches_naive_on_generated_texts(texts, decay, data):
    X = tfidf_matrix(texts, progress=False).matrix
    k = data.draw(st.integers(1, len(texts)))
    weights = np.random.default_rng(len(texts)).uniform(0.2, 1.0, len(texts))
    r = coverage_greedy(X, k, weights=weights, decay=decay, progress=False)
    ref = naive_coverage_greedy(X, k, weights, decay)
    np.testing.assert_array_equal(r.indices, ref.indices)
    np.testing.assert_array_equal(r.gains, ref.gains)


def test_greedy_never_repicks_at_zero_decay():
    X = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    r = coverage_greedy(X, 4, decay=0.0, progress=False)
    assert r.indices.tolist() == [0, 1, 2, 3]  # gains hit 0 after the first pick: lowest index next
    assert r.gains.tolist() == [2.0, 0.0, 0.0, 0.0]


def test_greedy_non_canonical_csr_is_canonicalized():
    data = np.array([0.5, 0.25, 0.25, 1.0, 0.3])
    indices = np.array([2, 0, 2, 1, 0])  # row 0 unsorted with a duplicate column
    indptr = np.array([0, 3, 5])
    X = sp.csr_array((data, indices, indptr), shape=(2, 3))
    assert not X.has_canonical_format
    r = coverage_greedy(X, 2, decay=0.5, progress=False)
    ref = naive_coverage_greedy(X, 2, None, 0.5)
    np.testing.assert_array_equal(r.indices, ref.indices)
    np.testing.assert_array_equal(r.gains, ref.gains)
    assert not X.has_canonical_format  # the caller's matrix is left alone


def test_greedy_int_and_bool_matrices():
    dense = np.array([[1, 0, 2], [0, 3, 0], [1, 1, 1]])
    for X in (dense, sp.csr_array(dense), dense.astype(bool), sp.csr_array(dense.astype(np.int64))):
        r = coverage_greedy(X, 3, decay=0.1, progress=False)
        ref = naive_coverage_greedy(np.asarray(X.todense() if sp.issparse(X) else X, dtype=np.float64), 3, None, 0.1)
        np.testing.assert_array_equal(r.indices, ref.indices)


def random_sparse(n, m, density, seed) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0, 1, (n, m))
    dense[rng.uniform(size=(n, m)) >= density] = 0.0
    return sp.csr_array(dense)


def test_greedy_int64_index_arrays():
    X = random_sparse(50, 40, 0.2, seed=3)
    X64 = X.copy()
    X64.indices = X64.indices.astype(np.int64)  # scipy would choose int32 for a matrix this small
    X64.indptr = X64.indptr.astype(np.int64)
    assert X64.indptr.dtype == np.int64 and X64.indices.dtype == np.int64
    a = coverage_greedy(X, 20, progress=False)
    b = coverage_greedy(X64, 20, progress=False)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.gains, b.gains)


def test_greedy_stops_when_progress_callback_raises(dolly_tfidf):
    X = dolly_tfidf.matrix

    class Stop(Exception):
        pass

    def callback(done, total):
        raise Stop

    with pytest.raises(Stop):
        _backends.core.coverage_greedy(X.indptr, X.indices, X.data, X.shape[0], X.shape[1], None, 0.1, 500,
                                       np.empty(0, np.int64), 1, callback)


def test_greedy_progress_bar_runs(dolly_tfidf):
    r = coverage_greedy(dolly_tfidf.matrix, 50, progress=True)
    assert isinstance(r, CoverageResult) and r.indices.shape == (50,)


def test_greedy_bad_inputs():
    X = sp.csr_array(np.array([[1.0, 0.0], [0.5, 2.0], [0.0, 1.0]]))
    cases = [
        (dict(k=4), ValueError, r"'k' parameter of coverage_greedy must be an int in the range \[1, 3\]"),
        (dict(k=3, selected=[0]), ValueError, r"'k'.*\[1, 2\]"),
        (dict(k=0), ValueError, "'k'"),
        (dict(k=1.5), TypeError, "'k'"),
        (dict(k=1, weights=[1.0, -0.5, 1.0]), ValueError, "'weights'.*nonnegative.*-0.5 at position 1"),
        (dict(k=1, weights=[1.0, np.nan, 1.0]), ValueError, "'weights'.*nonnegative and finite"),
        (dict(k=1, weights=[1.0, 1.0]), ValueError, r"'weights'.*3 values.*shape \(2,\)"),
        (dict(k=1, weights=np.ones((3, 1))), ValueError, "'weights'"),
        (dict(k=1, decay=1.5), ValueError, r"'decay' parameter of coverage_greedy.*\[0.0, 1.0\]"),
        (dict(k=1, decay=-0.1), ValueError, "'decay'"),
        (dict(k=1, decay=float("nan")), ValueError, "'decay'"),
        (dict(k=1, selected=[0, 0]), ValueError, "'selected'.*duplicates"),
        (dict(k=1, selected=[3]), ValueError, "'selected'"),
        (dict(k=1, selected=[0, 1, 2]), ValueError, "'selected'.*a row left to pick"),
        (dict(k=1, threads=0), ValueError, "'threads'"),
    ]
    for kwargs, exc, match in cases:
        with pytest.raises(exc, match=match):
            coverage_greedy(X, progress=False, **kwargs)
    for bad, match in [(np.array([[1.0, -2.0]]), r"'X'.*nonnegative.*-2.0 at row 0, column 1"),
                       (np.array([[1.0], [np.inf]]), "'X'.*inf at row 1, column 0"),
                       (sp.csr_array(np.array([[0.0, 1.0], [np.nan, 0.0]])), "'X'.*nan at row 1"),
                       (np.ones(3), "'X'.*2-D"),
                       (np.ones((0, 3)), "'X'.*at least one row")]:
        with pytest.raises(ValueError, match=match):
            coverage_greedy(bad, 1, progress=False)
    with pytest.raises(TypeError, match="'X'"):
        coverage_greedy(np.array([["a", "b"]]), 1, progress=False)


def test_kernel_errors_from_cpp_name_values():
    X = sp.csr_array(np.array([[1.0, 0.0], [0.5, 2.0]]))
    core = _backends.core
    with pytest.raises(ValueError, match=r"k \(5\) must be in \[1, 2\]"):
        core.coverage_greedy(X.indptr, X.indices, X.data, 2, 2, None, 0.1, 5, np.empty(0, np.int64), 1, None)
    negative = X.data.copy()
    negative[1] = -0.5
    with pytest.raises(ValueError, match=r"X must be nonnegative and finite \(row 1, column 0 holds -0.5\)"):
        core.coverage_greedy(X.indptr, X.indices, negative, 2, 2, None, 0.1, 1, np.empty(0, np.int64), 1, None)
    with pytest.raises(ValueError, match=r"column 7 outside \[0, 2\)"):
        core.coverage_row_gains(X.indptr, np.array([0, 7, 1], np.int32), X.data, 2, 2, np.ones(2), None, 1)
    with pytest.raises(ValueError, match=r"decay \(2\) must be in \[0, 1\]"):
        core.coverage_decay_row(X.indptr, X.indices, X.data, 2, 2, 0, 2.0, np.ones(2))
    with pytest.raises(ValueError, match=r"ngram_range \(2, 1\)"):
        core.coverage_tfidf(["ab"], word_ranges(), 2, 1, False, False, 1, None)


def test_gain_and_decay_kernels():
    rng = np.random.default_rng(4)
    X = random_sparse(40, 30, 0.3, seed=4)
    alpha = rng.uniform(0, 1, 30)
    w = rng.uniform(0, 2, 40)
    np.testing.assert_array_equal(coverage_gains(X, alpha, weights=w), w * canonical_row_sums(X, alpha))
    np.testing.assert_array_equal(coverage_gains(X), canonical_row_sums(X, np.ones(30)))
    np.testing.assert_allclose(coverage_gains(X, alpha, weights=w), w * (X @ alpha), rtol=1e-14)  # scipy: rounding apart
    a = alpha.copy()
    cols = X.indices[X.indptr[7]:X.indptr[8]]
    changed = coverage_decay(X, 7, a, 0.25)
    expected = alpha.copy()
    expected[cols] *= 0.25
    np.testing.assert_array_equal(a, expected)
    assert changed == np.count_nonzero(expected != alpha)
    assert coverage_decay(X, 7, a, 1.0) == 0
    with pytest.raises(TypeError, match="'alpha' parameter of coverage_decay"):
        coverage_decay(X, 7, alpha.astype(np.float32), 0.5)
    with pytest.raises(ValueError, match="'row'"):
        coverage_decay(X, 40, a, 0.5)
    with pytest.raises(ValueError, match="'alpha' parameter of coverage_gains"):
        coverage_gains(X, np.ones(29))
    with pytest.raises(ValueError, match="'alpha'.*nonnegative"):
        coverage_gains(X, -np.ones(30))


def test_gains_follow_the_canonical_order_not_scipys():
    X = random_sparse(60, 400, 0.5, seed=9)  # rows of about 200 entries: seven rounds of 32 partials
    alpha = np.random.default_rng(9).uniform(0, 1, 400)
    ours = coverage_gains(X, alpha)
    np.testing.assert_array_equal(ours, canonical_row_sums(X, alpha))
    assert np.any(ours != X @ alpha)  # the order is real: scipy's sequential sums round differently


# ----------------------------------------------------------------------------- CUDA kernels, emulated grid

def csr_tensor(indptr, indices, data, shape):
    """A torch CSR tensor of these arrays, as stored (torch warns that its CSR support is beta)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(*(torch.from_numpy(np.asarray(a)) for a in (indptr, indices, data)), size=shape,
                                       check_invariants=False)


def assert_same_result(a, b):
    for field in ("indices", "gains", "alpha"):
        x, y = (np.asarray(getattr(r, field).cpu() if hasattr(getattr(r, field), "cpu") else getattr(r, field))
                for r in (a, b))
        np.testing.assert_array_equal(x, y, err_msg=field)


@needs_emulation
@settings(max_examples=60, deadline=None)
@given(sparse_problems())
def test_emulated_cuda_greedy_equals_cpu_on_generated_matrices(problem):
    X, k, weights, decay, selected = problem
    cpu = coverage_greedy(X, k, weights=weights, decay=decay, selected=selected, progress=False)
    emu = coverage_greedy(X, k, weights=weights, decay=decay, selected=selected, progress=False,
                          backend="cuda-emulation")
    assert_same_result(emu, cpu)


@needs_emulation
def test_emulated_cuda_greedy_equals_cpu_and_naive_on_dolly(dolly_tfidf):
    X = dolly_tfidf.matrix[:1500]  # responses up to thousands of n-grams: many rounds of 32 a row
    w = np.random.default_rng(3).uniform(0.2, 1.0, X.shape[0])
    for decay, k, selected in [(0.1, 80, None), (0.0, 40, [3, 99, 1200]), (1.0, 20, None)]:
        emu = coverage_greedy(X, k, weights=w, decay=decay, selected=selected, progress=False,
                              backend="cuda-emulation")
        assert_same_result(emu, coverage_greedy(X, k, weights=w, decay=decay, selected=selected, progress=False))
        ref = naive_coverage_greedy(X, k, w, decay, selected or ())
        assert assert_same_greedy(emu.indices, emu.gains, ref) is None
        assert emu.refreshes < k * X.shape[0]  # lazy: far fewer gains than the naive loop's


@needs_emulation
def test_emulated_cuda_takes_torch_matrices(dolly_tfidf):
    torch = require_module("torch", "torch")
    X = dolly_tfidf.matrix[:300]
    X = X[:, np.unique(X.indices)]  # the columns these rows use: the dense form stays small
    w = np.random.default_rng(4).uniform(0.2, 1.0, 300)
    cpu = coverage_greedy(X, 30, weights=w, selected=[7], progress=False)
    csr = csr_tensor(X.indptr, X.indices, X.data, X.shape)
    csr64 = csr_tensor(X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(np.float32), X.shape)
    cpu32 = coverage_greedy(X.astype(np.float32), 30, weights=w, selected=[7], progress=False)
    for T, want in [(csr, cpu), (csr.to_sparse_coo(), cpu), (csr.to_dense(), cpu), (csr64, cpu32)]:
        for weights in (w, torch.from_numpy(w)):
            r = coverage_greedy(T, 30, weights=weights, selected=[7], progress=False, backend="cuda-emulation")
            assert isinstance(r.indices, torch.Tensor) and r.indices.dtype == torch.int64
            assert_same_result(r, want)
    r = coverage_greedy(csr, 30, weights=w, selected=[7], progress=False)  # CPU backend, torch in and out
    assert isinstance(r.indices, torch.Tensor)
    assert_same_result(r, cpu)


@needs_emulation
def test_emulated_cuda_reads_a_csr_tensor_as_stored():
    torch = require_module("torch", "torch")
    # Unsorted columns and a repeated one (row 0 holds column 2 twice): used as stored, on both paths.
    indptr = np.array([0, 4, 6, 7, 9], np.int64)
    indices = np.array([2, 0, 2, 3, 1, 3, 0, 3, 2], np.int64)
    data = np.array([0.5, 1.0, 0.25, 0.3, 2.0, 0.1, 0.7, 0.6, 0.9])
    T = csr_tensor(indptr, indices, data, (4, 4))
    emu = coverage_greedy(T, 4, decay=0.5, progress=False, backend="cuda-emulation")
    picks, gains, alpha, _ = _backends.core.coverage_greedy(indptr, indices, data, 4, 4, None, 0.5, 4,
                                                            np.empty(0, np.int64), 1, None)
    np.testing.assert_array_equal(emu.indices.numpy(), picks)
    np.testing.assert_array_equal(emu.gains.numpy(), gains)
    np.testing.assert_array_equal(emu.alpha.numpy(), alpha)
    assert alpha[2] == 0.5 ** 3  # column 2: decayed once per stored entry of the picks that hold it


@needs_emulation
def test_emulated_gain_and_decay_kernels():
    torch = require_module("torch", "torch")
    X = random_sparse(40, 300, 0.3, seed=5)
    rng = np.random.default_rng(5)
    alpha, w = rng.uniform(0, 1, 300), rng.uniform(0, 2, 40)
    T = csr_tensor(X.indptr, X.indices, X.data, X.shape)
    want = coverage_gains(X, alpha, weights=w)
    np.testing.assert_array_equal(coverage_gains(X, alpha, weights=w, backend="cuda-emulation"), want)
    np.testing.assert_array_equal(coverage_gains(T, torch.from_numpy(alpha), weights=w, backend="cuda-emulation"), want)
    np.testing.assert_array_equal(coverage_gains(X, backend="cuda-emulation"), coverage_gains(X))
    for row in (0, 17, 39):
        a_cpu, a_emu, a_torch = alpha.copy(), alpha.copy(), torch.from_numpy(alpha.copy())
        changed = coverage_decay(X, row, a_cpu, 0.3)
        assert coverage_decay(X, row, a_emu, 0.3, backend="cuda-emulation") == changed
        assert coverage_decay(T, row, a_torch, 0.3, backend="cuda-emulation") == changed
        np.testing.assert_array_equal(a_emu, a_cpu)
        np.testing.assert_array_equal(a_torch.numpy(), a_cpu)
    with pytest.raises(TypeError, match=r"'alpha' parameter of coverage_decay must be a writable contiguous float64 "
                                        r"array of shape \(300,\) \(torch, on X's device\)"):
        coverage_decay(T, 0, alpha.copy(), 0.3, backend="cuda-emulation")


@needs_emulation
def test_emulated_errors_are_the_cpu_errors():
    torch = require_module("torch", "torch")
    dense = np.array([[1.0, 0.0, 2.0], [0.5, 2.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    negative = dense.copy()
    negative[3, 1] = -0.5
    negative[1, 0] = np.inf

    def message(X, backend, **kw):
        with pytest.raises((ValueError, TypeError)) as info:
            coverage_greedy(X, kw.pop("k", 2), progress=False, backend=backend, **kw)
        return str(info.value)

    cases = [(negative, {}), (dense, dict(weights=[1.0, np.nan, 1.0, -1.0])), (dense, dict(k=5)),
             (dense, dict(selected=[1, 1])), (dense, dict(weights=np.ones(3))), (dense, dict(decay=2.0))]
    for X, kw in cases:
        cpu = message(X, "cpu", **dict(kw))
        assert message(X, "cuda-emulation", **dict(kw)) == cpu
        T = torch.from_numpy(X)  # dense: made CSR on its device
        assert message(T, "cuda-emulation", **dict(kw)) == cpu
        if "weights" in kw:
            assert message(T, "cuda-emulation", **dict(kw, weights=torch.tensor(kw["weights"]))) == cpu
    assert "inf at row 1, column 0" in message(negative, "cpu")
    with pytest.raises(ValueError, match="backend='cuda' needs the input on a CUDA device"):
        coverage_greedy(dense, 1, progress=False, backend="cuda")


@needs_emulation
def test_emulated_greedy_reports_progress_and_stops(dolly_tfidf):
    X = dolly_tfidf.matrix[:500]
    mod = _backends.cuda_module("cuda-emulation")
    out = np.empty(200, np.int64), np.empty(200), np.empty(X.shape[1])
    seen = []

    class Stop(Exception):
        pass

    def callback(done, total):
        seen.append((done, total))
        if done >= 128:
            raise Stop

    with pytest.raises(Stop):
        mod.coverage_greedy(X.indptr, X.indices, X.data, X.shape[1], None, 0.1, 200, np.empty(0, np.int64), *out,
                            block_threads=64, max_blocks=4, progress=callback)
    # reports come every 64 picks, at most one per 50 ms (so which are seen depends on the
    # clock); the first report at or past 128 raised, and nothing came after it
    assert seen and all((done % 64 == 0 or done == 200) and total == 200 for done, total in seen)
    assert seen[-1][0] >= 128 and all(done < 128 for done, _ in seen[:-1])


# ----------------------------------------------------------------------------- IterIT

def test_iterit_select_drops_and_maps_indices(dolly_responses):
    texts = dolly_responses[:3000]
    rng = np.random.default_rng(7)
    ifd = rng.uniform(0.3, 1.2, len(texts))
    ifd[rng.choice(len(texts), 40, replace=False)] = np.nan
    r = iterit_select(texts, 200, ifd, decay=0.1, progress=False)
    assert isinstance(r, IterITResult)
    keep = np.flatnonzero(~np.isnan(ifd) & (ifd < 1))
    np.testing.assert_array_equal(r.candidates, keep)
    assert r.n_dropped_nan == 40
    assert r.n_dropped_high_ifd == int(np.sum(ifd >= 1)) and r.n_dropped == len(texts) - keep.size
    # the same as featurizing the candidates (Eq. 5 by default) and running the naive greedy with
    # IFD weights
    for weighting in ("paper", "sklearn"):
        if weighting == "sklearn":
            r = iterit_select(texts, 200, ifd, decay=0.1, weighting="sklearn", progress=False)
        X = tfidf_matrix([texts[i] for i in keep], weighting=weighting, progress=False).matrix
        assert r.n_ngrams == X.shape[1]
        ref = naive_coverage_greedy(X, 200, ifd[keep], 0.1)
        np.testing.assert_array_equal(r.indices, keep[ref.indices])
        np.testing.assert_array_equal(r.gains, ref.gains)
        assert np.all(ifd[r.indices] < 1)


def test_iterit_select_too_few_candidates():
    texts = ["ab cd", "cd ef", "ef gh", "gh ij"]
    ifd = [0.5, 1.0, np.nan, 0.9]
    with pytest.raises(ValueError, match=r"'k' parameter of iterit_select must be at most the number of "
                                         r"candidates \(2 of 4 texts: 1 have a NaN IFD and 1 an IFD >= 1\)"):
        iterit_select(texts, 3, ifd, progress=False)
    r = iterit_select(texts, 3, ifd, allow_fewer=True, progress=False)
    assert sorted(r.indices.tolist()) == [0, 3]
    r = iterit_select(texts, 3, [2.0, 1.5, np.nan, np.inf], allow_fewer=True, progress=False)
    assert r.indices.size == 0 and r.n_dropped == 4 and r.n_dropped_high_ifd == 3


def test_iterit_select_bad_inputs():
    texts = ["ab cd", "cd ef"]
    with pytest.raises(ValueError, match=r"'ifd'.*2 scores.*shape \(3,\)"):
        iterit_select(texts, 1, [0.5, 0.5, 0.5], progress=False)
    with pytest.raises(ValueError, match="'ifd'.*nonnegative or NaN.*-0.1 at position 1"):
        iterit_select(texts, 1, [0.5, -0.1], progress=False)
    with pytest.raises(TypeError, match="'ifd'"):
        iterit_select(texts, 1, ["a", "b"], progress=False)
    with pytest.raises(ValueError, match="'decay'"):
        iterit_select(texts, 1, [0.5, 0.5], decay=2, progress=False)
    with pytest.raises(ValueError, match="'texts'"):
        iterit_select([], 1, [], progress=False)
    with pytest.raises(ValueError, match="'ngram_range'"):
        iterit_select(texts, 1, [0.5, 0.5], ngram_range=(0, 3), progress=False)
    with pytest.raises(ValueError, match="'k'"):
        iterit_select(texts, 0, [0.5, 0.5], progress=False)
    with pytest.raises(ValueError, match="'weighting' parameter of iterit_select"):
        iterit_select(texts, 1, [0.5, 0.5], weighting="bm25", progress=False)
