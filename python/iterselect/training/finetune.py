"""Supervised fine-tuning on a chosen subset with transformers' Trainer.

Examples are tokenized under the scorers' convention (segments tokenized separately, EOS after
each response, truncation cuts the prompt first; see :mod:`iterselect.scoring.tokenization`),
and only response tokens are learned: prompt tokens get the label -100. Batches hold a token
budget rather than a fixed number of rows: examples are grouped by length once, and the order of
the batches is shuffled every epoch from ``seed``.
"""
from __future__ import annotations

import math
import tempfile
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


@dataclass(frozen=True, eq=False)
class FinetuneResult:
    """A fine-tuned model and its training record.

    Attributes
    ----------
    model : transformers model
        The model passed in, trained in place (returned for convenience), in eval mode.
    loss_history : ndarray of float64
        Training loss at each logging step (every ``logging_steps`` optimizer steps).
    steps : ndarray of int64
        The optimizer step of each ``loss_history`` entry.
    train_loss : float
        Mean training loss over the run (Trainer's ``train_loss``).
    n_examples : int
        Examples trained on.
    n_response_tokens : int
        Response tokens learned per epoch (after truncation).
    truncated : ndarray of bool
        Examples cut to ``max_length``.
    skipped : ndarray of int64
        Examples left with no response token after truncation (not trained on).
    """

    model: object
    loss_history: np.ndarray
    steps: np.ndarray
    train_loss: float
    n_examples: int
    n_response_tokens: int
    truncated: np.ndarray
    skipped: np.ndarray


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


class _Features:
    """A list of tokenized examples as a map-style dataset."""

    def __init__(self, features):
        self.features = features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return self.features[i]


def _collator(pad):
    import torch

    def collate(features):
        ids, mask, _ = pad_batch([f["input_ids"] for f in features], pad, "right")
        labels, _, _ = pad_batch([f["labels"] for f in features], -100, "right")
        return {"input_ids": ids, "attention_mask": mask, "labels": labels.to(torch.long)}

    return collate


def _trainer_class():
    from torch.utils.data import DataLoader
    from transformers import Trainer

    class TokenBudgetTrainer(Trainer):
        """Trainer whose training batches come from a token-budget batch sampler."""

        def __init__(self, *args, batch_sampler=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._batch_sampler = batch_sampler

        def get_train_dataloader(self):
            loader = DataLoader(self.train_dataset, batch_sampler=self._batch_sampler,
                                collate_fn=self.data_collator, num_workers=0)
            return self.accelerator.prepare(loader)

    return TokenBudgetTrainer


def finetune(model, tokenizer, examples, *, epochs=1, lr=2e-5, batch_tokens=4096, seed=0,
             template="alpaca", max_length=None, weight_decay=0.0, warmup_steps=0,
             lr_scheduler="linear", gradient_accumulation_steps=1, max_grad_norm=1.0,
             logging_steps=1, output_dir=None, progress=True, training_args=None):
    """Fine-tune ``model`` on ``examples`` with transformers' Trainer, prompts masked.

    Parameters
    ----------
    model : transformers causal language model
        Trained in place. On CUDA a float32 model trains with bf16 autocast (Trainer's
        ``bf16=True``); load it with ``load_model(..., dtype=torch.float32)`` for training,
        since ``load_model``'s CUDA default (bfloat16 weights) suits scoring, not optimizer
        updates. CPU training runs in float32.
    tokenizer : transformers tokenizer
    examples : list of records or FormattedExamples
        Alpaca / ShareGPT records or (prompt, response) pairs (see :func:`format_examples`);
        every assistant turn of a conversation is learned.
    epochs : int, default=1
    lr : float, default=2e-5
    batch_tokens : int, default=4096
        Token budget of a batch (rows × longest row, padding included).
    seed : int, default=0
        Seeds Trainer (dropout, initialisation of anything new) and the batch order: the same
        model, data and seed give the same losses and weights.
    template : {"alpaca", "chat"} or callable, default="alpaca"
    max_length : int, optional
        Defaults to the model's position limit.
    weight_decay, warmup_steps, lr_scheduler, gradient_accumulation_steps, max_grad_norm
        As in ``transformers.TrainingArguments`` (``lr_scheduler`` is ``lr_scheduler_type``).
    logging_steps : int, default=1
        Record the loss every this many optimizer steps.
    output_dir : str, optional
        Where Trainer may write; a temporary directory (removed afterwards) by default. Nothing
        is checkpointed unless ``training_args`` asks for it.
    progress : bool, default=True
        Trainer's progress bar.
    training_args : dict, optional
        More ``TrainingArguments`` fields; they override the ones above.

    Returns
    -------
    FinetuneResult
        ``model``, ``loss_history``, ``steps``, ``train_loss``, ``n_examples``,
        ``n_response_tokens``, ``truncated``, ``skipped``.

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
    import torch
    from transformers import PrinterCallback, ProgressCallback, TrainingArguments

    func = "finetune"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    examples = as_examples(examples, func, template=template, tokenizer=tokenizer)
    epochs = check_int(epochs, "epochs", func, low=1)
    lr = check_float(lr, "lr", func, low=0, low_open=True)
    batch_tokens = check_int(batch_tokens, "batch_tokens", func, low=1)
    seed = check_int(seed, "seed", func, low=0)
    max_length = resolve_max_length(max_length, model, func, low=2)
    weight_decay = check_float(weight_decay, "weight_decay", func, low=0)
    warmup_steps = check_int(warmup_steps, "warmup_steps", func, low=0)
    gradient_accumulation_steps = check_int(gradient_accumulation_steps,
                                            "gradient_accumulation_steps", func, low=1)
    max_grad_norm = check_float(max_grad_norm, "max_grad_norm", func, low=0)
    logging_steps = check_int(logging_steps, "logging_steps", func, low=1)
    check_choice(progress, "progress", func, (True, False))
    if training_args is not None and not isinstance(training_args, dict):
        raise param_error(func, "training_args", "a dict of TrainingArguments fields or None",
                          type(training_args).__name__, TypeError)

    features, truncated, skipped = [], [], []
    n_tokens = 0
    for i, enc in enumerate(encode_examples(tokenizer, examples)):
        window, cut = truncate(enc, max_length)
        truncated.append(cut)
        scored = scored_mask(window)
        if not scored.any():
            skipped.append(i)
            continue
        labels = np.where(scored, window.ids, -100)
        features.append({"input_ids": window.ids, "labels": labels})
        n_tokens += int(scored.sum())
    if skipped:
        warnings.warn(f"finetune: {len(skipped)} of {len(examples)} examples have no response "
                      f"token left after truncation (first: {skipped[0]}); they are not trained "
                      "on (see result.skipped).", ScoringWarning, stacklevel=2)
    if not features:
        raise param_error(func, "examples", "examples with at least one response token to learn",
                          f"none among {len(examples)}")

    on_cuda = model_device(model).type == "cuda" or torch.cuda.is_available()
    bf16 = bool(on_cuda and torch.cuda.is_bf16_supported()
                and next(model.parameters()).dtype == torch.float32)
    tmp = tempfile.TemporaryDirectory() if output_dir is None else None
    args = dict(
        output_dir=output_dir or tmp.name, num_train_epochs=epochs, learning_rate=lr,
        per_device_train_batch_size=1, gradient_accumulation_steps=gradient_accumulation_steps,
        weight_decay=weight_decay, warmup_steps=warmup_steps, lr_scheduler_type=lr_scheduler,
        max_grad_norm=max_grad_norm, logging_strategy="steps", logging_steps=logging_steps,
        save_strategy="no", eval_strategy="no", report_to="none", seed=seed, data_seed=seed,
        disable_tqdm=not progress, use_cpu=not on_cuda, bf16=bf16, remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    args.update(training_args or {})
    sampler = _TokenBudgetBatches([len(f["input_ids"]) for f in features], batch_tokens, seed)
    try:
        trainer = _trainer_class()(
            model=model, args=TrainingArguments(**args), train_dataset=_Features(features),
            data_collator=_collator(pad_id(tokenizer)), processing_class=tokenizer,
            batch_sampler=sampler)
        if not progress:
            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
        output = trainer.train()
    finally:
        if tmp is not None:
            tmp.cleanup()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return FinetuneResult(
        model=model,
        loss_history=np.array([float(h["loss"]) for h in logs], dtype=np.float64),
        steps=np.array([int(h["step"]) for h in logs], dtype=np.int64),
        train_loss=float(output.training_loss) if output.training_loss is not None else math.nan,
        n_examples=len(features),
        n_response_tokens=n_tokens,
        truncated=np.asarray(truncated, dtype=bool),
        skipped=np.asarray(skipped, dtype=np.int64),
    )
