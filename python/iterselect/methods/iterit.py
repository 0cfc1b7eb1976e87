"""IterIT (Jia et al., 2024, "Boosting LLM via Learning from Data Iteratively and
Selectively")."""
from __future__ import annotations

import numpy as np

from .._validation import check_float, check_int
from ._method_run import MethodRunResult, TrainConfig, finetune_on, open_run, scoring_engine
from .baselines import ifd_topk, response_text


class IterIT:
    """IterIT: re-score difficulty with the model being trained, select for difficulty and
    diversity every epoch.

    Algorithm (the paper, followed here). Round 0: the IFD of every record under the base model;
    the ``a * M`` records of highest IFD below 1 are the candidates (NaN and IFD >= 1, which
    the instruction does not help, are dropped first and counted, as IFD selection does). Each
    epoch ``e = 1..epochs``: recompute the candidates' IFD with the current model (epoch 1 uses
    round 0's scores, computed with the same model); drop IFD >= 1 and NaN; pick ``M`` by
    weighted coverage greedy over the responses' TF-IDF 1-3-grams with the IFD as weights and
    decay ``b`` (:func:`iterselect.coverage.iterit_select`); train one epoch on them, continuing
    the same model. The model is checkpointed after every epoch, so a resumed run continues from
    the saved weights.

    The published code was not re-read for this implementation (written without network access),
    so no difference from it is claimed; its TF-IDF convention (idf over the candidates) is the
    one :func:`~iterselect.coverage.iterit_select` uses.

    Parameters
    ----------
    budget : int
        ``M``, records trained on per epoch.
    epochs : int
    candidate_factor : float, default=3
        ``a``: candidates kept after round 0 are ``a * M``.
    decay : float in [0, 1], default=0.1
        ``b``.
    seed : int, default=0
        Seeds the training; the same seed gives the same selection.
    train : TrainConfig, optional
        ``train.epochs`` is ignored (one epoch per round).
    scorer : object, optional
        Where scoring and embedding run: anything with the functions of
        :mod:`iterselect.scoring` it calls, e.g. :class:`iterselect.distributed.RayScorer` (a Ray
        actor pool); None: in this process. Training always runs here.
    progress : bool, default=True

    Examples
    --------
    >>> it = IterIT(budget=2, epochs=1)
    >>> texts = ["Paris is the capital of France.", "The capital of France is Paris.",
    ...          "Water boils at 100 degrees.", "Yes."]
    >>> it.select_round(texts, [0.9, 0.8, 0.7, 1.3]).indices.tolist()
    [0, 2]
    """

    name = "iterit"

    def __init__(self, budget, epochs, *, candidate_factor=3.0, decay=0.1, seed=0, train=None,
                 scorer=None, progress=True):
        func = "IterIT"
        self.budget = check_int(budget, "budget", func, low=1)
        self.epochs = check_int(epochs, "epochs", func, low=1)
        self.candidate_factor = check_float(candidate_factor, "candidate_factor", func, low=1)
        self.decay = check_float(decay, "decay", func, low=0, high=1)
        self.seed = check_int(seed, "seed", func, low=0)
        self.train = (train or TrainConfig()).check(func)
        self.scorer = scorer
        self.progress = progress

    def config(self, n, model_ref):
        return {"budget": self.budget, "epochs": self.epochs,
                "candidate_factor": self.candidate_factor, "decay": self.decay,
                "seed": self.seed, "train": self.train.as_dict(), "n_records": n,
                "model": model_ref}

    def select_round(self, responses, ifd):
        """One epoch's selection: coverage greedy of ``budget`` responses weighted by ``ifd``
        (IFD >= 1 and NaN dropped; fewer than ``budget`` when fewer remain).

        Returns the :class:`~iterselect.coverage.IterITResult` (indices into ``responses``).
        """
        from ..coverage import iterit_select

        return iterit_select(list(responses), min(self.budget, len(responses)), ifd,
                             decay=self.decay, allow_fewer=True, progress=self.progress)

    def candidates(self, ifd) -> np.ndarray:
        """The ``a * M`` records of highest IFD below 1 (NaN dropped), best first."""
        n_cand = min(int(round(self.candidate_factor * self.budget)), len(ifd))
        return ifd_topk(ifd, n_cand, drop_above_one=True, allow_fewer=True).indices

    def _ifd(self, model, tokenizer, records):
        engine = scoring_engine(self.scorer)
        return engine.ifd_scores(model, tokenizer, records, template=self.train.template,
                                 max_length=self.train.max_length, progress=self.progress).ifd

    def run(self, model, tokenizer, records, run_dir, *, resume=False, on_round_end=None):
        """Score, then select and train for ``epochs`` epochs, saving state and a checkpoint
        after each (see :meth:`DiverseEvol.run <iterselect.methods.DiverseEvol.run>` for the
        parameters). ``MethodRunResult.selected`` is the last epoch's selection."""
        records, base, tokenizer, run = open_run(self, model, tokenizer, records, run_dir, resume, "IterIT.run")
        responses = [response_text(r) for r in records]
        if run.rounds_done == 0:
            current = base.fresh()
            ifd = self._ifd(current, tokenizer, records)
            cand = self.candidates(ifd)
            if cand.size == 0:
                raise ValueError("IterIT: every record has an IFD >= 1 or NaN under the base "
                                 "model; there are no candidates")
            run.commit({"candidates": cand.size, "n_nan": int(np.isnan(ifd).sum()),
                        "objective": float(np.nanmean(ifd[cand])), "objective_name":
                        "mean IFD of the candidates", "diversity": None},
                       {"candidates": cand, "candidate_ifd": ifd[cand], "selected": [],
                        "model": None})
            if on_round_end:
                on_round_end(0, run.reports()[-1])
        else:
            saved = run.state["model"]
            current = base.fresh() if saved is None else base.load(saved)
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
            fit = finetune_on(current, tokenizer, [records[i] for i in chosen], self.train,
                              epochs=1, seed=self.seed + e, progress=self.progress)
            path = run.save_model(current, tokenizer, e)
            report = {"selected_size": chosen.size, "n_dropped": picked.n_dropped,
                      "objective": float(np.mean(ifd[picked.indices])),
                      "objective_name": "mean IFD of the selection",
                      "diversity": float(np.sum(picked.gains)),
                      "diversity_name": "coverage gain (IFD x TF-IDF, decayed)",
                      "train_loss": fit.train_loss}
            run.commit(report, {"candidates": cand, "candidate_ifd": ifd, "selected": chosen,
                                "model": str(path)})
            if on_round_end:
                on_round_end(e, run.reports()[-1])
        return MethodRunResult(np.asarray(run.state["selected"], dtype=np.int64), tuple(run.reports()),
                         run.path, run.state["model"])
