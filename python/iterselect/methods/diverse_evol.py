"""DiverseEvol (Wu et al., 2023, "Self-Evolved Diverse Data Sampling for Efficient Instruction
Tuning", §3, Alg. 1, §4.1)."""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_indices, check_int
from ..training.recipe import TrainConfig
from ._method_run import MethodRunResult, finetune_on, open_run, scoring_engine

STRATEGIES = ("kcenter", "random", "least-confidence", "margin")
EMBEDDING_TEXTS = ("alpaca", "published", "plain")

# The published code's training prompt (its consts.PROMPT_DICT): Alpaca's, without the newline
# after "### Response:"; the response and the EOS token follow it directly.
_PUBLISHED_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:")
_PUBLISHED_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:")


class DiverseEvol:
    """DiverseEvol: the model picks the data most different from what it was trained on.

    Alg. 1 of the paper, as run here::

        P_0 = k records drawn at random
        for t = 0..T-1:
            M_t = Finetune(M_pretrain, P_t)                   # the base model every round
            embed every record with M_t: last hidden states, mean-pooled over all tokens of
                its Alpaca-formatted text (§3.2)
            S_t = k picks of argmax_{i in Q} min_{j in P} ||s_i - p_j||  (Eq. 2, k-center
                greedy warm-started from P_t)
            P_{t+1} = P_t + S_t
        M_T = Finetune(M_pretrain, P_T)                       # the output series ends with M_T

    Each round reports the Vendi score (cosine kernel) of the grown pool and of the whole
    dataset, both in that round's embedding space (the paper's Fig. 3 compares the two), with
    the covering radius as the objective. ``strategy`` swaps the selection for the paper's
    baselines (§4.1): ``"random"``, ``"least-confidence"``, ``"margin"``
    (:mod:`iterselect.methods.uncertainty`), run in the same loop.

    ====================  ============================  =============================  ========================
    step                  paper                         published code                 here
    ====================  ============================  =============================  ========================
    P_0, k, T             100 random, k = 100, T = 10   ``init_label_num`` 100,        ``initial_size=100``,
                          (§4.1)                        ``n_query`` 100, ``n_round``   ``round_size=100``,
                                                        10                             ``rounds=10``
    training              3 epochs, batch 128, lr       the same, cosine schedule,     ``PAPER_RECIPE`` (the
                          2e-5; schedule not stated     warm-up ratio 0.03             code's schedule)
    embedding text        "Alpaca-style template"       Alpaca prompt ending           ``embedding_text=
                          (§4.1) of the sample          "### Response:" + output +     "alpaca"``; the code's
                                                        EOS text, tokenizer's BOS      string as "published";
                                                                                       "plain": no template
    pooling               "average pooling over all     mean of the last hidden        the same
                          token positions" (§3.2)       states over every token
    distance              Delta, Eq. 1-2                Euclidean, full N x N matrix   Euclidean (``metric``),
                                                                                       k-center kernel, no
                                                                                       N x N
    final model           M_T in the output series      trains round T's model         ``final_model=True``
    Vendi (Fig. 3)        of P_t and of the full data   of each round's pool, with     pool and full data, in
                                                        one fixed embedding model      the round's space
    ====================  ============================  =============================  ========================

    Parameters
    ----------
    initial_size : int, default=100
        ``|P_0|``, drawn uniformly at random (``seed``).
    round_size : int, default=100
        ``k``, records added per round.
    rounds : int, default=10
        ``T``.
    strategy : {"kcenter", "random", "least-confidence", "margin"}, default="kcenter"
    metric : {"euclidean", "cosine"}, default="euclidean"
        Distance of the k-center selection.
    embedding_text : {"alpaca", "published", "plain"}, default="alpaca"
        The text embedded for each record: the whole example in the Alpaca template (a
        conversation in Alpaca's multi-turn form); the published code's string (its prompt
        without the final newline, the output and the EOS text); or instruction, input and
        output without a template.
    final_model : bool, default=True
        Fine-tune M_T on the final pool and save it (``MethodRunResult.model_path``).
    seed : int, default=0
        Seeds P_0, the random strategy and the fine-tuning.
    train : TrainConfig, optional
        Default :attr:`PAPER_RECIPE`.
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
    #: §4.1: 3 epochs, batch 128, lr 2e-5; the schedule (cosine, warm-up ratio 0.03) is the
    #: published configuration's, as the paper does not state one.
    PAPER_RECIPE = TrainConfig(epochs=3, lr=2e-5, batch_size=128, warmup_ratio=0.03,
                               scheduler="cosine")
    RECIPE_SOURCE = ("§4.1; the paper gives no warm-up or schedule, so they are the published "
                     "configuration's (warm-up ratio 0.03, cosine)")

    def __init__(self, initial_size=100, round_size=100, rounds=10, *, strategy="kcenter",
                 metric="euclidean", embedding_text="alpaca", final_model=True, seed=0,
                 train=None, scorer=None, progress=True):
        func = "DiverseEvol"
        self.initial_size = check_int(initial_size, "initial_size", func, low=1)
        self.round_size = check_int(round_size, "round_size", func, low=1)
        self.rounds = check_int(rounds, "rounds", func, low=0)
        self.strategy = check_choice(strategy, "strategy", func, STRATEGIES)
        self.metric = check_choice(metric, "metric", func, ("euclidean", "cosine"))
        self.embedding_text = check_choice(embedding_text, "embedding_text", func, EMBEDDING_TEXTS)
        self.final_model = check_choice(final_model, "final_model", func, (True, False))
        self.seed = check_int(seed, "seed", func, low=0)
        self.train = (train or self.PAPER_RECIPE).check(func)
        self.scorer = scorer
        self.progress = progress

    def config(self, n: int, model_ref: str) -> dict:
        return {"initial_size": self.initial_size, "round_size": self.round_size,
                "rounds": self.rounds, "strategy": self.strategy, "metric": self.metric,
                "embedding_text": self.embedding_text, "final_model": self.final_model,
                "seed": self.seed, "train": self.train.as_dict(), "n_records": n,
                "model": model_ref}

    def initial_pool(self, n: int) -> np.ndarray:
        """``P_0``: ``initial_size`` of ``n`` indices drawn with ``seed``."""
        if self.initial_size + self.rounds * self.round_size > n:
            raise ValueError(
                f"DiverseEvol: initial_size + rounds * round_size "
                f"({self.initial_size} + {self.rounds} * {self.round_size}) is more than the "
                f"{n} records")
        rng = np.random.default_rng(self.seed)
        return rng.permutation(n)[:self.initial_size].astype(np.int64)

    def texts(self, records, tokenizer) -> list:
        """The text embedded for each record (see ``embedding_text``): "The Alpaca-style
        template (Taori et al., 2023) is adopted to prepare input from the instruction data"
        (§4.1), and Delta "is computed based on the output hidden states of M_t after average
        pooling over all token positions" (§3.2)."""
        from ..scoring.formatting import record_text

        if self.embedding_text == "plain":
            return [record_text(r, "embedding") for r in records]
        if self.embedding_text == "published":
            return [_published_text(r, tokenizer) for r in records]
        return [record_text(r, "example", template="alpaca") for r in records]

    def select_round(self, embeddings, selected):
        """Eq. 2, "argmax_{i in Q_t} min_{j in P_t} Delta(s_i, p_j)", repeated "until |S_t| = k"
        (Alg. 1): ``round_size`` k-center picks warm-started from ``selected``. Returns the
        :class:`~iterselect.kcenter.KCenterResult` (its ``min_distances`` not computed: None)."""
        from ..kcenter import kcenter_greedy

        n = int(embeddings.shape[0])
        selected = check_indices(selected, "selected", "DiverseEvol.select_round", n)
        return kcenter_greedy(embeddings, self.round_size, selected=selected, metric=self.metric,
                              progress=self.progress, min_distances=False)

    def _pick(self, t, model, tokenizer, records, pool, emb):
        """The round's new points and its objective (name, value)."""
        from .baselines import random_select
        from .uncertainty import least_confidence_select, margin_select

        if self.strategy == "kcenter":
            picked = self.select_round(emb, pool)
            return (np.asarray(picked.indices, dtype=np.int64), "covering radius",
                    float(np.asarray(picked.radii)[-1]))
        if self.strategy == "random":
            rest = np.setdiff1d(np.arange(len(records)), pool)
            draw = random_select(rest.size, self.round_size, seed=self.seed + t).indices
            return rest[draw], None, None
        pick = least_confidence_select if self.strategy == "least-confidence" else margin_select
        res = pick(records, self.round_size, model=model, tokenizer=tokenizer, selected=pool,
                   template=self.train.template, max_length=self.train.max_length,
                   progress=self.progress)
        name = ("mean max-logit of the picks" if self.strategy == "least-confidence"
                else "mean top-2 logit margin of the picks")
        return res.indices, name, float(np.mean(res.scores))

    def run(self, model, tokenizer, records, run_dir, *, resume=False, on_round_end=None):
        """Train, embed and select for ``rounds`` rounds, saving the state after each; then
        train the final model.

        Parameters
        ----------
        model : transformers causal LM or path
            The base model; every round fine-tunes a fresh copy of it.
        tokenizer : transformers tokenizer, or None to load it from ``model``'s path
        records : list of records (Alpaca, ShareGPT/WizardLM conversations, pairs)
        run_dir : str or Path
        resume : bool, default=False
            Continue a crashed run from its last completed round.
        on_round_end : callable, optional
            ``on_round_end(round_index, report)`` after each round is saved (an exception here
            stops the run with the round already saved).

        Returns
        -------
        MethodRunResult
            ``selected`` (P_T), the reports, ``model_path`` (M_T with ``final_model``).
        """
        from ..metrics import vendi_score

        embed = scoring_engine(self.scorer).embed

        records, base, tokenizer, run = open_run(self, model, tokenizer, records, run_dir,
                                                 resume, "DiverseEvol.run")
        n = len(records)
        texts = self.texts(records, tokenizer)
        if run.rounds_done == 0:
            pool = self.initial_pool(n)
            run.commit({"added": pool, "pool_size": pool.size, "objective": None,
                        "diversity": None}, {"selected": pool, "model": None})
            if on_round_end:
                on_round_end(0, run.reports()[-1])
        for t in range(run.rounds_done, self.rounds + 1):
            pool = np.asarray(run.state["selected"], dtype=np.int64)
            trained = base.fresh()
            fit = finetune_on(trained, tokenizer, [records[i] for i in pool], self.train,
                              seed=self.seed + t, progress=self.progress)
            emb = embed(trained, tokenizer, texts, pooling="mean", max_length=self.train.max_length,
                        progress=self.progress).embeddings.astype(np.float64)
            new, objective_name, objective = self._pick(t, trained, tokenizer, records, pool, emb)
            grown = np.concatenate([pool, new])
            report = {"strategy": self.strategy, "added": new, "pool_size": grown.size,
                      "objective": objective, "objective_name": objective_name,
                      "diversity": float(vendi_score(emb[grown]).score),
                      "diversity_name": "Vendi score of the pool (cosine, this round's model)",
                      "vendi_full": float(vendi_score(emb).score),
                      "train": fit.recipe, "train_loss": fit.train_loss}
            model_path = None
            if t == self.rounds and self.final_model:
                final = base.fresh()
                last_fit = finetune_on(final, tokenizer, [records[i] for i in grown], self.train,
                                       seed=self.seed + t + 1, progress=self.progress)
                model_path = str(run.save_model(final, tokenizer, t))
                report.update(final_train_loss=last_fit.train_loss, model_path=model_path)
            run.commit(report, {"selected": grown, "model": model_path})
            if on_round_end:
                on_round_end(t, run.reports()[-1])
        return MethodRunResult(np.asarray(run.state["selected"], dtype=np.int64),
                               tuple(run.reports()), run.path, run.state.get("model"))


def _published_text(record, tokenizer) -> str:
    """The published code's training string of an Alpaca record (prompt, output, EOS text)."""
    from ..scoring.formatting import record_text

    if not (isinstance(record, dict) and "instruction" in record):
        return record_text(record, "example", template="alpaca")
    inp = record.get("input") or ""
    prompt = (_PUBLISHED_PROMPT_INPUT if inp else _PUBLISHED_PROMPT).format(
        instruction=record["instruction"], input=inp)
    eos = getattr(tokenizer, "eos_token", None) or ""
    return f"{prompt}{record.get('output', '')}{eos}"


__all__ = ["DiverseEvol"]
