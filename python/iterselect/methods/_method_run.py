"""What the methods' ``run`` loops share: the result type, the base model, training settings."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import param_error
from ..training.recipe import TrainConfig


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
        The last checkpoint saved (the run's final model), for methods that return one.
    variant : str or None
        The method's name for what ran, where it depends on the inputs (iterative kMQ without
        quality scores is "kM-Random").
    """

    selected: np.ndarray
    reports: tuple
    run_dir: Path
    model_path: str | None = None
    variant: str | None = None


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
    """Fine-tune ``model`` on ``records`` with the recipe ``train`` (``epochs`` overrides it)."""
    from ..training import finetune

    return finetune(model, tokenizer, records, epochs=epochs or train.epochs, seed=seed,
                    progress=progress, **train.finetune_kwargs())


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
    def ref(self):
        """How the config names the model: its path, or for a model object its class, size and
        a hash of a sample of its weights (so that a resume with other weights is refused)."""
        from .._fingerprint import model_fingerprint

        return self.path if self.path else model_fingerprint(self.model)

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


MethodRun = MethodRunResult  # the earlier name, still accepted
