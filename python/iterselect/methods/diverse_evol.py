"""DiverseEvol (Wu et al., 2023, "Self-Evolved Diverse Data Sampling for Efficient Instruction
Tuning")."""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_indices, check_int
from ._method_run import (MethodRunResult, TrainConfig, finetune_on, open_run, sample_texts,
                          scoring_engine)


class DiverseEvol:
    """DiverseEvol: the model picks the data that is most different from what it was trained on.

    Algorithm (the paper, followed here). ``P_0`` is ``initial_size`` records drawn uniformly at
    random (``seed``). Each round ``t = 1..rounds``: fine-tune the base model on ``P_{t-1}``;
    embed every record with the fine-tuned model (last hidden states, mean-pooled over the
    tokens of its instruction, input and output, without the template's boilerplate); run k-center greedy warm-started from
    ``P_{t-1}`` (the first new point is the one farthest from the pool) and add ``round_size``
    points: ``P_t = P_{t-1} + K-Center(P_{t-1})``. The pool's Vendi score (cosine kernel, on the
    round's embeddings) is reported each round as its diversity, with the covering radius as the
    objective.

    The published code (OFA-Sys/DiverseEvol) was not re-read for this implementation (it was
    written without network access), so no difference from it is claimed; the default follows
    the paper. Variants it may use are options: ``metric="cosine"`` for normalized embeddings.
    Every round starts from the base weights, so resuming needs no checkpoint.

    Parameters
    ----------
    initial_size : int
        Size of the random initial pool ``P_0``.
    round_size : int
        Records added per round (the paper's ``k``).
    rounds : int
        Rounds of train, embed, select.
    metric : {"euclidean", "cosine"}, default="euclidean"
    seed : int, default=0
        Seeds ``P_0`` and the fine-tuning; the same seed gives the same selection.
    train : TrainConfig, optional
    scorer : object, optional
        Where scoring and embedding run: anything with the functions of
        :mod:`iterselect.scoring` it calls, e.g. :class:`iterselect.distributed.RayScorer` (a Ray
        actor pool); None: in this process. Training always runs here.
    progress : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> de = DiverseEvol(initial_size=2, round_size=2, rounds=1)
    >>> X = np.array([[0.0], [0.1], [5.0], [9.0], [0.2]])
    >>> de.select_round(X, [0, 1]).indices.tolist()
    [3, 2]
    """

    name = "diverse_evol"

    def __init__(self, initial_size, round_size, rounds, *, metric="euclidean", seed=0,
                 train=None, scorer=None, progress=True):
        func = "DiverseEvol"
        self.initial_size = check_int(initial_size, "initial_size", func, low=1)
        self.round_size = check_int(round_size, "round_size", func, low=1)
        self.rounds = check_int(rounds, "rounds", func, low=0)
        self.metric = check_choice(metric, "metric", func, ("euclidean", "cosine"))
        self.seed = check_int(seed, "seed", func, low=0)
        self.train = (train or TrainConfig()).check(func)
        self.scorer = scorer
        self.progress = progress

    def config(self, n: int, model_ref: str) -> dict:
        return {"initial_size": self.initial_size, "round_size": self.round_size,
                "rounds": self.rounds, "metric": self.metric, "seed": self.seed,
                "train": self.train.as_dict(), "n_records": n, "model": model_ref}

    def initial_pool(self, n: int) -> np.ndarray:
        """``P_0``: ``initial_size`` of ``n`` indices drawn with ``seed``."""
        if self.initial_size + self.rounds * self.round_size > n:
            raise ValueError(
                f"DiverseEvol: initial_size + rounds * round_size "
                f"({self.initial_size} + {self.rounds} * {self.round_size}) is more than the "
                f"{n} records")
        rng = np.random.default_rng(self.seed)
        return rng.permutation(n)[:self.initial_size].astype(np.int64)

    def select_round(self, embeddings, selected):
        """One round's selection: ``round_size`` k-center picks warm-started from ``selected``.

        Returns the :class:`~iterselect.kcenter.KCenterResult` (new picks in ``indices``).
        """
        from ..kcenter import kcenter_greedy

        n = int(embeddings.shape[0])
        selected = check_indices(selected, "selected", "DiverseEvol.select_round", n)
        return kcenter_greedy(embeddings, self.round_size, selected=selected, metric=self.metric,
                              progress=self.progress)

    def run(self, model, tokenizer, records, run_dir, *, resume=False, on_round_end=None):
        """Train, embed and select for ``rounds`` rounds, saving the state after each.

        Parameters
        ----------
        model : transformers causal LM or path
            The base model; every round fine-tunes a fresh copy of it.
        tokenizer : transformers tokenizer, or None to load it from ``model``'s path
        records : list of instruction records
        run_dir : str or Path
        resume : bool, default=False
            Continue a crashed run from its last completed round.
        on_round_end : callable, optional
            ``on_round_end(round_index, report)`` after each round is saved (for logging; an
            exception here stops the run with the round already saved).

        Returns
        -------
        MethodRunResult
        """
        from ..metrics import vendi_score

        records, base, tokenizer, run = open_run(self, model, tokenizer, records, run_dir, resume, "DiverseEvol.run")
        n = len(records)
        texts = sample_texts(records, self.train.template, tokenizer)
        embed = scoring_engine(self.scorer).embed
        if run.rounds_done == 0:
            pool = self.initial_pool(n)
            run.commit({"added": pool, "pool_size": pool.size, "objective": None,
                        "diversity": None}, {"selected": pool})
            if on_round_end:
                on_round_end(0, run.reports()[-1])
        for t in range(run.rounds_done, self.rounds + 1):
            pool = np.asarray(run.state["selected"], dtype=np.int64)
            trained = base.fresh()
            fit = finetune_on(trained, tokenizer, [records[i] for i in pool], self.train,
                              seed=self.seed + t, progress=self.progress)
            emb = embed(trained, tokenizer, texts, max_length=self.train.max_length,
                        progress=self.progress).embeddings.astype(np.float64)
            picked = self.select_round(emb, pool)
            new = np.asarray(picked.indices, dtype=np.int64)
            grown = np.concatenate([pool, new])
            vendi = float(vendi_score(emb[grown]).score)
            report = {"added": new, "pool_size": grown.size,
                      "objective": float(np.asarray(picked.radii)[-1]), "objective_name":
                      "covering radius", "diversity": vendi, "diversity_name": "Vendi score",
                      "train_loss": fit.train_loss}
            run.commit(report, {"selected": grown})
            if on_round_end:
                on_round_end(t, run.reports()[-1])
        return MethodRunResult(np.asarray(run.state["selected"], dtype=np.int64), tuple(run.reports()),
                         run.path)


__all__ = ["DiverseEvol"]
