"""InsBank's run: the arrivals (or their batches) in order, a round each, the state saved after
each, resumed exactly."""
from __future__ import annotations

import numpy as np

from ..._validation import param_error
from ...exceptions import RunError
from ...runs import RunDirectory
from .._method_run import MethodRunResult
from ..baselines import instruction_text
from ._arrivals import read_arrival, split_batches
from ._persistence import arrays_path, restore_bank, save_arrays


def run_insbank(method, datasets, run_dir, *, quality_field="quality", resume=False,
                on_round_end=None) -> MethodRunResult:
    """:meth:`InsBank.run <iterselect.methods.InsBank.run>` (see there)."""
    func = "InsBank.run"
    if isinstance(datasets, (str, bytes, dict)) or not hasattr(datasets, "__len__"):
        raise param_error(func, "datasets", "a sequence of arrivals (lists of records or "
                          "dicts with 'records')", type(datasets).__name__, TypeError)
    if not isinstance(quality_field, str):
        raise param_error(func, "quality_field", "a str", quality_field, TypeError)
    arrivals = [read_arrival(item, t, quality_field, func) for t, item in enumerate(datasets)]
    if not arrivals:
        raise param_error(func, "datasets", "at least one arrival", 0)
    arrivals = split_batches(arrivals, method.batch_size)
    run = RunDirectory(run_dir, method=method.name, config=method.config(quality_field),
                       resume=resume)
    sizes = [len(a["records"]) for a in arrivals]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    done = run.rounds_done
    bank = history = None
    bank_ids = np.empty(0, dtype=np.int64)
    if done:
        state = run.state
        if done > len(arrivals):
            raise RunError(f"{run.path}: has done {done} rounds but only {len(arrivals)} "
                           "were given")
        for t in range(done):
            if state["fingerprints"][t] != arrivals[t]["fingerprint"]:
                raise RunError(f"{run.path}: arrival {t} differs from the one this run "
                               "processed (records or quality changed); resume with the same "
                               "data")
        bank, history, bank_ids = restore_bank(run)
    for t in range(done, len(arrivals)):
        a = arrivals[t]
        emb = a["embeddings"]
        if emb is None:
            from ...datasets import minilm_embeddings

            emb = minilm_embeddings([instruction_text(r) for r in a["records"]],
                                    progress=method.progress)
        try:
            res = method.select_round(emb, a["quality"], bank=bank,
                                    bank_history=history if method.use_history else None)
        except ValueError as exc:
            raise ValueError(f"arrival {t}: {exc}") from None
        cand_ids = np.concatenate([bank_ids, offsets[t] + np.arange(sizes[t], dtype=np.int64)])
        prev = set(bank_ids.tolist())
        new_ids = cand_ids[res.indices]
        save_arrays(run.path, t, res.candidate_embeddings, res.responsibility)
        report = {"arrival": t, "n_new": sizes[t], "n_candidates": int(cand_ids.size),
                  "bank_size": int(new_ids.size),
                  "kept": int(sum(i in prev for i in new_ids.tolist())),
                  "added": [i for i in new_ids.tolist() if i not in prev],
                  "objective": float(np.mean(res.scores)),
                  "objective_name": "mean score of the bank",
                  "diversity": _diversity(res.bank.embeddings),
                  "diversity_name": "Vendi score of the bank (cosine)",
                  "mean_representation": float(np.mean(res.representation[res.indices])),
                  "mean_quality": float(np.mean(res.quality[res.indices])),
                  "n_exemplars": int(res.exemplars.size), "n_iter": res.n_iter,
                  "converged": res.converged, "used_history": res.used_history,
                  "mode": res.mode}
        run.commit(report, {"bank": new_ids, "keep": res.indices,
                            "bank_quality": res.bank.quality, "bank_scores": res.scores,
                            "sizes": sizes[:t + 1],
                            "fingerprints": [x["fingerprint"] for x in arrivals[:t + 1]]})
        old = arrays_path(run.path, t - 1)
        if t and old.exists():
            old.unlink()
        bank, history, bank_ids = res.bank, res.history, new_ids
        if on_round_end:
            on_round_end(t, run.reports()[-1])
    return MethodRunResult(np.asarray(run.state["bank"], dtype=np.int64), tuple(run.reports()),
                           run.path)


def _diversity(embeddings):
    from ...metrics import vendi_score

    try:
        return float(vendi_score(embeddings).score)
    except ValueError:  # a zero row has no cosine
        return None
