"""IterIT (Jia et al., 2024, "Boosting LLM via Learning from Data Iteratively and
Selectively")."""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_float, check_int
from ..training.finetune import n_steps
from ..training.recipe import TrainConfig
from ._method_run import MethodRunResult, open_run, scoring_engine
from .baselines import response_text

POOLS = ("paper", "published")
TRAINER_STATE = "trainer_state.pt"


class IterIT:
    """IterIT: re-score difficulty with the model being trained, select for difficulty and
    diversity before every epoch (Jia et al., §2, Algorithm 1).

    The paper's algorithm, followed by default:

    - Complexity, Eq. 1-3: ``S_COM = PPL(Y | X) / PPL(Y)``, the IFD of each record under the
      current model (:func:`iterselect.scoring.ifd_scores`).
    - Alg. 1 lines 3-7, before the first epoch: the IFD of every record under the base model;
      "Sort samples in D based on S_COM; D = D[: a x M]": the ``a * M`` records of highest IFD
      form the candidate pool D (NaN IFDs, which cannot be ranked, are left out and counted).
    - Line 8, before every epoch: "D' = {(X_i, Y_i) in D, S_COM < 1}", the candidates whose IFD
      under the current model is below 1. A candidate with IFD >= 1 under the base model stays in
      D and may come back once training lowers its IFD.
    - Lines 9-15, Eq. 5-8: pick M of D' greedily by ``S = S_COM x S_DIV``, ``S_DIV = sum_g
      alpha_g TF-IDF(g, Y_i)`` over the response's 1-3-grams, with ``alpha_g <- b alpha_g`` for
      the n-grams of each pick (:func:`iterselect.coverage.iterit_select`); TF-IDF as Eq. 5,
      ``f_g / sum_k f_k x ln(N' / N_g)``, N' = |D'|.
    - Lines 16-20: train one epoch on the M picks, continuing the same model; the candidates'
      IFD is recomputed with it before the next epoch (line 3, with D the pool). One model is
      trained over the T epochs with one AdamW optimizer and one learning-rate schedule
      (:class:`iterselect.training.Finetuner`, the schedule planned for T epochs of ``M``
      samples, as the published trainer plans ``max_steps``; an epoch that line 8 leaves
      smaller trains fewer steps). The model, the optimizer and the
      schedule are checkpointed after every epoch, so a resumed run continues exactly.
    - Training recipe (:attr:`PAPER_RECIPE`, §3.4): "batch size equaling 32 for 3 epochs. The
      learning rate is set to 2e-5 following the training configuration in the Alpaca
      codebase"; the paper does not state the warm-up or schedule, so they are the Alpaca
      codebase's and the published script's (warm-up ratio 0.03, cosine).
    - §3.4: T = 3 epochs, M = 5% of the data, a = 3, b = 0.1 (0.0 for Alpaca-GPT4).

    Where the paper and the published code (JiaQiSJTU/IterIT, ``src/``) differ:

    ===============  =================================  ==================================  ===================
    step             paper                              published code                      here
    ===============  =================================  ==================================  ===================
    candidate pool   sort all by IFD, keep the top      drop IFD >= 1 first; the first      ``pool="paper"``
    (Alg. 1 l. 5-8)  ``a x M``, then drop IFD >= 1      epoch's greedy runs over every      (default) or
                     among them, every epoch            record with IFD < 1; the pool of    ``"published"``
                                                        later epochs is the first ``a x M``
                                                        of [that epoch's picks, the records
                                                        with IFD >= 1, the other IFD < 1
                                                        records by IFD, highest first]
    TF-IDF (Eq. 5)   f_g / sum_k f_k x ln(N'/N_g),      scikit-learn's TfidfVectorizer      ``weighting="paper"``
                     no normalization                   (smooth idf, l2-normalized rows)    (default) or
                                                        of the response + EOS text          ``"sklearn"`` (of the
                                                                                            response alone)
    re-picks         each sample at most once           once every gain is 0 the argmax     each at most once
                                                        can return a picked row
    ===============  =================================  ==================================  ===================

    Training follows both (one model, one optimizer, one schedule over T epochs).

    Parameters
    ----------
    budget : int
        ``M``, records trained on per epoch.
    epochs : int, default=3
        ``T`` (§3.4: "trained ... for 3 epochs").
    candidate_factor : float >= 1, default=3
        ``a``: the pool holds ``a * M`` records.
    decay : float in [0, 1], default=0.1
        ``b`` of Eq. 7.
    weighting : {"paper", "sklearn"}, default="paper"
        The TF-IDF of Eq. 5, or the published code's scikit-learn weighting.
    pool : {"paper", "published"}, default="paper"
        How the candidate pool is formed (see the table).
    seed : int, default=0
        Seeds the training; the same seed gives the same selection.
    train : TrainConfig, optional
        Default :attr:`PAPER_RECIPE`; ``train.epochs`` is ignored (``epochs`` is T, and the
        schedule spans it).
    scorer : object, optional
        Where scoring and embedding run: anything with the functions of
        :mod:`iterselect.scoring` it calls, e.g. :class:`iterselect.distributed.RayScorer` (a Ray
        actor pool); None: in this process. Training always runs here.
    progress : bool, default=True

    Examples
    --------
    >>> it = IterIT(budget=2, progress=False)
    >>> texts = ["Paris is the capital of France.", "The capital of France is Paris.",
    ...          "Water boils at 100 degrees.", "Yes."]
    >>> it.select_round(texts, [0.9, 0.8, 0.7, 1.3]).indices.tolist()
    [2, 0]
    >>> IterIT(budget=2, weighting="sklearn", progress=False).select_round(
    ...     texts, [0.9, 0.8, 0.7, 1.3]).indices.tolist()
    [0, 2]
    >>> it.candidates([0.5, 1.2, 0.9, float("nan"), 0.7, 0.1]).tolist()  # a * M = 6: IFD >= 1 kept
    [1, 2, 4, 0, 5]
    """

    name = "iterit"
    #: §3.4: batch 32, 3 epochs, lr 2e-5; warm-up ratio 0.03 and cosine from the Alpaca codebase
    #: and the published training script (the paper does not state them).
    PAPER_RECIPE = TrainConfig(epochs=3, lr=2e-5, batch_size=32, warmup_ratio=0.03,
                               scheduler="cosine")
    RECIPE_SOURCE = ("§3.4; the paper gives no warm-up or schedule, so they are the published script's "
                     "(warm-up ratio 0.03, cosine)")

    def __init__(self, budget, epochs=3, *, candidate_factor=3.0, decay=0.1, weighting="paper",
                 pool="paper", seed=0, train=None, scorer=None, progress=True):
        from ..coverage import WEIGHTINGS

        func = "IterIT"
        self.budget = check_int(budget, "budget", func, low=1)
        self.epochs = check_int(epochs, "epochs", func, low=1)
        self.candidate_factor = check_float(candidate_factor, "candidate_factor", func, low=1)
        self.decay = check_float(decay, "decay", func, low=0, high=1)
        self.weighting = check_choice(weighting, "weighting", func, WEIGHTINGS)
        self.pool = check_choice(pool, "pool", func, POOLS)
        self.seed = check_int(seed, "seed", func, low=0)
        self.train = (train or self.PAPER_RECIPE).check(func)
        self.scorer = scorer
        self.progress = progress

    def _schedule_steps(self):
        """The schedule's length: T epochs of M samples. An epoch may train fewer (line 8 drops
        IFD >= 1), never more, so the cosine never reaches zero before the last step. With a
        token budget per batch instead of a batch size the count is unknown in advance, and the
        schedule spans T times the first epoch's steps (Finetuner's default)."""
        if self.train.batch_size is None:
            return None
        return self.epochs * n_steps(self.budget, self.train.batch_size)

    @property
    def pool_size(self) -> int:
        """``a * M``, rounded."""
        return int(round(self.candidate_factor * self.budget))

    def config(self, n, model_ref):
        return {"budget": self.budget, "epochs": self.epochs,
                "candidate_factor": self.candidate_factor, "decay": self.decay,
                "weighting": self.weighting, "pool": self.pool, "seed": self.seed,
                "train": self.train.as_dict(), "n_records": n, "model": model_ref}

    def select_round(self, responses, ifd):
        """One epoch's selection (Alg. 1 lines 8-15): IFD >= 1 and NaN dropped, then the coverage
        greedy of ``budget`` responses weighted by ``ifd`` (fewer when fewer remain).

        Returns the :class:`~iterselect.coverage.IterITResult` (indices into ``responses``).
        """
        from ..coverage import iterit_select

        return iterit_select(list(responses), min(self.budget, len(responses)), ifd,
                             decay=self.decay, weighting=self.weighting, allow_fewer=True,
                             progress=self.progress)

    def candidates(self, ifd) -> np.ndarray:
        """The pool D of Alg. 1 lines 5-6: the ``a * M`` records of highest IFD, best first
        (IFD >= 1 included; NaN left out); ties by lowest index."""
        s = np.asarray(ifd, dtype=np.float64)
        ok = np.flatnonzero(~np.isnan(s))
        order = ok[np.lexsort((ok, -s[ok]))]
        return order[:self.pool_size].astype(np.int64)

    def published_pool(self, cand, ifd, picked) -> np.ndarray:
        """The published code's pool after an epoch's selection: the first ``a * M`` of [the
        picks in pick order, the candidates with IFD >= 1 in their current order, the other
        candidates with IFD < 1 by IFD, highest first]; NaN left out. Positions into ``cand``."""
        s = np.asarray(ifd, dtype=np.float64)
        picked = np.asarray(picked, dtype=np.int64)
        high = np.flatnonzero(s >= 1)
        rest = np.setdiff1d(np.flatnonzero(s < 1), picked)
        rest = rest[np.lexsort((rest, -s[rest]))]
        order = np.concatenate([picked, high, rest])[:self.pool_size]
        return np.asarray(cand, dtype=np.int64)[order]

    def _ifd(self, model, tokenizer, records):
        engine = scoring_engine(self.scorer)
        return engine.ifd_scores(model, tokenizer, records, template=self.train.template,
                                 max_length=self.train.max_length, progress=self.progress).ifd

    def run(self, model, tokenizer, records, run_dir, *, resume=False, on_round_end=None):
        """Score, then select and train for ``epochs`` epochs, saving state and a checkpoint
        after each (see :meth:`DiverseEvol.run <iterselect.methods.DiverseEvol.run>` for the
        parameters). Round 0 scores every record with the base model and forms the pool; round
        ``e`` selects and trains epoch ``e``. ``MethodRunResult.selected`` is the last epoch's
        selection."""
        from ..training import Finetuner

        records, base, tokenizer, run = open_run(self, model, tokenizer, records, run_dir, resume, "IterIT.run")
        responses = [response_text(r) for r in records]
        if run.rounds_done == 0:
            current = base.fresh()
            ifd = self._ifd(current, tokenizer, records)
            if self.pool == "paper":
                cand = self.candidates(ifd)
            else:  # the first epoch's greedy runs over every record with an IFD
                cand = np.flatnonzero(~np.isnan(ifd)).astype(np.int64)
            if not np.any(ifd[cand] < 1):
                where = (f"each of the {cand.size} records of highest IFD (a * M)" if self.pool == "paper"
                         else "every record")
                raise ValueError(f"IterIT: {where} has an IFD >= 1 or NaN under the base model, so "
                                 "Alg. 1 line 8 leaves no candidate; raise candidate_factor, or use "
                                 "pool='published' (IFD >= 1 dropped before the top a * M)")
            run.commit({"candidates": cand.size, "n_nan": int(np.isnan(ifd).sum()),
                        "n_high_ifd": int(np.sum(ifd[cand] >= 1)),
                        "objective": float(np.mean(ifd[cand])), "objective_name":
                        "mean IFD of the candidates", "diversity": None},
                       {"candidates": cand, "candidate_ifd": ifd[cand], "selected": [],
                        "model": None})
            if on_round_end:
                on_round_end(0, run.reports()[-1])
        else:
            saved = run.state["model"]
            current = base.fresh() if saved is None else base.load(saved)
        trainer = Finetuner(current, tokenizer, epochs=self.epochs, seed=self.seed,
                            progress=self.progress, func="IterIT.run",
                            total_steps=self._schedule_steps(), **self.train.finetune_kwargs())
        if run.state.get("model"):
            trainer.load_state_dict(_load_trainer_state(run.state["model"]))
        cand = np.asarray(run.state["candidates"], dtype=np.int64)
        for e in range(run.rounds_done, self.epochs + 1):
            if e == 1:
                ifd = np.array([np.nan if v is None else v for v in run.state["candidate_ifd"]])
            else:
                ifd = self._ifd(current, tokenizer, [records[i] for i in cand])
            picked = self.select_round([responses[i] for i in cand], ifd)
            chosen = cand[picked.indices]
            if chosen.size == 0:
                raise ValueError(f"IterIT: epoch {e}: every candidate has an IFD >= 1 or NaN "
                                 "under the current model; nothing left to train on")
            fit = trainer.train_epoch([records[i] for i in chosen])
            path = run.save_model(current, tokenizer, e)
            _save_trainer_state(trainer, path)
            report = {"selected_size": chosen.size, "n_dropped": picked.n_dropped,
                      "n_high_ifd": picked.n_dropped_high_ifd,
                      "objective": float(np.mean(ifd[picked.indices])),
                      "objective_name": "mean IFD of the selection",
                      "diversity": float(np.sum(picked.gains)),
                      "diversity_name": "coverage gain (IFD x TF-IDF, decayed)",
                      "train": fit.recipe, "train_loss": fit.train_loss}
            if self.pool == "published":
                cand, ifd = self.published_pool(cand, ifd, picked.indices), None
            run.commit(report, {"candidates": cand, "candidate_ifd": ifd, "selected": chosen,
                                "model": str(path)})
            if on_round_end:
                on_round_end(e, run.reports()[-1])
        return MethodRunResult(np.asarray(run.state["selected"], dtype=np.int64),
                               tuple(run.reports()), run.path, run.state["model"])


def _save_trainer_state(trainer, checkpoint) -> None:
    """The optimizer and schedule beside the epoch's checkpoint (written before the state file
    commits the epoch, so a commit never points at a checkpoint without them)."""
    import torch

    torch.save(trainer.state_dict(), f"{checkpoint}/{TRAINER_STATE}")


def _load_trainer_state(checkpoint) -> dict:
    import torch

    return torch.load(f"{checkpoint}/{TRAINER_STATE}", weights_only=False)
