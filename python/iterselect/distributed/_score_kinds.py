"""What each kind of score is: the engine function that computes it, the options it takes, the
model it loads, and how its result becomes the columns of a Parquet part and back.

Every kind calls the single-process engine of :mod:`iterselect.scoring` unchanged; this module
only names which function, so that a block scored on an actor and a list scored in one process
go through the same code.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from .._validation import param_error

KINDS = ("ifd", "perplexity", "embeddings", "sentence-embeddings", "reward", "generate")

# Arguments of the engine functions that score() sets itself (never passed through by a caller).
_RESERVED = ("model", "tokenizer", "examples", "texts", "prompts", "reward_model",
             "model_or_path", "progress", "device")


@dataclass(frozen=True)
class Kind:
    """One kind of score.

    Attributes
    ----------
    name : str
    engine : str
        The function of :mod:`iterselect.scoring` that computes it.
    task : str or None
        The ``task`` of :func:`~iterselect.scoring.load_model` for a model given as a path
        (None: a sentence-transformers model).
    texts : bool
        The engine takes texts (records are turned into their embedding text first).
    """

    name: str
    engine: str
    task: str | None
    texts: bool = False

    def function(self):
        from .. import scoring

        return getattr(scoring, self.engine)

    def check_options(self, options: dict, func: str) -> dict:
        """``options`` must be keyword arguments of the engine function (their values are
        checked by the engine itself, on the first block)."""
        params = inspect.signature(self.function()).parameters
        allowed = sorted(p for p in params if p not in _RESERVED
                         and params[p].kind in (params[p].KEYWORD_ONLY,
                                                params[p].POSITIONAL_OR_KEYWORD))
        unknown = [key for key in options if key not in allowed]
        if unknown:
            raise TypeError(f"{func} got the option {unknown[0]!r}, which {self.engine} (what="
                            f"{self.name!r}) does not take; it takes {', '.join(allowed)}")
        return dict(options)

    def run(self, model, tokenizer, items, options: dict):
        """The engine's result for ``items`` (a list), in input order."""
        fn = self.function()
        if self.texts:
            items = [as_text(x, i) for i, x in enumerate(items)]
        if self.name == "sentence-embeddings":
            return fn(model, items, progress=False, **options)
        return fn(model, tokenizer, items, progress=False, **options)

    def columns(self, result) -> dict:
        """The result as named columns, one value (or row) per item."""
        if self.name == "ifd":
            return {"ifd": result.ifd, "cond_loss": result.cond_loss,
                    "prior_loss": result.prior_loss,
                    "n_response_tokens": result.n_response_tokens, "truncated": result.truncated}
        if self.name == "perplexity":
            return {"perplexity": result.perplexity, "loss": result.loss,
                    "n_tokens": result.n_tokens, "truncated": result.truncated}
        if self.name in ("embeddings", "sentence-embeddings"):
            return {"embedding": result.embeddings, "n_tokens": result.n_tokens,
                    "truncated": result.truncated}
        if self.name == "reward":
            return {"score": result.scores, "n_tokens": result.n_tokens,
                    "truncated": result.truncated}
        return {"text": np.asarray(result.texts, dtype=object),
                "n_new_tokens": result.n_new_tokens, "finished": result.finished,
                "prompt_truncated": result.prompt_truncated}

    def result(self, columns: dict, *, pooling: str | None = None):
        """The engine's result type from :meth:`columns` of every item, in order."""
        from .. import scoring

        if self.name == "ifd":
            ifd = columns["ifd"]
            return scoring.IFDResult(ifd, columns["cond_loss"], columns["prior_loss"],
                                     columns["n_response_tokens"], columns["truncated"],
                                     np.flatnonzero(np.isnan(ifd)).astype(np.int64))
        if self.name == "perplexity":
            loss = columns["loss"]
            return scoring.PerplexityResult(columns["perplexity"], loss, columns["n_tokens"],
                                            columns["truncated"],
                                            np.flatnonzero(np.isnan(loss)).astype(np.int64))
        if self.name in ("embeddings", "sentence-embeddings"):
            return scoring.EmbeddingsResult(columns["embedding"], columns["n_tokens"],
                                            columns["truncated"], pooling or "sentence")
        if self.name == "reward":
            return scoring.RewardResult(columns["score"], columns["n_tokens"],
                                        columns["truncated"])
        return scoring.GenerationResult(tuple(columns["text"]), columns["n_new_tokens"],
                                        columns["finished"], columns["prompt_truncated"])


_TABLE = {
    "ifd": Kind("ifd", "ifd_scores", "causal-lm"),
    "perplexity": Kind("perplexity", "perplexity", "causal-lm"),
    "embeddings": Kind("embeddings", "embed", "causal-lm", texts=True),
    "sentence-embeddings": Kind("sentence-embeddings", "embed_sentences", None, texts=True),
    "reward": Kind("reward", "reward_scores", "sequence-classification"),
    "generate": Kind("generate", "generate", "causal-lm"),
}


def get_kind(what, func: str) -> Kind:
    if what not in _TABLE:
        raise param_error(func, "what", f"one of {{{', '.join(map(repr, KINDS))}}}", repr(what))
    return _TABLE[what]


def as_text(item, index: int) -> str:
    """What is embedded for an item: a string as it is, a record's embedding text."""
    from ..datasets import embedding_text

    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return embedding_text(item)
    raise TypeError(f"Item {index} to embed must be a str or a record (dict). Got "
                    f"{type(item).__name__} instead.")


def concat_columns(parts: list) -> dict:
    """Columns of consecutive blocks joined (every part has the same names)."""
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


COMMANDS = ("ifd", "perplexity", "embed", "reward")


def command_kind(command: str, model: str) -> tuple:
    """``(what, model)`` for ``iterselect score COMMAND --model MODEL``: ``embed`` with
    ``minilm`` (the bundled MiniLM, model None) or a sentence-transformers folder (it has a
    ``modules.json``) embeds sentences; with a language model, pooled hidden states."""
    from pathlib import Path

    if command != "embed":
        return command, model
    if model == "minilm":
        return "sentence-embeddings", None
    if (Path(model) / "modules.json").exists():
        return "sentence-embeddings", model
    return "embeddings", model
