"""Supervised fine-tuning on a chosen subset: AdamW, a warm-up and a learning-rate schedule.

Examples are tokenized under the scorers' convention (segments tokenized separately, EOS after
each response, truncation cuts the prompt first; see :mod:`iterselect.scoring.tokenization`),
and only response tokens are learned: prompt tokens get the label -100.

:class:`Finetuner` holds one optimizer and one schedule for a whole run and trains one epoch at
a time on whatever examples it is given, so a method can change the training set between
epochs and still train one model continuously (IterIT, Alg. 1 lines 16-20).
:func:`finetune` is the usual case: one training set for ``epochs`` epochs.

Batches: with ``batch_size`` every optimizer step takes that many sequences (shuffled each
epoch), split into micro-batches of at most ``batch_tokens`` padded tokens whose gradients are
accumulated; without it every step is one token-budget batch (examples grouped by length, batch
order shuffled each epoch). The loss of a step is the mean negative log-likelihood over all its
response tokens, whatever the micro-batching.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_float, check_int, param_error
from ..exceptions import ScoringWarning
from ..scoring._common import (check_model, check_tokenizer, model_device, pad_id,
                               resolve_max_length)
from ..scoring.batching import pad_batch, plan_batches
from ..scoring.formatting import as_examples
from ..scoring.tokenization import encode_examples, scored_mask, truncate
from .recipe import SCHEDULERS


@dataclass(frozen=True, eq=False)
class FinetuneResult:
    """A fine-tuned model and its training record.

    Attributes
    ----------
    model : transformers model
        The model passed in, trained in place (returned for convenience), in eval mode.
    loss_history : ndarray of float64
        Training loss at each logging step (mean over the steps since the last one).
    steps : ndarray of int64
        The optimizer step of each ``loss_history`` entry (counted over the whole run).
    train_loss : float
        Mean training loss over the optimizer steps of this call.
    n_examples : int
        Examples trained on.
    n_response_tokens : int
        Response tokens learned per epoch (after truncation).
    truncated : ndarray of bool
        Examples cut to ``max_length``.
    skipped : ndarray of int64
        Examples left with no response token after truncation (not trained on).
    recipe : dict
        What ran: lr, batch size, warm-up steps, schedule, total planned steps, steps done.
    """

    model: object
    loss_history: np.ndarray
    steps: np.ndarray
    train_loss: float
    n_examples: int
    n_response_tokens: int
    truncated: np.ndarray
    skipped: np.ndarray
    recipe: dict


class _TokenBudgetBatches:
    """Batches of at most ``batch_tokens`` padded tokens; batch order reshuffled each epoch."""

    def __init__(self, lengths, batch_tokens, seed):
        self.batches = plan_batches(lengths, batch_tokens)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        for k in rng.permutation(len(self.batches)):
            yield self.batches[k].tolist()


def _steps(lengths, batch_size, batch_tokens, seed, epoch):
    """The optimizer steps of one epoch: a list of steps, each a list of micro-batches."""
    if batch_size is None:
        sampler = _TokenBudgetBatches(lengths, batch_tokens, seed)
        sampler.set_epoch(epoch)
        return [[b] for b in sampler]
    order = np.random.default_rng([seed, epoch]).permutation(len(lengths))
    steps = []
    for s in range(0, len(order), batch_size):
        group = order[s:s + batch_size]
        micro = plan_batches(np.asarray(lengths)[group], batch_tokens)
        steps.append([group[m].tolist() for m in micro])
    return steps


def n_steps(n_examples, batch_size, *, lengths=None, batch_tokens=4096) -> int:
    """Optimizer steps of one epoch over ``n_examples`` (``lengths`` needed without
    ``batch_size``).

    Examples
    --------
    >>> from iterselect.training.finetune import n_steps
    >>> n_steps(100, 32)
    4
    """
    if batch_size is not None:
        return max(1, math.ceil(n_examples / batch_size))
    return max(1, len(plan_batches(lengths, batch_tokens)))


def _encode(tokenizer, examples, max_length, func):
    features, truncated, skipped = [], [], []
    n_tokens = 0
    for i, enc in enumerate(encode_examples(tokenizer, examples)):
        window, cut = truncate(enc, max_length)
        truncated.append(cut)
        scored = scored_mask(window)
        if not scored.any():
            skipped.append(i)
            continue
        features.append((window.ids, np.where(scored, window.ids, -100)))
        n_tokens += int(scored.sum())
    if skipped:
        warnings.warn(f"{func}: {len(skipped)} of {len(examples)} examples have no response "
                      f"token left after truncation (first: {skipped[0]}); they are not trained "
                      "on (see result.skipped).", ScoringWarning, stacklevel=3)
    if not features:
        raise param_error(func, "examples", "examples with at least one response token to learn",
                          f"none among {len(examples)}")
    return features, np.asarray(truncated, dtype=bool), np.asarray(skipped, dtype=np.int64), n_tokens


class Finetuner:
    """One model, one AdamW optimizer and one learning-rate schedule, trained an epoch at a time.

    The schedule spans ``epochs`` epochs of the size of the first epoch trained (or exactly
    ``total_steps`` optimizer steps when given): IterIT trains ``M`` selected samples an epoch
    for T epochs, and its schedule is planned from the first epoch's ``M``.

    Parameters
    ----------
    model : transformers causal language model
        Trained in place. On CUDA a float32 model trains under bf16 autocast; CPU training runs
        in the model's precision.
    tokenizer : transformers tokenizer
    epochs : int, default=1
        Epochs the schedule is planned for.
    lr : float, default=2e-5
    batch_size : int, optional
        Sequences per optimizer step (micro-batched by ``batch_tokens``); None: one step per
        token-budget batch.
    batch_tokens : int, default=4096
    warmup_steps : int, optional
        Linear warm-up steps; None: ``ceil(warmup_ratio * total_steps)``.
    warmup_ratio : float, default=0.0
    scheduler : {"linear", "cosine", "constant", "constant_with_warmup"}, default="linear"
    weight_decay : float, default=0.0
    max_grad_norm : float, default=1.0
        Gradient clipping (0 turns it off).
    total_steps : int, optional
        The schedule's length in optimizer steps, instead of planning it from the first epoch.
    max_steps : int, optional
        Stop after this many optimizer steps in all (the schedule is unchanged).
    template : {"alpaca", "chat"} or callable, default="alpaca"
    max_length : int, optional
        Defaults to the model's position limit.
    seed : int, default=0
        Seeds dropout (the global torch generator, set once here) and the batch order of every
        epoch: the same model, data and seed give the same losses and weights.
    logging_steps : int, default=1
    progress : bool, default=True

    Examples
    --------
    >>> from iterselect.training import Finetuner
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> trainer = Finetuner(model, tok, epochs=2, lr=1e-2, batch_size=2, progress=False)
    >>> first = trainer.train_epoch([("Q: 2+2?\\nA:", " 4"), ("Q: 3+3?\\nA:", " 6")] * 2)
    >>> second = trainer.train_epoch([("Q: 1+1?\\nA:", " 2")] * 4)  # another set, same schedule
    >>> trainer.step, first.recipe["total_steps"], second.steps.tolist()
    (4, 4, [3, 4])
    """

    def __init__(self, model, tokenizer, *, epochs=1, lr=2e-5, batch_size=None, batch_tokens=4096,
                 warmup_steps=None, warmup_ratio=0.0, scheduler="linear", weight_decay=0.0,
                 max_grad_norm=1.0, total_steps=None, max_steps=None, template="alpaca",
                 max_length=None, seed=0, logging_steps=1, progress=True, func="Finetuner"):
        import torch

        check_model(model, func)
        check_tokenizer(tokenizer, func)
        self.model, self.tokenizer, self.func = model, tokenizer, func
        self.epochs = check_int(epochs, "epochs", func, low=1)
        self.lr = check_float(lr, "lr", func, low=0, low_open=True)
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", func, low=1)
        self.batch_tokens = check_int(batch_tokens, "batch_tokens", func, low=1)
        self.warmup_steps = None if warmup_steps is None else check_int(warmup_steps, "warmup_steps", func, low=0)
        self.warmup_ratio = check_float(warmup_ratio, "warmup_ratio", func, low=0, high=1)
        self.scheduler_name = check_choice(scheduler, "scheduler", func, SCHEDULERS)
        self.weight_decay = check_float(weight_decay, "weight_decay", func, low=0)
        self.max_grad_norm = check_float(max_grad_norm, "max_grad_norm", func, low=0)
        self.total_steps = None if total_steps is None else check_int(total_steps, "total_steps", func, low=1)
        self.max_steps = None if max_steps is None else check_int(max_steps, "max_steps", func, low=1)
        self.template = template
        self.max_length = resolve_max_length(max_length, model, func, low=2)
        self.seed = check_int(seed, "seed", func, low=0)
        self.logging_steps = check_int(logging_steps, "logging_steps", func, low=1)
        check_choice(progress, "progress", func, (True, False))
        self.progress = progress
        self.step = 0
        self.epoch = 0
        self.optimizer = None
        self.scheduler = None
        self.resolved_warmup = None
        self.step_losses = []  # every optimizer step's loss, over the whole run
        torch.manual_seed(self.seed)

    # -- state ------------------------------------------------------------------------------
    def _build(self, steps_per_epoch: int):
        import torch
        from transformers import get_scheduler

        total = self.total_steps or self.epochs * steps_per_epoch
        self.total_steps = total
        self.resolved_warmup = (self.warmup_steps if self.warmup_steps is not None
                                else math.ceil(self.warmup_ratio * total))
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=self.lr)
        self.scheduler = get_scheduler(self.scheduler_name, self.optimizer,
                                       num_warmup_steps=self.resolved_warmup,
                                       num_training_steps=total)

    def recipe(self) -> dict:
        """The settings this run trains with (warm-up resolved once the schedule exists)."""
        return {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "batch_tokens": self.batch_tokens, "warmup_steps": self.resolved_warmup,
                "warmup_ratio": self.warmup_ratio, "scheduler": self.scheduler_name,
                "weight_decay": self.weight_decay, "max_grad_norm": self.max_grad_norm,
                "max_length": self.max_length, "total_steps": self.total_steps,
                "steps_done": self.step, "epochs_done": self.epoch, "seed": self.seed}

    def state_dict(self) -> dict:
        """Optimizer, schedule and counters, to continue the run after a restart."""
        import torch

        return {"optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "step": self.step, "epoch": self.epoch, "total_steps": self.total_steps,
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict, steps_per_epoch: int | None = None) -> None:
        """Restore :meth:`state_dict` (the model's weights are loaded separately)."""
        import torch

        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        if state["optimizer"] is not None:
            self.total_steps = int(state["total_steps"])
            self._build(steps_per_epoch or 1)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])

    # -- training ---------------------------------------------------------------------------
    def _step_loss(self, features, micro_batches, device, autocast):
        """Accumulate gradients of one optimizer step; returns its token-mean loss."""
        import torch

        n_tokens = sum(int((features[i][1] != -100).sum()) for mb in micro_batches for i in mb)
        total = 0.0
        pid = pad_id(self.tokenizer)
        for mb in micro_batches:
            ids, mask, _ = pad_batch([features[i][0] for i in mb], pid, "right")
            labels, _, _ = pad_batch([features[i][1] for i in mb], -100, "right")
            ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            with autocast():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
            (nll / n_tokens).backward()
            total += float(nll.detach())
        return total / n_tokens

    def train_epoch(self, examples) -> FinetuneResult:
        """Train one epoch on ``examples`` (records, pairs or FormattedExamples).

        Returns this epoch's :class:`FinetuneResult` (losses, steps counted over the run).
        """
        import contextlib

        import torch
        from tqdm.auto import tqdm

        func = self.func
        examples = as_examples(examples, func, template=self.template, tokenizer=self.tokenizer)
        features, truncated, skipped, n_tokens = _encode(self.tokenizer, examples,
                                                         self.max_length, func)
        lengths = [len(f[0]) for f in features]
        plan = _steps(lengths, self.batch_size, self.batch_tokens, self.seed, self.epoch)
        if self.optimizer is None:
            self._build(len(plan))
        device = model_device(self.model)
        bf16 = (device.type == "cuda" and torch.cuda.is_bf16_supported()
                and next(self.model.parameters()).dtype == torch.float32)

        def autocast():
            if bf16:
                return torch.autocast("cuda", dtype=torch.bfloat16)
            return contextlib.nullcontext()

        self.model.train()
        losses, logged, logged_steps, pending = [], [], [], []
        try:
            for micro in tqdm(plan, desc=f"train epoch {self.epoch + 1}", disable=not self.progress):
                if self.max_steps is not None and self.step >= self.max_steps:
                    break
                loss = self._step_loss(features, micro, device, autocast)
                if self.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
                self.optimizer.step()
                if self.step < self.total_steps:
                    self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                self.step_losses.append(loss)
                losses.append(loss)
                pending.append(loss)
                if len(pending) == self.logging_steps:
                    logged.append(float(np.mean(pending)))
                    logged_steps.append(self.step)
                    pending = []
            if pending:
                logged.append(float(np.mean(pending)))
                logged_steps.append(self.step)
        finally:
            self.model.eval()
        self.epoch += 1
        return FinetuneResult(
            model=self.model, loss_history=np.asarray(logged, dtype=np.float64),
            steps=np.asarray(logged_steps, dtype=np.int64),
            train_loss=float(np.mean(losses)) if losses else math.nan,
            n_examples=len(features), n_response_tokens=n_tokens, truncated=truncated,
            skipped=skipped, recipe=self.recipe())


def finetune(model, tokenizer, examples, *, epochs=1, lr=2e-5, batch_size=None, batch_tokens=4096,
             seed=0, template="alpaca", max_length=None, weight_decay=0.0, warmup_steps=None,
             warmup_ratio=0.0, scheduler="linear", max_grad_norm=1.0, logging_steps=1,
             max_steps=None, progress=True):
    """Fine-tune ``model`` on ``examples`` for ``epochs`` epochs, prompts masked.

    Parameters
    ----------
    model : transformers causal language model
        Trained in place. On CUDA a float32 model trains with bf16 autocast; load it with
        ``load_model(..., dtype=torch.float32)`` for training, since ``load_model``'s CUDA
        default (bfloat16 weights) suits scoring, not optimizer updates. CPU training runs in
        float32.
    tokenizer : transformers tokenizer
    examples : list of records or FormattedExamples
        Alpaca / ShareGPT records or (prompt, response) pairs (see :func:`format_examples`);
        every assistant turn of a conversation is learned.
    epochs : int, default=1
    lr : float, default=2e-5
    batch_size : int, optional
        Sequences per optimizer step, micro-batched by ``batch_tokens``. None: every step is one
        batch of at most ``batch_tokens`` padded tokens (rows x longest row).
    batch_tokens : int, default=4096
    seed : int, default=0
        Seeds dropout and the batch order: the same model, data and seed give the same losses
        and weights.
    template : {"alpaca", "chat"} or callable, default="alpaca"
    max_length : int, optional
        Defaults to the model's position limit.
    weight_decay, warmup_steps, warmup_ratio, scheduler, max_grad_norm
        AdamW's weight decay; linear warm-up in steps (None: ``ceil(warmup_ratio * total)``);
        the schedule after it (``"linear"``, ``"cosine"``, ``"constant"``,
        ``"constant_with_warmup"``, as transformers' ``get_scheduler``); gradient clipping.
    logging_steps : int, default=1
        Record the loss every this many optimizer steps.
    max_steps : int, optional
        Stop after this many optimizer steps.
    progress : bool, default=True

    Returns
    -------
    FinetuneResult
        ``model``, ``loss_history``, ``steps``, ``train_loss``, ``n_examples``,
        ``n_response_tokens``, ``truncated``, ``skipped``, ``recipe``.

    Examples
    --------
    >>> from iterselect.training import finetune
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> data = [("Q: 2+2?\\nA:", " 4"), ("Q: 3+3?\\nA:", " 6")] * 4
    >>> r = finetune(model, tok, data, epochs=2, lr=1e-2, batch_tokens=64, progress=False)
    >>> len(r.loss_history) == len(r.steps) > 0, r.n_examples
    (True, 8)
    """
    func = "finetune"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    examples = as_examples(examples, func, template=template, tokenizer=tokenizer)
    trainer = Finetuner(model, tokenizer, epochs=epochs, lr=lr, batch_size=batch_size,
                        batch_tokens=batch_tokens, warmup_steps=warmup_steps,
                        warmup_ratio=warmup_ratio, scheduler=scheduler,
                        weight_decay=weight_decay, max_grad_norm=max_grad_norm,
                        max_steps=max_steps, template=template, max_length=max_length, seed=seed,
                        logging_steps=logging_steps, progress=progress, func=func)
    parts = [trainer.train_epoch(examples) for _ in range(trainer.epochs)]
    last = parts[-1]
    return FinetuneResult(
        model=model, loss_history=np.concatenate([p.loss_history for p in parts]),
        steps=np.concatenate([p.steps for p in parts]),
        train_loss=float(np.mean(trainer.step_losses)) if trainer.step_losses else math.nan,
        n_examples=last.n_examples, n_response_tokens=last.n_response_tokens,
        truncated=last.truncated, skipped=last.skipped, recipe=trainer.recipe())
