"""The training recipe: the settings of a fine-tuning run, recorded with every round that uses it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .._validation import check_choice, check_float, check_int

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


@dataclass(frozen=True)
class TrainConfig:
    """How a method fine-tunes: epochs, optimizer step size, batches, warm-up and schedule.

    Every method has its paper's recipe as a class attribute (``PAPER_RECIPE``) and records the
    recipe it ran in each round's report (:meth:`as_dict`).

    Attributes
    ----------
    epochs : int
        Passes over the training set (for IterIT: the T epochs of one continuous run).
    lr : float
        Peak learning rate of AdamW.
    batch_size : int or None
        Sequences per optimizer step; each step is split into micro-batches of at most
        ``batch_tokens`` padded tokens (gradient accumulation), and the loss is the mean over
        every response token of the step. None: one optimizer step per token-budget batch.
    batch_tokens : int
        Token budget of a (micro-)batch: rows x longest row, padding included.
    warmup_steps : int or None
        Linear warm-up, in optimizer steps. None: ``ceil(warmup_ratio * total steps)``.
    warmup_ratio : float
        Warm-up as a fraction of the total steps, when ``warmup_steps`` is None.
    scheduler : {"linear", "cosine", "constant", "constant_with_warmup"}
        Learning-rate schedule after the warm-up (transformers' schedulers).
    weight_decay : float
        AdamW's decoupled weight decay (not applied to biases and norm weights).
    max_length : int or None
        Longest training sequence in tokens (the prompt is cut first); None: the model's limit.
    template : {"alpaca", "chat"} or callable
        How records become prompt and response text (:func:`iterselect.scoring.format_examples`).
    extra : dict
        More keyword arguments of :func:`iterselect.training.finetune` (e.g. ``max_grad_norm``).

    Examples
    --------
    >>> from iterselect.training import TrainConfig
    >>> recipe = TrainConfig(epochs=3, lr=1e-5, batch_size=64, warmup_steps=1000)
    >>> recipe.as_dict()["warmup_steps"], recipe.with_(epochs=1).epochs
    (1000, 1)
    """

    epochs: int = 1
    lr: float = 2e-5
    batch_size: int | None = None
    batch_tokens: int = 4096
    warmup_steps: int | None = None
    warmup_ratio: float = 0.0
    scheduler: str = "linear"
    weight_decay: float = 0.0
    max_length: int | None = None
    template: str = "alpaca"
    extra: dict = field(default_factory=dict)

    def check(self, func: str) -> "TrainConfig":
        """Validate every field, naming ``func`` in the error."""
        check_int(self.epochs, "epochs", func, low=1)
        check_float(self.lr, "lr", func, low=0, low_open=True)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", func, low=1)
        check_int(self.batch_tokens, "batch_tokens", func, low=1)
        if self.warmup_steps is not None:
            check_int(self.warmup_steps, "warmup_steps", func, low=0)
        check_float(self.warmup_ratio, "warmup_ratio", func, low=0, high=1)
        check_choice(self.scheduler, "scheduler", func, SCHEDULERS)
        check_float(self.weight_decay, "weight_decay", func, low=0)
        if self.max_length is not None:
            check_int(self.max_length, "max_length", func, low=2)
        return self

    def with_(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (None values are ignored: keep the field)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        """The recipe as plain values (what run directories and reports record)."""
        template = self.template if isinstance(self.template, str) else "callable"
        return {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "batch_tokens": self.batch_tokens, "warmup_steps": self.warmup_steps,
                "warmup_ratio": self.warmup_ratio, "scheduler": self.scheduler,
                "weight_decay": self.weight_decay, "max_length": self.max_length,
                "template": template, **self.extra}

    def finetune_kwargs(self) -> dict:
        """Keyword arguments of :func:`~iterselect.training.finetune` and
        :class:`~iterselect.training.Finetuner` for this recipe."""
        return {"lr": self.lr, "batch_size": self.batch_size, "batch_tokens": self.batch_tokens,
                "warmup_steps": self.warmup_steps, "warmup_ratio": self.warmup_ratio,
                "scheduler": self.scheduler, "weight_decay": self.weight_decay,
                "max_length": self.max_length, "template": self.template, **self.extra}

    def describe(self) -> str:
        """One line for ``--help`` texts."""
        warm = (f"{self.warmup_steps} warm-up steps" if self.warmup_steps is not None
                else f"warm-up ratio {self.warmup_ratio:g}")
        batch = (f"batch {self.batch_size} sequences" if self.batch_size is not None
                 else f"batches of {self.batch_tokens} tokens")
        return f"{self.epochs} epochs, lr {self.lr:g}, {batch}, {warm}, {self.scheduler} schedule"
