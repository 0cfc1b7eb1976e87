"""InsBank / PIBE's algorithm: one arrival ranks the bank and the new samples (affinity
propagation with history, representation x quality) and keeps the best."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._arrays import as_matrix, host_values
from ..._validation import check_choice, check_float, check_float_dtype, check_int, param_error

COMBINES = ("multiply", "add")


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
    responsibility, availability : (n_candidates, n_candidates) arrays
        The final messages.
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
    responsibility: np.ndarray
    availability: np.ndarray
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

    Algorithm (the paper's PIBE, as the published code runs it; followed here). The first
    dataset's samples are the candidates; each later arrival's candidates are the current bank
    (in rank order) followed by the new samples. Affinity propagation runs over the candidates'
    embeddings with ``S = -||x - y||`` (euclidean, InsBank's) and the preference on the
    diagonal. From the second arrival on, the previous round's responsibilities are carried
    over: :func:`iterselect.affinity.history_matrix` builds the history matrix H from them and
    the similarities ``-||x_old - x_new||`` of the previous candidates to the new samples, and
    every iteration mixes it in, ``R <- a_t H + (1 - a_t) R`` with ``a_t = history_weight *
    history_decay^t``. Each candidate's representation score is
    :func:`iterselect.affinity.representation_scores` of the final messages,
    ``colsum(A+R) - rowsum(A+R) + diag(A+R)``; its quality is the caller's score (IFD, a reward,
    any float; larger is better). With ``rep`` and ``q`` the two min-max normalized over the
    candidates (a constant vector normalizes to ones):

    - ``combine="multiply"`` (default): ``score = (1 + rep) * (1 + q) ** gamma``;
    - ``combine="add"``: ``score = rep + gamma * q``.

    The ``bank_size`` best scores (ties by lowest candidate row) form the new bank, stored in
    rank order so that every prefix is a smaller bank. The bank keeps its members' raw quality,
    normalized again with each round's candidates.

    Where the published code (CadenShi/InsBank, ``pibe/``) differs: its history weights use the
    cosine distance whatever the metric (here the run's euclidean similarities; see
    :func:`iterselect.affinity.history_matrix`); from the second arrival it scales the representation
    with the minimum over the first ``n_clusters`` candidates and clips below 0 (here plain
    min-max over all candidates); its preference is 0 (here the median of S by default, as Frey &
    Dueck and scikit-learn; ``preference=0.0`` gives the published one); its
    ``random_state=None`` adds noise from the global generator (here none: deterministic); it
    splits a large dataset into batches of 27,000 (here each arrival is one batch; split a
    dataset to do the same). The defaults follow its run script: ``combine="multiply"``,
    ``gamma=1``, ``damping=0.5``, ``history_weight=0.3``, ``history_decay=0.9``.

    Parameters
    ----------
    bank_size : int
        ``m``, the bank's size.
    combine : {"multiply", "add"}, default="multiply"
    gamma : float >= 0, default=1.0
        Weight of the quality (a factor under "add", an exponent under "multiply").
    use_history : bool, default=True
        Carry the responsibilities across arrivals (False: plain affinity propagation each round).
    history_weight, history_decay : float in [0, 1], default=0.3, 0.9
        ``a_0`` and its decay per iteration.
    preference : float, optional
        The diagonal of S; None: the median of S.
    damping, max_iter, convergence_iter : affinity propagation's settings
    dtype : numpy.float32 or numpy.float64, default=numpy.float64
        Precision of the messages.
    progress : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> ib = InsBank(bank_size=2, progress=False)
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    >>> first = ib.select_round(X, [1.0, 1.0, 1.0, 1.0, 1.0])
    >>> first.indices.tolist()
    [1, 3]
    >>> second = ib.select_round(np.array([[9.0], [9.1]]), [0.0, 1.0], bank=first.bank,
    ...                          bank_history=first.history)
    >>> second.n_bank, len(second.indices)
    (2, 2)
    """

    name = "insbank"

    def __init__(self, bank_size, *, combine="multiply", gamma=1.0, use_history=True,
                 history_weight=0.3, history_decay=0.9, preference=None, damping=0.5,
                 max_iter=200, convergence_iter=15, dtype=np.float64, progress=True):
        func = "InsBank"
        self.bank_size = check_int(bank_size, "bank_size", func, low=1)
        self.combine = check_choice(combine, "combine", func, COMBINES)
        self.gamma = check_float(gamma, "gamma", func, low=0.0)
        if not isinstance(use_history, (bool, np.bool_)):
            raise param_error(func, "use_history", "a bool", use_history, TypeError)
        self.use_history = bool(use_history)
        self.history_weight = check_float(history_weight, "history_weight", func, 0.0, 1.0)
        self.history_decay = check_float(history_decay, "history_decay", func, 0.0, 1.0)
        self.preference = (None if preference is None
                           else check_float(preference, "preference", func))
        self.damping = check_float(damping, "damping", func, 0.5, 1.0, high_open=True)
        self.max_iter = check_int(max_iter, "max_iter", func, low=1)
        self.convergence_iter = check_int(convergence_iter, "convergence_iter", func, low=1)
        self.dtype = check_float_dtype(dtype, "dtype", func)
        self.progress = progress

    def config(self, quality_field) -> dict:
        return {"bank_size": self.bank_size, "combine": self.combine, "gamma": self.gamma,
                "use_history": self.use_history, "history_weight": self.history_weight,
                "history_decay": self.history_decay, "preference": self.preference,
                "damping": self.damping, "max_iter": self.max_iter,
                "convergence_iter": self.convergence_iter, "dtype": self.dtype.name,
                "metric": "euclidean", "quality_field": quality_field}

    def score(self, representation, quality) -> np.ndarray:
        """The combined score of normalized ``representation`` and ``quality`` (see the class)."""
        rep = np.asarray(representation, dtype=np.float64)
        q = np.asarray(quality, dtype=np.float64)
        if self.combine == "add":
            return rep + self.gamma * q
        return (1.0 + rep) * np.power(1.0 + q, self.gamma)

    def select_round(self, embeddings, quality, *, bank=None, bank_history=None):
        """One arrival: rank the previous ``bank`` and the new samples, keep the best ``bank_size``.

        Parameters
        ----------
        embeddings : (n, d) array
            The new samples' embeddings (numpy or host torch; any float dtype).
        quality : (n,) array of floats
            The new samples' quality (larger is better).
        bank : Bank, optional
            The current bank (``previous_result.bank``); None for the first arrival.
        bank_history : BankHistory, optional
            The previous round's messages (``previous_result.history``), for the history
            responsibilities; needs ``bank``. None (or ``use_history=False``): no history.

        Returns
        -------
        InsBankRoundResult
            ``indices`` are candidate rows: ``0 .. len(bank) - 1`` are the previous bank's
            members, ``len(bank) + i`` is new sample ``i``.
        """
        from ...affinity import affinity_propagation, representation_scores

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
        H = None
        if bank_history is not None and self.use_history:
            H = self._history(bank_history, bank, X, func)
        kw = {} if H is None else {"history": H, "history_weight": self.history_weight,
                                   "history_decay": self.history_decay}
        ap = affinity_propagation(cand_emb, metric="euclidean", preference=self.preference,
                                  damping=self.damping, max_iter=self.max_iter,
                                  convergence_iter=self.convergence_iter, dtype=self.dtype,
                                  return_messages=True, progress=self.progress, **kw)
        R = np.asarray(ap.responsibility)
        A = np.asarray(ap.availability)
        raw = np.asarray(representation_scores(R, A), dtype=np.float64)
        rep = minmax(raw)
        qn = minmax(cand_q)
        total = self.score(rep, qn)
        order = np.argsort(-total, kind="stable")[:self.bank_size].astype(np.int64)
        return InsBankRoundResult(
            indices=order, scores=total[order], candidate_scores=total, representation=rep,
            quality=qn, raw_representation=raw, n_bank=n_bank,
            exemplars=np.asarray(ap.exemplars, dtype=np.int64), n_iter=int(ap.n_iter),
            converged=bool(ap.converged), used_history=H is not None, responsibility=R,
            availability=A, candidate_embeddings=cand_emb, candidate_quality=cand_q)

    @staticmethod
    def _history(hist, bank, X, func):
        from scipy.spatial.distance import cdist

        from ...affinity import history_matrix

        if not isinstance(hist, BankHistory):
            raise param_error(func, "bank_history", "None or a BankHistory (a previous round's "
                              ".history)", type(hist).__name__, TypeError)
        R_old = np.asarray(hist.responsibility)
        old = np.asarray(hist.embeddings)
        keep = np.asarray(hist.keep, dtype=np.int64)
        n_old = old.shape[0]
        if R_old.shape != (n_old, n_old):
            raise param_error(func, "bank_history", f"responsibilities of shape ({n_old}, {n_old}) "
                              "(one row per previous candidate)", f"shape {R_old.shape}")
        if keep.shape != (len(bank),) or not np.array_equal(old[keep], bank.embeddings):
            raise param_error(func, "bank_history", "the history of the round that produced bank "
                              "(its candidates at keep equal the bank's embeddings)",
                              "a history of another bank")
        S_old_new = -cdist(old.astype(np.float64), X.astype(np.float64))
        return history_matrix(R_old, S_old_new, keep=keep)

    # ------------------------------------------------------------------ run

    def run(self, datasets, run_dir, *, quality_field="quality", resume=False,
            on_round_end=None):
        """Evolve the bank over a sequence of arriving datasets, saving the state after each.

        Parameters
        ----------
        datasets : sequence
            One item per arrival, in order: a list of records (dicts; quality read from
            ``quality_field``, embeddings computed with MiniLM by
            :func:`iterselect.datasets.minilm_embeddings`), or a dict with ``"records"`` and
            optionally ``"embeddings"`` ((n, d) array) and ``"quality"`` ((n,) floats, else read
            from ``quality_field``). A resumed run may be given more arrivals than it has done
            (the bank keeps evolving); those it has done must be the same records and quality.
        run_dir : str or Path
        quality_field : str, default="quality"
        resume : bool, default=False
            Continue after the last saved arrival.
        on_round_end : callable, optional
            ``on_round_end(arrival_index, report)`` after each arrival is saved.

        Returns
        -------
        MethodRunResult
            ``selected``: the bank, as indices into the concatenation of all arrivals' records
            (arrival ``t``'s record ``i`` is ``sum(sizes[:t]) + i``), in rank order.

        The run directory holds, besides ``state.json`` and ``rounds/``, the last arrival's
        candidates' embeddings and responsibilities (``arrays/arrival_NNN.npz``), from which a
        resumed run rebuilds the bank and its history exactly. No model is trained.
        """
        from ._run import run_insbank

        return run_insbank(self, datasets, run_dir, quality_field=quality_field, resume=resume,
                           on_round_end=on_round_end)
