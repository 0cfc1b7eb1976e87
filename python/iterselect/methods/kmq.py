"""kMQ and iterative kMQ (Yu et al., 2024, "Diversify and Conquer: Diversity-Centric Data
Selection with Iterative Refinement")."""
from __future__ import annotations

import numpy as np

from .._arrays import as_matrix
from .._validation import check_choice, check_int, param_error
from ..runs import RunDirectory
from ._method_run import (BaseModel, MethodRunResult, TrainConfig, check_records, finetune_on,
                          scoring_engine)


class IterativeKMQ:
    """Iterative kMQ: k-means clusters, quality-weighted sampling, cluster weights refined by how
    the model being trained does on each cluster.

    Algorithm (the paper's Alg. 1, followed here). Cluster the embeddings with k-means
    (``n_clusters``, ``seed``); all cluster weights start at 1. Round 0 draws ``budget / N``
    samples with :func:`iterselect.cluster.kmq_sample` (cluster budgets proportional to
    size x weight, quality-proportional draws inside a cluster). Each later round ``i``:
    fine-tune the base model on everything selected so far; generate an answer for each sample
    drawn in round ``i - 1``; score the gold answer against the generated one -- with a reward
    model, ``s = r(x, y_gold) - r(x, y_gen)`` (Eq. 4), or without one, ``s = log PPL(y_gold | x)
    - log PPL(y_gen | x)`` under the trained model (the perplexity variant, Eq. 7, as read
    here; an empty generated answer is left unscored and counted); update the cluster weights (Eq. 5-6, :func:`iterselect.cluster.cluster_weights_update`)
    and draw ``budget / N`` more from the unselected. With ``iterations=1`` it is plain kMQ.

    The published code's variants (equal cluster budgets, softmax draws) are options of
    :func:`~iterselect.cluster.kmq_sample`: ``allocation="equal"``, ``within="softmax"``. Every
    round trains from the base weights, so resuming needs no checkpoint.

    Parameters
    ----------
    budget : int
        Total samples selected over all iterations.
    iterations : int
        ``N``; each draws ``budget // N`` (the first draws the remainder too).
    n_clusters : int
    allocation, within : str
        Passed to :func:`~iterselect.cluster.kmq_sample`.
    max_new_tokens : int, default=64
        Length of the generated answers.
    seed : int, default=0
    train : TrainConfig, optional
    scorer : object, optional
        Where scoring and embedding run: anything with the functions of
        :mod:`iterselect.scoring` it calls, e.g. :class:`iterselect.distributed.RayScorer` (a Ray
        actor pool); None: in this process. Training always runs here.
    progress : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> km = IterativeKMQ(budget=4, iterations=2, n_clusters=2)
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2))] + np.arange(10)[:, None] * 1e-3
    >>> labels = km.cluster(X)
    >>> r = km.select_round(labels, 2, np.ones(2))
    >>> sorted(labels[r.indices].tolist())
    [0, 1]
    """

    name = "iterative_kmq"

    def __init__(self, budget, iterations, n_clusters, *, allocation="proportional",
                 within="multinomial", max_new_tokens=64, seed=0, train=None, scorer=None,
                 progress=True):
        func = "IterativeKMQ"
        self.budget = check_int(budget, "budget", func, low=1)
        self.iterations = check_int(iterations, "iterations", func, low=1, high=self.budget)
        self.n_clusters = check_int(n_clusters, "n_clusters", func, low=1)
        self.allocation = check_choice(allocation, "allocation", func, ("proportional", "equal"))
        self.within = check_choice(within, "within", func, ("multinomial", "softmax", "uniform"))
        self.max_new_tokens = check_int(max_new_tokens, "max_new_tokens", func, low=1)
        self.seed = check_int(seed, "seed", func, low=0)
        self.train = (train or TrainConfig()).check(func)
        self.scorer = scorer
        self.progress = progress

    def config(self, n, model_ref, reward_ref):
        return {"budget": self.budget, "iterations": self.iterations,
                "n_clusters": self.n_clusters, "allocation": self.allocation,
                "within": self.within, "max_new_tokens": self.max_new_tokens, "seed": self.seed,
                "train": self.train.as_dict(), "n_records": n, "model": model_ref,
                "reward_model": reward_ref}

    def draw_size(self, round_index: int) -> int:
        per = self.budget // self.iterations
        return per + (self.budget - per * self.iterations if round_index == 0 else 0)

    def cluster(self, embeddings) -> np.ndarray:
        """k-means labels of the embeddings (``n_clusters``, ``seed``)."""
        from ..cluster import kmeans

        return np.asarray(kmeans(embeddings, self.n_clusters, seed=self.seed).labels,
                          dtype=np.int64)

    def select_round(self, labels, size, weights, *, quality=None, selected=None, round_index=0):
        """Draw ``size`` samples not in ``selected`` with :func:`~iterselect.cluster.kmq_sample`
        under cluster ``weights`` (uniform inside a cluster when ``quality`` is None); returns
        its :class:`~iterselect.cluster.KMQSampleResult`."""
        from ..cluster import kmq_sample

        return kmq_sample(labels, size, quality=quality, cluster_weights=weights,
                          selected=selected, allocation=self.allocation,
                          within=self.within if quality is not None else "uniform",
                          seed=self.seed + round_index)

    def _scores(self, model, tokenizer, records, reward):
        from ..scoring import format_examples

        engine = scoring_engine(self.scorer)
        generate, perplexity, reward_scores = (engine.generate, engine.perplexity,
                                               engine.reward_scores)
        examples = format_examples(records, self.train.template, tokenizer=tokenizer)
        gen = generate(model, tokenizer, records, max_new_tokens=self.max_new_tokens,
                       template=self.train.template, progress=self.progress).texts
        ok = np.array([bool(g.strip()) for g in gen])  # an empty answer cannot be scored
        scores = np.full(len(records), np.nan)
        if not ok.any():
            return scores
        gold = [(ex.prompt, ex.response) for ex, k in zip(examples, ok) if k]
        mine = [(ex.prompt, g) for ex, g, k in zip(examples, gen, ok) if k]
        if reward is not None:
            rm, rtok = reward
            scores[ok] = (reward_scores(rm, rtok, gold, progress=self.progress).scores
                          - reward_scores(rm, rtok, mine, progress=self.progress).scores)
        else:
            kw = dict(max_length=self.train.max_length, progress=self.progress)
            scores[ok] = (perplexity(model, tokenizer, gold, **kw).loss
                          - perplexity(model, tokenizer, mine, **kw).loss)
        return scores

    def run(self, model, tokenizer, records, embeddings, run_dir, *, quality=None,
            reward_model=None, reward_tokenizer=None, resume=False, on_round_end=None):
        """Cluster, then draw, train, generate, score and re-weight for ``iterations`` rounds,
        saving the state after each. ``embeddings`` are fixed (e.g. MiniLM); ``quality`` is an
        optional per-record quality (uniform draws inside a cluster when None); with
        ``reward_model`` the scores are reward differences, else perplexity differences."""
        from ..cluster import cluster_weights_update
        from ..scoring import load_tokenizer

        func = "IterativeKMQ.run"
        records = check_records(records, func)
        n = len(records)
        m = as_matrix(embeddings, "embeddings", func)
        if m.shape[0] != n:
            raise param_error(func, "embeddings", f"an array with one row per record ({n})",
                              f"{m.shape[0]} rows")
        if self.budget > n:
            raise param_error(func, "budget", f"at most the number of records ({n})", self.budget)
        base = BaseModel(model, func)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base.path)
        reward = None
        if reward_model is not None:
            reward = (reward_model, reward_tokenizer or tokenizer)
        run = RunDirectory(run_dir, method=self.name, resume=resume, config=self.config(
            n, base.ref, None if reward is None else type(reward_model).__name__))
        labels = self.cluster(embeddings)
        if run.rounds_done == 0:
            weights = np.ones(self.n_clusters)
            draw = self.select_round(labels, self.draw_size(0), weights, quality=quality)
            run.commit({"added": draw.indices, "selected_size": draw.indices.size,
                        "objective": None, "diversity": _cluster_entropy(labels, draw.indices),
                        "diversity_name": "cluster entropy of the selection (nats)"},
                       {"selected": draw.indices, "last": draw.indices, "weights": weights})
            if on_round_end:
                on_round_end(0, run.reports()[-1])
        for i in range(run.rounds_done, self.iterations):
            selected = np.asarray(run.state["selected"], dtype=np.int64)
            last = np.asarray(run.state["last"], dtype=np.int64)
            weights = np.asarray(run.state["weights"], dtype=np.float64)
            trained = base.fresh()
            fit = finetune_on(trained, tokenizer, [records[j] for j in selected], self.train,
                              seed=self.seed + i, progress=self.progress)
            scores = self._scores(trained, tokenizer, [records[j] for j in last], reward)
            scored = np.isfinite(scores)
            new_weights = (cluster_weights_update(weights, labels[last][scored],
                                                  scores[scored]).weights
                           if scored.any() else weights)
            draw = self.select_round(labels, self.draw_size(i), new_weights,
                                     quality=quality, selected=selected, round_index=i)
            grown = np.concatenate([selected, draw.indices])
            run.commit({"added": draw.indices, "selected_size": grown.size,
                        "objective": float(np.mean(scores[scored])) if scored.any() else None,
                        "n_unscored": int((~scored).sum()),
                        "objective_name": "mean score (gold vs generated)",
                        "diversity": _cluster_entropy(labels, grown),
                        "diversity_name": "cluster entropy of the selection (nats)",
                        "weights": new_weights, "train_loss": fit.train_loss},
                       {"selected": grown, "last": draw.indices, "weights": new_weights})
            if on_round_end:
                on_round_end(i, run.reports()[-1])
        return MethodRunResult(np.asarray(run.state["selected"], dtype=np.int64), tuple(run.reports()),
                         run.path)


def _cluster_entropy(labels, indices) -> float:
    counts = np.bincount(labels[np.asarray(indices, dtype=np.int64)])
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
