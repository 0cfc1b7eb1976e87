"""Iterative kMQ (Yu et al., 2024, "Diversify and Conquer: Diversity-Centric Data Selection with
Iterative Refinement", §2.2, Alg. 1, Appendix A and C)."""
from __future__ import annotations

import hashlib

import numpy as np

from .._arrays import as_matrix, host_vector
from .._validation import check_choice, check_float_vector, check_int, param_error
from ..runs import RunDirectory
from ..training.recipe import TrainConfig
from ._method_run import BaseModel, MethodRunResult, check_records, finetune_on, scoring_engine
from .cluster_baselines import KMEANS_SEED, cluster_embeddings

SCORERS = ("perplexity", "reward")
PERPLEXITY_OF = ("sequence", "response")
REWARD_TEMPLATES = ("chat", "published")


class IterativeKMQ:
    """Iterative kMQ: k-means clusters, quality-weighted draws, cluster weights refined every
    iteration by how the model being trained does on each cluster.

    Alg. 1 of the paper, as run here (``it = 1..N``)::

        D' = {};  w^0 = (1/k, ..., 1/k)
        for it = 1..N:
            D' = D' + pick b/N from D \\ D' with w^(it-1)    # line 5: kmq_sample, Eq. 3
            F_it = Finetune(F, D')                          # line 6: the base model, all of D'
            (x_i, y_gen, y_gold) = Inference(F_it, D')      # line 7: generate for all of D'
            s = cluster means of S(x_i, y_gen, y_gold)      # line 8: Eq. 4 / Eq. 7, Eq. 5
            w^it = Eq. 6                                    # line 9
        return D', F_N                                      # line 11: the N-th model is saved

    Without quality scores the draws inside a cluster are uniform: that is the paper's
    **kM-Random** (§3.3), and the run is named so (``variant``, every report, the command
    line's log and plot); with ``quality`` it is kMQ.

    ====================  ===========================  ============================  ==========================
    step                  paper                        published code                here
    ====================  ===========================  ============================  ==========================
    clusters              k-means, seed 42 (App. A);   faiss k-means, niter 300,     ``n_clusters`` (int or
                          k by silhouette (§4.3)       nredo 5; K = 512              "auto": silhouette,
                                                                                     :func:`choose_k`), seed 42
    first draw            kMQ, budgets by cluster      ``b / N / K`` per cluster,    kMQ (``allocation``,
                          size (§2.1)                  uniform                       ``within`` as options)
    later draws           b/N with weights w (l. 5)    ``int(N_data * portion / K    b/N, budgets prop. to
                                                       / rounds)`` cluster ids       size x w;
                                                       drawn from Multinomial(p)     ``allocation=
                                                                                     "multinomial"``: the
                                                                                     code's draw of b/N ids
    Eq. 3 replacement     "with replacement"           without                       without (a subset,
                                                                                     ``|D'| = b``);
                                                                                     ``replace=True``
    fine-tune (l. 6)      the base model F on D',      continues from the previous   base model
                          3 epochs, lr 1e-5, 1,000     iteration's checkpoint, lr    (``train_from="base"``);
                          warm-up steps, batch 64      2e-5, warm-up ratio 0.03,     "previous" as an option;
                                                       linear                        ``PAPER_RECIPE``
    inference (l. 7)      all of D'                    all of D' (greedy, 512 new    all of D', greedy,
                                                       tokens)                       ``max_new_tokens=512``
    score, reward         Eq. 4, r(x+gold) -           "###Human: x ###Assistant:    Eq. 4 in the reward
                          r(x+gen)                     y" prompt for its RM          model's own chat
                                                                                     template;
                                                                                     ``reward_template=
                                                                                     "published"``
    score, perplexity     Eq. 7, -log(PPL(x+gen) /     PPL of x+gold only, no        Eq. 7 on the whole
                          PPL(x+gold)), the whole      generation                    text; ``perplexity_of=
                          text                                                       "response"``: the
                                                                                     response given x
    weights (l. 8-9)      Eq. 5-6, s_j / sum s_c x     softmax of the cluster        Eq. 6 on exp(s_j)
                          w_prev (undefined for        means, previous weights       (``weight_rule="exp"``);
                          negative s)                  dropped                       "published", "shift",
                                                                                     "ratio" as options
    return (l. 11)        D' and F_N                   --                            ``selected`` and the
                                                                                     N-th model's checkpoint
    ====================  ===========================  ============================  ==========================

    Parameters
    ----------
    budget : int
        ``b``, samples selected over all iterations.
    iterations : int, default=3
        ``N`` (§4.2: "we arbitrarily selected an iteration value of 3"); each draws ``b // N``
        (the first also the remainder).
    n_clusters : int or "auto", default="auto"
        k of k-means; "auto" picks it by the silhouette among ``cluster_candidates`` (powers of
        two up to ``N / 4`` by default).
    cluster_candidates : sequence of int, optional
    kmeans_seed : int, default=42
        Appendix A, Table 4.
    allocation : {"proportional", "equal", "multinomial"}, default="proportional"
    within : {"multinomial", "softmax", "uniform"}, default="multinomial"
        How quality weighs draws inside a cluster (:func:`~iterselect.cluster.kmq_sample`);
        ignored without quality (kM-Random: uniform).
    replace : bool, default=False
        Eq. 3 with replacement (see :func:`~iterselect.cluster.kmq_sample`).
    weight_rule : {"exp", "published", "shift", "ratio"}, default="exp"
        Eq. 5-6 (:func:`~iterselect.cluster.cluster_weights_update`).
    perplexity_of : {"sequence", "response"}, default="sequence"
        Without a reward model: Eq. 7 on the whole ``x + y`` text, or on the response given x.
    reward_template : {"chat", "published"}, default="chat"
        With a reward model: its own chat template (Alpaca when it has none), or the published
        code's ``"###Human: {x} ###Assistant: {y}"``.
    train_from : {"base", "previous"}, default="base"
        Alg. 1 line 6 fine-tunes the base model every iteration; "previous" continues the last
        iteration's model (the published scripts' ``--resume_from_checkpoint``).
    max_new_tokens : int, default=512
    seed : int, default=0
        Seeds the draws (``seed + it``) and the fine-tuning.
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
    >>> km = IterativeKMQ(budget=4, iterations=2, n_clusters=2)
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2))] + np.arange(10)[:, None] * 1e-3
    >>> labels = km.cluster(X)
    >>> r = km.select_round(labels, 2, np.ones(2))
    >>> sorted(labels[r.indices].tolist()), km.variant(None), km.variant(np.ones(10))
    ([0, 1], 'kM-Random', 'kMQ')
    """

    name = "iterative_kmq"
    #: Appendix A and §3.1: 3 epochs, AdamW, lr 1e-5, 1,000 warm-up steps, effective batch 64
    #: (the schedule after the warm-up is not stated; the published scripts use linear).
    PAPER_RECIPE = TrainConfig(epochs=3, lr=1e-5, batch_size=64, warmup_steps=1000,
                               scheduler="linear")
    RECIPE_SOURCE = ("Appendix A and §3.1; the paper gives no schedule after the warm-up, so it is the "
                     "published scripts' linear one")
    #: The published scripts: lr 2e-5, warm-up ratio 0.03, linear, batch 64, 3 epochs.
    PUBLISHED_RECIPE = TrainConfig(epochs=3, lr=2e-5, batch_size=64, warmup_ratio=0.03,
                                   scheduler="linear")

    def __init__(self, budget, iterations=3, n_clusters="auto", *, cluster_candidates=None,
                 kmeans_seed=KMEANS_SEED, allocation="proportional", within="multinomial",
                 replace=False, weight_rule="exp", perplexity_of="sequence",
                 reward_template="chat", train_from="base", max_new_tokens=512, seed=0,
                 train=None, scorer=None, progress=True):
        from ..cluster._weights import WEIGHT_RULES
        from ..cluster._kmq import ALLOCATIONS

        func = "IterativeKMQ"
        self.budget = check_int(budget, "budget", func, low=1)
        self.iterations = check_int(iterations, "iterations", func, low=1, high=self.budget)
        if isinstance(n_clusters, str):
            self.n_clusters = check_choice(n_clusters, "n_clusters", func, ("auto",))
        else:
            self.n_clusters = check_int(n_clusters, "n_clusters", func, low=1)
        self.cluster_candidates = None if cluster_candidates is None else [
            check_int(c, "cluster_candidates", func, low=2) for c in cluster_candidates]
        self.kmeans_seed = check_int(kmeans_seed, "kmeans_seed", func, low=0)
        self.allocation = check_choice(allocation, "allocation", func, ALLOCATIONS)
        self.within = check_choice(within, "within", func, ("multinomial", "softmax", "uniform"))
        self.replace = check_choice(replace, "replace", func, (True, False))
        self.weight_rule = check_choice(weight_rule, "weight_rule", func, WEIGHT_RULES)
        self.perplexity_of = check_choice(perplexity_of, "perplexity_of", func, PERPLEXITY_OF)
        self.reward_template = check_choice(reward_template, "reward_template", func,
                                            REWARD_TEMPLATES)
        self.train_from = check_choice(train_from, "train_from", func, ("base", "previous"))
        self.max_new_tokens = check_int(max_new_tokens, "max_new_tokens", func, low=1)
        self.seed = check_int(seed, "seed", func, low=0)
        self.train = (train or self.PAPER_RECIPE).check(func)
        self.scorer = scorer
        self.progress = progress
        self.silhouettes = None  # silhouette by k when n_clusters="auto" chose k

    # -- naming and configuration -----------------------------------------------------------
    @staticmethod
    def variant(quality) -> str:
        """"kMQ" with quality scores, "kM-Random" without (the paper's names, §3.3)."""
        return "kM-Random" if quality is None else "kMQ"

    def config(self, n, model_ref, reward_ref, quality):
        digest = None if quality is None else hashlib.sha256(
            np.ascontiguousarray(quality, dtype=np.float64).tobytes()).hexdigest()[:16]
        return {"variant": self.variant(quality), "budget": self.budget,
                "iterations": self.iterations, "n_clusters": self.n_clusters,
                "cluster_candidates": self.cluster_candidates, "kmeans_seed": self.kmeans_seed,
                "allocation": self.allocation, "within": self.within, "replace": self.replace,
                "weight_rule": self.weight_rule, "perplexity_of": self.perplexity_of,
                "reward_template": self.reward_template, "train_from": self.train_from,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed,
                "train": self.train.as_dict(), "n_records": n, "model": model_ref,
                "reward_model": reward_ref, "quality_sha256": digest}

    def draw_size(self, round_index: int) -> int:
        per = self.budget // self.iterations
        return per + (self.budget - per * self.iterations if round_index == 0 else 0)

    # -- the selection steps ----------------------------------------------------------------
    def cluster(self, embeddings, n_clusters=None) -> np.ndarray:
        """k-means labels of the embeddings (``kmeans_seed``; ``n_clusters`` overrides)."""
        k = self.n_clusters if n_clusters is None else n_clusters
        km, self.silhouettes = cluster_embeddings(embeddings, k, seed=self.kmeans_seed,
                                                  candidates=self.cluster_candidates,
                                                  progress=self.progress,
                                                  func="IterativeKMQ.cluster")
        return np.asarray(host_vector(km.labels, "labels", "IterativeKMQ.cluster", kind="ints"),
                          dtype=np.int64)

    def select_round(self, labels, size, weights, *, quality=None, selected=None, round_index=0):
        """Alg. 1 line 5, "D' = D' U Pick b_it from D \\ D' with w^(it-1)": draw ``size``
        samples not in ``selected`` with :func:`~iterselect.cluster.kmq_sample` under cluster
        ``weights``, "a budget proportional to its size ... and draw samples within each cluster
        based on the probability weighted by the quality score" (§2.1, Eq. 3); uniform inside a
        cluster when ``quality`` is None (kM-Random). Returns the
        :class:`~iterselect.cluster.KMQSampleResult`."""
        from ..cluster import kmq_sample

        pool = None if selected is None else np.unique(np.asarray(selected, dtype=np.int64))
        return kmq_sample(labels, size, quality=quality, cluster_weights=weights,
                          selected=pool, allocation=self.allocation,
                          within=self.within if quality is not None else "uniform",
                          replace=self.replace, seed=self.seed + round_index)

    # -- the model steps (override to use another trainer; tests record them) ---------------
    def train_step(self, model, tokenizer, records, round_index):
        """Alg. 1 line 6, "F^n = Finetune(F, D')": fine-tune ``model`` (a fresh copy of the base
        F, or with ``train_from="previous"`` the last iteration's model) on ``records``, all of
        D', with the recipe ``train``. Returns the :class:`FinetuneResult`."""
        return finetune_on(model, tokenizer, records, self.train, seed=self.seed + round_index,
                           progress=self.progress)

    def generate_step(self, model, tokenizer, records):
        """Alg. 1 line 7, "{(x_i, y_gen, y_gold)}_n = Inference(F^i, D')": the trained model's
        answer to every record's prompt (greedy), "given the prompt x_i ... we generate a new
        completion" (§2.2, step 2)."""
        generate = scoring_engine(self.scorer).generate
        return list(generate(model, tokenizer, records, max_new_tokens=self.max_new_tokens,
                             template=self.train.template, progress=self.progress).texts)

    def score_step(self, model, tokenizer, records, generated, reward=None):
        """Eq. 4, "S(x_i, y_gen, y_gold) = score(x_i + y_gold) - score(x_i + y_gen)", for every
        record; with perplexity, Eq. 7 (Appendix C), "S = -log(PPL(x_i + y_gen) /
        PPL(x_i + y_gold))".

        With ``reward = (reward_model, reward_tokenizer)``: reward-model scores. Without: log
        perplexities under ``model`` (Eq. 7: ``-log(PPL(x+gen) / PPL(x+gold)) = log
        PPL(x+gold) - log PPL(x+gen)``), of the whole text (``perplexity_of="sequence"``) or of
        the response given x. An empty generated answer cannot be scored: NaN (counted in the
        round's report).
        """
        from ..scoring import format_examples, with_response

        engine = scoring_engine(self.scorer)
        perplexity, reward_scores = engine.perplexity, engine.reward_scores

        scores = np.full(len(records), np.nan)
        ok = np.array([bool(g.strip()) for g in generated])
        if not ok.any():
            return scores
        gold = [r for r, k in zip(records, ok) if k]
        mine = [with_response(r, g) for r, g, k in zip(records, generated, ok) if k]
        if reward is not None:
            rm, rtok = reward
            kw = dict(progress=self.progress, template=self._reward_template(rtok))
            scores[ok] = (reward_scores(rm, rtok, gold, **kw).scores
                          - reward_scores(rm, rtok, mine, **kw).scores)
            return scores
        kw = dict(max_length=self.train.max_length, progress=self.progress)
        if self.perplexity_of == "sequence":
            tpl = self.train.template
            gold_t = [ex.text for ex in format_examples(gold, tpl, tokenizer=tokenizer)]
            mine_t = [ex.text for ex in format_examples(mine, tpl, tokenizer=tokenizer)]
            scores[ok] = (perplexity(model, tokenizer, gold_t, **kw).loss
                          - perplexity(model, tokenizer, mine_t, **kw).loss)
        else:
            kw["template"] = self.train.template
            scores[ok] = (perplexity(model, tokenizer, gold, **kw).loss
                          - perplexity(model, tokenizer, mine, **kw).loss)
        return scores

    def _reward_template(self, reward_tokenizer):
        if self.reward_template == "published":
            return _published_reward_pair
        return "chat" if getattr(reward_tokenizer, "chat_template", None) else "alpaca"

    # -- the loop ---------------------------------------------------------------------------
    def run(self, model, tokenizer, records, embeddings, run_dir, *, quality=None,
            reward_model=None, reward_tokenizer=None, resume=False, on_round_end=None):
        """Alg. 1: cluster, then ``iterations`` times draw, fine-tune, generate, score and
        re-weight, saving the state after each; the last iteration's model is saved.

        Parameters
        ----------
        model : transformers causal LM or path
            The base model ``F``.
        tokenizer : its tokenizer, or None to load it from ``model``'s path
        records : list of records (Alpaca, ShareGPT/WizardLM conversations, pairs)
        embeddings : (N, d) array
            Fixed embeddings to cluster (the paper: embeddings of prompt and completion).
        run_dir : str or Path
        quality : (N,) array, optional
            Quality scores (kMQ); None runs kM-Random.
        reward_model, reward_tokenizer : optional
            The scorer of Eq. 4 (a sequence-classification model and its own tokenizer);
            without it, perplexities under the trained model (Eq. 7).
        resume : bool, default=False
        on_round_end : callable, optional
            ``on_round_end(round_index, report)`` after each iteration is saved.

        Returns
        -------
        MethodRunResult
            ``selected`` (D', in selection order), the reports, ``model_path`` (F_N) and
            ``variant``.
        """
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
        if quality is not None:
            qv = host_vector(quality, "quality", func, kind="floats")
            quality = check_float_vector(qv, "quality", func, n, nonnegative=False,
                                         what="one quality score per record")
            if self.within == "multinomial" and quality.min() < 0:
                bad = int(np.argmin(quality))
                raise param_error(func, "quality", "non-negative for within='multinomial' "
                                  "(negative scores need within='softmax')",
                                  f"{quality[bad]:.6g} at position {bad}")
        base = BaseModel(model, func)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base.path)
        reward = None
        if reward_model is not None:
            reward = (reward_model, reward_tokenizer or tokenizer)
        reward_ref = None if reward is None else (
            getattr(getattr(reward_model, "config", None), "_name_or_path", None)
            or type(reward_model).__name__)
        variant = self.variant(quality)
        run = RunDirectory(run_dir, method=self.name, resume=resume,
                           config=self.config(n, base.ref, reward_ref, quality))
        state = run.state or {}
        labels = self.cluster(embeddings, state.get("n_clusters"))
        k = int(labels.max()) + 1 if state.get("n_clusters") is None else int(state["n_clusters"])
        selected = np.asarray(state.get("selected", []), dtype=np.int64)
        weights = np.asarray(state.get("weights", np.full(k, 1.0 / k)), dtype=np.float64)
        previous = state.get("model")
        for it in range(run.rounds_done, self.iterations):
            draw = self.select_round(labels, self.draw_size(it), weights, quality=quality,
                                     selected=selected, round_index=it)
            selected = np.concatenate([selected, draw.indices])
            chosen = [records[j] for j in selected]
            trained = (base.load(previous) if self.train_from == "previous" and previous
                       else base.fresh())
            fit = self.train_step(trained, tokenizer, chosen, it)
            generated = self.generate_step(trained, tokenizer, chosen)
            scores = self.score_step(trained, tokenizer, chosen, generated, reward)
            scored = np.isfinite(scores)
            update = (cluster_weights_update(weights, labels[selected][scored], scores[scored],
                                             rule=self.weight_rule) if scored.any() else None)
            new_weights = weights if update is None else update.weights
            last = it == self.iterations - 1
            if last or self.train_from == "previous":
                previous = str(run.save_model(trained, tokenizer, it))
            report = {
                "variant": variant, "iteration": it + 1, "added": draw.indices,
                "selected_size": int(selected.size), "n_clusters": k,
                "cluster_budgets": draw.per_cluster, "weights_used": weights,
                "weights": new_weights, "cluster_scores": None if update is None
                else update.cluster_scores,
                "objective": float(np.mean(scores[scored])) if scored.any() else None,
                "objective_name": self._objective_name(reward is not None),
                "n_scored": int(scored.sum()), "n_unscored": int((~scored).sum()),
                "diversity": _cluster_entropy(labels, selected),
                "diversity_name": "cluster entropy (nats)",
                "train": fit.recipe, "train_loss": fit.train_loss,
                "silhouettes": self.silhouettes if it == 0 else None,
                "model_path": previous if last else None}
            run.commit(report, {"selected": selected, "weights": new_weights, "n_clusters": k,
                                "model": previous})
            weights = new_weights
            if on_round_end:
                on_round_end(it, run.reports()[-1])
        return MethodRunResult(np.asarray(run.state["selected"], dtype=np.int64),
                               tuple(run.reports()), run.path, run.state.get("model"),
                               variant=variant)

    def _objective_name(self, with_reward):
        if with_reward:
            return "mean S (Eq. 4, reward)"
        if self.perplexity_of == "sequence":
            return "mean S (Eq. 7, perplexity)"
        return "mean S (response perplexity)"


def _published_reward_pair(record):
    """The published code's reward-model input: ``###Human: {x} ###Assistant: {y}``, where x
    is the prompt's text (instruction and input; a conversation's user turns) and y the
    answer."""
    from ..scoring.formatting import record_text

    if isinstance(record, (tuple, list)):
        prompt, response = record
    else:
        prompt, response = record_text(record, "prompt"), record_text(record, "response")
    return (f"###Human: {prompt.strip()} ###Assistant: ", response.strip())


def _cluster_entropy(labels, indices) -> float:
    counts = np.bincount(labels[np.asarray(indices, dtype=np.int64)])
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
