"""What the methods' ``run`` loops share: the result type, the base model, training settings."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_float, check_int, param_error


@dataclass(frozen=True, eq=False)
class MethodRunResult:
    """The outcome of a method's ``run``.

    Attributes
    ----------
    selected : int64 array
        The final selection, indices into the records, in selection order.
    reports : tuple of dict
        One report per round (round index, selection size, objective, diversity, ...), as saved
        under ``run_dir/rounds``.
    run_dir : Path
    model_path : str or None
        The last checkpoint saved, for methods that keep training one model.
    """

    selected: np.ndarray
    reports: tuple
    run_dir: Path
    model_path: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning settings of a run's training steps (see :func:`iterselect.training.finetune`)."""

    epochs: int = 1
    lr: float = 2e-5
    batch_tokens: int = 4096
    max_length: int | None = None
    template: str = "alpaca"
    extra: dict = field(default_factory=dict)

    def check(self, func: str) -> "TrainConfig":
        check_int(self.epochs, "epochs", func, low=1)
        check_float(self.lr, "lr", func, low=0, low_open=True)
        check_int(self.batch_tokens, "batch_tokens", func, low=1)
        if self.max_length is not None:
            check_int(self.max_length, "max_length", func, low=2)
        return self

    def as_dict(self) -> dict:
        return {"epochs": self.epochs, "lr": self.lr, "batch_tokens": self.batch_tokens,
                "max_length": self.max_length, "template": self.template, **self.extra}


def scoring_engine(scorer):
    """The scoring functions a method calls (``embed``, ``ifd_scores``, ``perplexity``,
    ``reward_scores``, ``generate``): those of ``scorer`` when given (e.g.
    :class:`iterselect.distributed.RayScorer`, which runs them on a Ray actor pool), else the
    single-process engine, :mod:`iterselect.scoring`."""
    if scorer is not None:
        return scorer
    from .. import scoring

    return scoring


def finetune_on(model, tokenizer, records, train: TrainConfig, *, seed: int, epochs=None,
                progress: bool):
    from ..training import finetune

    return finetune(model, tokenizer, records, epochs=epochs or train.epochs, lr=train.lr,
                    batch_tokens=train.batch_tokens, max_length=train.max_length,
                    template=train.template, seed=seed, progress=progress, **train.extra)


class BaseModel:
    """A model given as a path (loaded fresh when needed) or as an object (deep-copied), so that
    every round can start from the same weights."""

    def __init__(self, model, func: str):
        if isinstance(model, (str, Path)):
            self.path = str(model)
            self.model = None
        elif hasattr(model, "parameters") and hasattr(model, "save_pretrained"):
            self.path = None
            self.model = model
        else:
            raise param_error(func, "model", "a transformers model or a path to one",
                              type(model).__name__, TypeError)

    @property
    def ref(self) -> str:
        """How the config names the model."""
        return self.path if self.path else f"<{type(self.model).__name__} object>"

    def fresh(self):
        """A copy of the base model's weights, float32, ready to train."""
        if self.path is not None:
            return self.load(self.path)
        return copy.deepcopy(self.model)

    def load(self, path):
        import torch

        from ..scoring import load_model

        return load_model(path, dtype=torch.float32)


def open_run(method, model, tokenizer, records, run_dir, resume: bool, func: str):
    """The start every trained method's ``run`` shares: checked records, the base model, its
    tokenizer (loaded from the model's path when not given) and the run directory.
    Returns ``(records, base, tokenizer, run)``."""
    from ..runs import RunDirectory
    from ..scoring import load_tokenizer

    records = check_records(records, func)
    base = BaseModel(model, func)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base.path)
    run = RunDirectory(run_dir, method=method.name, config=method.config(len(records), base.ref),
                       resume=resume)
    return records, base, tokenizer, run


def check_records(records, func: str, min_size: int = 1) -> list:
    if isinstance(records, (str, bytes)) or not hasattr(records, "__len__"):
        raise param_error(func, "records", "a list of instruction records",
                          type(records).__name__, TypeError)
    records = list(records)
    if len(records) < min_size:
        raise param_error(func, "records", f"at least {min_size} records", len(records))
    return records


def sample_texts(records, template, tokenizer) -> list:
    """The text that stands for each record when it is embedded: instruction, input and output
    joined by newlines for Alpaca-style records (no template boilerplate, which would dominate a
    mean-pooled vector), else the formatted prompt and response."""
    from ..datasets import embedding_text
    from ..scoring import format_examples

    if all(isinstance(r, dict) and "instruction" in r for r in records):
        return [embedding_text(r) for r in records]
    return [ex.text for ex in format_examples(records, template, tokenizer=tokenizer)]


MethodRun = MethodRunResult  # the earlier name, still accepted
