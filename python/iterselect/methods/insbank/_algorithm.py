"""InsBank / PIBE's algorithm: one round ranks the bank and the new samples (affinity
propagation with history, representation x quality) and keeps the best."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._arrays import as_matrix, host_values
from ..._validation import check_bool, check_choice, check_float, check_float_dtype, check_int, param_error

COMBINES = ("multiply", "add")
NORMALIZATIONS = ("paper", "published")


@dataclass(frozen=True)
class Bank:
    """An instruction bank: its members' embeddings and raw quality, in rank order (row 0 is the
    best-scored member), as :meth:`InsBank.select_round` returns it in ``result.bank``."""

    embeddings: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return int(self.quality.shape[0])


@dataclass(frozen=True)
class BankHistory:
    """What the next round's history responsibilities are built from (``result.history``).

    Attributes
    ----------
    responsibility : (n_old, n_old) array
        The final responsibilities R of the round's affinity propagation.
    embeddings : (n_old, d) array
        The round's candidates (the previous bank, then the new samples).
    keep : int64 array (m,)
        The bank's positions among those candidates, in rank order.

    The responsibilities are dense after a dense round and a scipy.sparse CSR matrix on the
    round's kNN graph after a sparse one.
    """

    responsibility: np.ndarray
    embeddings: np.ndarray
    keep: np.ndarray


@dataclass(frozen=True, eq=False)
class InsBankRoundResult:
    """The result of :meth:`InsBank.select_round`.

    The round's candidates are the previous bank's members (rows ``0 .. n_bank - 1``, in the
    bank's rank order) followed by the new samples (row ``n_bank + i`` is new sample ``i``).

    Attributes
    ----------
    indices : int64 array (m,)
        The new bank, as candidate rows in rank order (best first): every prefix is the bank of a
        smaller size.
    scores : float64 array (m,)
        The bank's scores, non-increasing.
    candidate_scores, representation, quality : float64 arrays (n_candidates,)
        Every candidate's score, min-max normalized representation score and min-max normalized
        quality (the two terms of the score).
    raw_representation : float64 array (n_candidates,)
        :func:`iterselect.affinity.representation_scores` of the final messages.
    n_bank : int
        Candidates that came from the previous bank.
    exemplars : int64 array
        The affinity propagation's exemplars (candidate rows), for reference.
    n_iter : int
    converged : bool
    used_history : bool
        Whether history responsibilities were mixed into the messages.
    mode : str
        "dense" or "sparse": how the round's affinity propagation ran.
    responsibility, availability : (n_candidates, n_candidates) arrays or CSR matrices
        The final messages (CSR on the kNN graph in the sparse mode).
    candidate_embeddings, candidate_quality : arrays
        The candidates' embeddings and raw quality.
    """

    indices: np.ndarray
    scores: np.ndarray
    candidate_scores: np.ndarray
    representation: np.ndarray
    quality: np.ndarray
    raw_representation: np.ndarray
    n_bank: int
    exemplars: np.ndarray
    n_iter: int
    converged: bool
    used_history: bool
    mode: str
    responsibility: object
    availability: object
    candidate_embeddings: np.ndarray
    candidate_quality: np.ndarray

    @property
    def gains(self) -> np.ndarray:
        """The scores (larger is better), under the name every selection result gives them."""
        return self.scores

    @property
    def bank(self) -> Bank:
        """The new bank, to pass as ``bank=`` to the next round."""
        return Bank(self.candidate_embeddings[self.indices], self.candidate_quality[self.indices])

    @property
    def history(self) -> BankHistory:
        """The messages the next round's history is built from (``bank_history=``)."""
        return BankHistory(self.responsibility, self.candidate_embeddings, self.indices)


InsBankRound = InsBankRoundResult  # the earlier name, still accepted


def minmax(values) -> np.ndarray:
    """``(v - min) / (max - min)`` in float64; a constant vector maps to all ones (it then leaves
    the ranking to the other term under either combination).

    Examples
    --------
    >>> minmax([2.0, 4.0, 3.0]).tolist(), minmax([5.0, 5.0]).tolist()
    ([0.0, 1.0, 0.5], [1.0, 1.0])
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = v.min(), v.max()
    if hi == lo:
        return np.ones_like(v)
    return (v - lo) / (hi - lo)


def check_quality(quality, n: int, name: str, func: str) -> np.ndarray:
    expected = f"a 1-D array of {n} finite floats (one per sample)"
    try:
        q = np.asarray(quality, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise param_error(func, name, expected, type(quality).__name__, TypeError) from exc
    if q.shape != (n,):
        raise param_error(func, name, expected, f"an array of shape {q.shape}")
    bad = np.flatnonzero(~np.isfinite(q))
    if bad.size:
        raise param_error(func, name, expected, f"{q[bad[0]]} at position {int(bad[0])}")
    return q


class InsBank:
    """InsBank / PIBE: a bank of ``bank_size`` instructions, evolved as each new dataset arrives.

    Progressive Instruction Bank Evolution, as the paper defines it (followed by default):

    - §3.1, gradual evolution, ``B_{t+1} = pi(X_{t+1}, X_t + B_{t-1})``: a round's candidates
      X'_{t+1} are the current bank B_t (in rank order) followed by the newly arrived data X_{t+1};
      the first round's are the first dataset alone.
    - §2.3, Eq. 3 and Appendix A: affinity propagation over the candidates' instruction embeddings,
      "negative euclidean distance to initialize the similarity matrix and fill the diagonal of
      similarity matrix with 0" (``preference=0.0``), damping rate β = 0.5 (``damping``).
    - §3.2, Eq. 4-6: from the second round, the history H_t is built from the previous round's
      responsibilities R_t (:func:`iterselect.affinity.history_matrix`: cosine similarities
      between X'_t and X_{t+1}, weights ``Sim^2 / sum Sim``, bottom-right 0, the correction
      ``min(median(R_t), 0)`` on the new samples' columns) and mixed into every iteration,
      ``R^i = α_i H_t + (1 - α_i)(β R^i + (1 - β) R^{i-1})`` with ``α_i = λ α_{i-1}``,
      α = 0.5, λ = 0.99 (Appendix A; ``history_weight``, ``history_decay``).
    - §3.3, Eq. 7: each candidate's representation score
      ``sum_i (A+R)[i,k] - sum_i (A+R)[k,i] + (A+R)[k,k]``
      (:func:`iterselect.affinity.representation_scores`).
    - §3.4, Eq. 8-10: representation and quality min-max normalized over the candidates and
      combined by multiplication, ``(1 + s'_rep)(1 + s'_q)^γ`` (Eq. 10, the paper's default,
      γ = 1), or addition, ``s'_rep + γ s'_q`` (Eq. 9, ``combine="add"``). The ``bank_size``
      best scores (ties by lowest candidate row) form the new bank, kept in rank order so that
      every prefix is a smaller bank (§4.4). The bank keeps its members' raw quality, normalized
      again with each round's candidates.

    Embeddings and quality: the paper encodes the instructions with an instruction-embedding
    model (Li et al., 2024b) and scores quality with DEITA's scorer. :meth:`run` embeds each
    record's instruction (with its input, without the response) with MiniLM (all-MiniLM-L6-v2),
    which stands in for the paper's embedding model; quality is any float per record (larger is
    better). The shared Dolly/Alpaca embeddings embed instruction, input and output together:
    they are not the paper's input.

    The combination: the paper states multiplication with γ = 1 as its default (§3.4 footnote 1,
    Appendix A), and that is the default here; but the numbers of its Tables 3 and 4 (final
    round: AlpacaEval 91.21 against GPT-3, 10.70 against GPT-4) are those of Table 5's
    "Addition 2" row (addition, γ = 2): ``combine="add", gamma=2.0`` gives that setting.

    Scale: a dense round holds S, R and A (and H) as n x n matrices; the paper's first round,
    Self-Instruct, has 82k candidates (80 GB in float32). ``mode="auto"`` runs dense when it fits
    in 80% of the available memory and otherwise the sparse mode, with a
    :class:`~iterselect.exceptions.MemoryModeWarning`: the same messages on the symmetrized graph
    of each candidate's ``n_neighbors`` nearest candidates (faiss), H_t computed at the graph's
    entries only (R_t read where it is stored, so the sums of Eq. 4-5 run over the old candidates
    near each bank member), and the representation scores summed over the graph.

    Where the paper and the published code (CadenShi/InsBank, ``pibe/``) differ:

    ==================  ==========================  ===============================  ============================
    step                paper                       published code                   here
    ==================  ==========================  ===============================  ============================
    history weights     Eq. 4: cosine similarity,   cosine distance 1 - cos,         ``history_convention=
                        ``Sim^2 / sum_l Sim``       ``Sim / sum_l Sim`` (farther     "paper"`` (default) or
                                                    old candidates weigh more)       ``"published"``
    H bottom-right,     0, then ``min(median(R_t),  the median of the other three    the same option
    correction          0)`` added to the new       blocks; no correction
                        samples' columns
    α, λ                0.5, 0.99 (Appendix A)      0.3, 0.9 (its run script)        ``history_weight=0.5,
                                                                                     history_decay=0.99``
    preference          0 (Appendix A)              0 (run script; the class         ``preference=0.0``;
                                                    default is the median of S)      ``"median"`` an option
    representation      min-max over the            from the second round: minimum   ``normalize="paper"``
    normalization       candidates (Eq. 8)          over the first ``bank_size``     (default) or
                                                    candidates (the old bank), and   ``"published"``
                                                    values below it clipped to 0
    rounds              one per arriving dataset    each dataset split into batches  ``batch_size=None``
                                                    of 27,000 candidates, a round    (default) or 27000
                                                    each
    noise               none stated                 scikit-learn's tie-breaking      none (deterministic)
                                                    noise from the global generator
    precision           not stated                  float32 on the GPU, float16      ``dtype`` (float64)
                                                    beyond 39,000 candidates
    bank ties           not stated                  ``torch.topk`` (unspecified)     lowest candidate row
    scale               dense                       dense, on one GPU                ``mode="auto"``: dense
                                                                                     when it fits, else sparse
    ==================  ==========================  ===============================  ============================

    Parameters
    ----------
    bank_size : int
        ``m``, the bank's size.
    combine : {"multiply", "add"}, default="multiply"
        Eq. 10 or Eq. 9.
    gamma : float >= 0, default=1.0
        ``γ``: weight of the quality (an exponent under "multiply", a factor under "add").
    use_history : bool, default=True
        Carry the responsibilities across rounds (False: "PIBE w/o history", plain affinity
        propagation each round).
    history_weight, history_decay : float in [0, 1], default=0.5, 0.99
        ``α`` and ``λ`` of Eq. 6.
    history_convention : {"paper", "published"}, default="paper"
        How H_t is built (see :func:`iterselect.affinity.history_matrix`).
    preference : float or "median", default=0.0
        The diagonal of S; "median": the median of S (Frey & Dueck's and scikit-learn's default).
    damping : float in [0.5, 1), default=0.5
        The share of the old message kept at each update: ``1 - β`` in Eq. 6 (the same at 0.5).
    normalize : {"paper", "published"}, default="paper"
        The representation scores' normalization (see the table).
    batch_size : int, optional
        :meth:`run` splits each arriving dataset into consecutive batches of at most this many
        samples, one round each (the published code's 27,000). None: one round per dataset.
    mode : {"auto", "dense", "sparse"}, default="auto"
    n_neighbors : int, default=64
        The sparse mode's neighbours per candidate (before symmetrization).
    knn : {"auto", "exact", "ivf", "hnsw"}, default="auto"
        The sparse mode's neighbour search (see :func:`iterselect.affinity.affinity_propagation`).
    max_iter, convergence_iter : int, default=200, 15
        Affinity propagation's iteration limit and convergence rule.
    dtype : numpy.float32 or numpy.float64, default=numpy.float64
        Precision of the messages.
    threads : int, optional
        CPU threads (default: all).
    progress : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> ib = InsBank(bank_size=2, progress=False)
    >>> X = np.array([[0.0, 1.0], [0.1, 1.0], [0.2, 1.0], [5.0, 1.0], [5.1, 1.0]])
    >>> first = ib.select_round(X, [0.2, 0.9, 0.1, 0.5, 0.4])
    >>> first.representation.round(2).tolist(), first.indices.tolist()
    ([1.0, 1.0, 1.0, 0.0, 0.0], [1, 0])
    >>> second = ib.select_round(np.array([[9.0, 1.0], [9.1, 1.0]]), [0.0, 1.0], bank=first.bank,
    ...                          bank_history=first.history)
    >>> second.n_bank, second.indices.tolist(), second.used_history
    (2, [0, 1], True)
    """

    name = "insbank"

    def __init__(self, bank_size, *, combine="multiply", gamma=1.0, use_history=True,
                 history_weight=0.5, history_decay=0.99, history_convention="paper",
                 preference=0.0, damping=0.5, normalize="paper", batch_size=None, mode="auto",
                 n_neighbors=64, knn="auto", max_iter=200, convergence_iter=15, dtype=np.float64,
                 threads=None, progress=True):
        from ..._knn import INDEXES
        from ...affinity._history import CONVENTIONS
        from ._round import MODES

        func = "InsBank"
        self.bank_size = check_int(bank_size, "bank_size", func, low=1)
        self.combine = check_choice(combine, "combine", func, COMBINES)
        self.gamma = check_float(gamma, "gamma", func, low=0.0)
        self.use_history = check_bool(use_history, "use_history", func)
        self.history_weight = check_float(history_weight, "history_weight", func, 0.0, 1.0)
        self.history_decay = check_float(history_decay, "history_decay", func, 0.0, 1.0)
        self.history_convention = check_choice(history_convention, "history_convention", func,
                                               CONVENTIONS)
        if isinstance(preference, str):
            self.preference = check_choice(preference, "preference", func, ("median",))
        else:
            self.preference = check_float(preference, "preference", func)
        self.damping = check_float(damping, "damping", func, 0.5, 1.0, high_open=True)
        self.normalize = check_choice(normalize, "normalize", func, NORMALIZATIONS)
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size",
                                                                    func, low=1)
        self.mode = check_choice(mode, "mode", func, MODES)
        self.n_neighbors = check_int(n_neighbors, "n_neighbors", func, low=1)
        self.knn = check_choice(knn, "knn", func, INDEXES)
        self.max_iter = check_int(max_iter, "max_iter", func, low=1)
        self.convergence_iter = check_int(convergence_iter, "convergence_iter", func, low=1)
        self.dtype = check_float_dtype(dtype, "dtype", func)
        self.threads = None if threads is None else check_int(threads, "threads", func, low=1)
        self.progress = progress

    def config(self, quality_field) -> dict:
        return {"bank_size": self.bank_size, "combine": self.combine, "gamma": self.gamma,
                "use_history": self.use_history, "history_weight": self.history_weight,
                "history_decay": self.history_decay,
                "history_convention": self.history_convention, "preference": self.preference,
                "damping": self.damping, "normalize": self.normalize,
                "batch_size": self.batch_size, "mode": self.mode,
                "n_neighbors": self.n_neighbors, "knn": self.knn, "max_iter": self.max_iter,
                "convergence_iter": self.convergence_iter, "dtype": self.dtype.name,
                "metric": "euclidean", "embedding": "instruction",
                "quality_field": quality_field}

    def score(self, representation, quality) -> np.ndarray:
        """Eq. 10 ``(1 + rep)(1 + q)^γ``, or Eq. 9 ``rep + γ q``, of normalized scores."""
        rep = np.asarray(representation, dtype=np.float64)
        q = np.asarray(quality, dtype=np.float64)
        if self.combine == "add":
            return rep + self.gamma * q
        return (1.0 + rep) * np.power(1.0 + q, self.gamma)

    def select_round(self, embeddings, quality, *, bank=None, bank_history=None):
        """One round: rank the previous ``bank`` and the new samples, keep the best ``bank_size``.

        Parameters
        ----------
        embeddings : (n, d) array
            The new samples' embeddings (numpy or host torch; any float dtype).
        quality : (n,) array of floats
            The new samples' quality (larger is better).
        bank : Bank, optional
            The current bank (``previous_result.bank``); None for the first round.
        bank_history : BankHistory, optional
            The previous round's messages (``previous_result.history``), for H_t; needs
            ``bank``. None (or ``use_history=False``): no history.

        Returns
        -------
        InsBankRoundResult
            ``indices`` are candidate rows: ``0 .. len(bank) - 1`` are the previous bank's
            members, ``len(bank) + i`` is new sample ``i``.
        """
        from ...affinity import affinity_propagation, representation_scores
        from ._round import choose_mode, normalize_representation

        func = "InsBank.select_round"
        m = as_matrix(embeddings, "embeddings", func)
        if m.on_cuda:
            raise param_error(func, "embeddings", "a host array (numpy, or torch on the CPU)",
                              "an array on a CUDA device")
        X = host_values(m)
        n, d = X.shape
        q = check_quality(quality, n, "quality", func)
        if bank is None:
            if bank_history is not None:
                raise param_error(func, "bank_history", "None when bank is None", "a BankHistory")
            cand_emb, cand_q, n_bank = X, q, 0
        else:
            if not isinstance(bank, Bank):
                raise param_error(func, "bank", "None or a Bank (a previous round's .bank)",
                                  type(bank).__name__, TypeError)
            if bank.embeddings.ndim != 2 or bank.embeddings.shape[1] != d:
                raise param_error(func, "bank", f"a Bank of {d}-dimensional embeddings (as "
                                  "embeddings)", f"embeddings of shape {bank.embeddings.shape}")
            n_bank = len(bank)
            cand_emb = np.concatenate([np.asarray(bank.embeddings), X])
            cand_q = np.concatenate([np.asarray(bank.quality, dtype=np.float64), q])
        n_cand = cand_emb.shape[0]
        if self.bank_size > n_cand:
            raise param_error(func, "bank_size", f"at most the number of candidates ({n_cand}: "
                              f"{n_bank} in the bank + {n} new)", self.bank_size)
        if n_cand < 2:
            raise param_error(func, "embeddings", "at least 2 candidates for affinity propagation",
                              f"{n_cand}")
        hist = None
        if bank_history is not None and self.use_history:
            hist = self._check_history(bank_history, bank, func)
        n_old = 0 if hist is None else hist.embeddings.shape[0]
        k = min(self.n_neighbors, n_cand - 1)
        mode = choose_mode(self.mode, n_cand, n_old, n, self.dtype.itemsize, hist is not None, k)
        kw = {}
        if mode == "sparse":
            from ..._knn import kneighbors

            neighbors = kneighbors(np.ascontiguousarray(cand_emb, dtype=np.float32), k,
                                   index=self.knn, threads=self.threads, func=func)
            kw["knn"] = neighbors
        if hist is not None:
            kw.update(history=self._history(hist, X, kw.get("knn")),
                      history_weight=self.history_weight, history_decay=self.history_decay)
        ap = affinity_propagation(cand_emb, metric="euclidean",
                                  preference=None if self.preference == "median" else self.preference,
                                  damping=self.damping, max_iter=self.max_iter,
                                  convergence_iter=self.convergence_iter, dtype=self.dtype,
                                  return_messages=True, progress=self.progress,
                                  threads=self.threads, **kw)
        R, A = ap.responsibility, ap.availability
        if mode == "dense":
            R, A = np.asarray(R), np.asarray(A)
        raw = np.asarray(representation_scores(R, A, threads=self.threads), dtype=np.float64)
        rep = normalize_representation(raw, n_bank, self.normalize)
        qn = minmax(cand_q)
        total = self.score(rep, qn)
        order = np.argsort(-total, kind="stable")[:self.bank_size].astype(np.int64)
        return InsBankRoundResult(
            indices=order, scores=total[order], candidate_scores=total, representation=rep,
            quality=qn, raw_representation=raw, n_bank=n_bank,
            exemplars=np.asarray(ap.exemplars, dtype=np.int64), n_iter=int(ap.n_iter),
            converged=bool(ap.converged), used_history=hist is not None, mode=mode,
            responsibility=R, availability=A, candidate_embeddings=cand_emb,
            candidate_quality=cand_q)

    @staticmethod
    def _check_history(hist, bank, func) -> BankHistory:
        if not isinstance(hist, BankHistory):
            raise param_error(func, "bank_history", "None or a BankHistory (a previous round's "
                              ".history)", type(hist).__name__, TypeError)
        old = np.asarray(hist.embeddings)
        keep = np.asarray(hist.keep, dtype=np.int64)
        n_old = old.shape[0]
        if hist.responsibility.shape != (n_old, n_old):
            raise param_error(func, "bank_history", f"responsibilities of shape ({n_old}, {n_old}) "
                              "(one row per previous candidate)",
                              f"shape {hist.responsibility.shape}")
        if keep.shape != (len(bank),) or not np.array_equal(old[keep], bank.embeddings):
            raise param_error(func, "bank_history", "the history of the round that produced bank "
                              "(its candidates at keep equal the bank's embeddings)",
                              "a history of another bank")
        return BankHistory(hist.responsibility, old, keep)

    def _history(self, hist: BankHistory, X, neighbors):
        """H_t (Eq. 4-5) over the new candidates: dense, or at the sparse graph's entries."""
        from ._round import dense_history, sparse_history

        if neighbors is None:
            R_old = hist.responsibility
            return dense_history(R_old, hist.embeddings, X, hist.keep, self.history_convention)
        return sparse_history(hist.responsibility, hist.embeddings, X, hist.keep,
                              self.history_convention, neighbors, self.n_neighbors, self.knn,
                              self.threads)

    # ------------------------------------------------------------------ run

    def run(self, datasets, run_dir, *, quality_field="quality", resume=False,
            on_round_end=None):
        """Evolve the bank over a sequence of arriving datasets, saving the state after each round.

        Parameters
        ----------
        datasets : sequence
            One item per arrival, in order: a list of records (dicts; quality read from
            ``quality_field``, embeddings of the instruction and input computed with MiniLM by
            :func:`iterselect.datasets.minilm_embeddings`), or a dict with ``"records"`` and
            optionally ``"embeddings"`` ((n, d) array) and ``"quality"`` ((n,) floats, else read
            from ``quality_field``). A resumed run may be given more arrivals than it has done
            (the bank keeps evolving); those it has done must be the same records and quality.
            With ``batch_size``, each arrival is split into rounds of at most that many records.
        run_dir : str or Path
        quality_field : str, default="quality"
        resume : bool, default=False
            Continue after the last saved round.
        on_round_end : callable, optional
            ``on_round_end(round_index, report)`` after each round is saved.

        Returns
        -------
        MethodRunResult
            ``selected``: the bank, as indices into the concatenation of all arrivals' records
            (arrival ``t``'s record ``i`` is ``sum(sizes[:t]) + i``), in rank order.

        The run directory holds, besides ``state.json`` and ``rounds/``, the last round's
        candidates' embeddings and responsibilities (``arrays/arrival_NNN.npz``; sparse ones as
        CSR arrays), from which a resumed run rebuilds the bank and its history exactly. No
        model is trained.
        """
        from ._run import run_insbank

        return run_insbank(self, datasets, run_dir, quality_field=quality_field, resume=resume,
                           on_round_end=on_round_end)
