"""One model trained over a planned number of epochs with one optimizer and one learning-rate
schedule, the data of each epoch given when the epoch starts (IterIT, Alg. 1 lines 16-20: the
selection changes before every epoch, the training continues).

Examples are tokenized as :func:`iterselect.training.finetune` tokenizes them (prompt tokens
labelled -100); a step is one batch of ``batch_size`` examples, run as micro-batches of at most
``batch_tokens`` padded tokens whose gradients add up, the loss being the mean over the batch's
response tokens. The optimizer is AdamW; the schedule (transformers' ``get_scheduler``) spans
``epochs x ceil(examples_per_epoch / batch_size)`` steps with ``warmup_ratio`` of them warming
up, so it neither restarts nor decays to zero between epochs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_float, check_int


@dataclass(frozen=True)
class EpochResult:
    """What :meth:`ContinuousTrainer.train_epoch` did.

    Attributes
    ----------
    losses : float64 array
        The loss of every optimizer step of the epoch.
    learning_rates : float64 array
        The learning rate each step used.
    n_examples : int
        Examples trained on (those with a response token left after truncation).
    step : int
        Optimizer steps taken so far, over every epoch.
    """

    losses: np.ndarray
    learning_rates: np.ndarray
    n_examples: int
    step: int

    @property
    def train_loss(self) -> float:
        return float(np.mean(self.losses)) if self.losses.size else math.nan


class ContinuousTrainer:
    """A resumable trainer: one AdamW optimizer and one learning-rate schedule over ``epochs``.

    Parameters
    ----------
    model : transformers causal language model
        Trained in place (float32 on the CPU; bf16 autocast on CUDA).
    tokenizer : transformers tokenizer
    epochs : int
        Epochs the schedule spans.
    examples_per_epoch : int
        The planned number of examples an epoch trains on (IterIT's M); an epoch given fewer
        takes fewer steps, the schedule stays as planned.
    batch_size : int, default=32
        Examples per optimizer step.
    lr : float, default=2e-5
    warmup_ratio : float in [0, 1), default=0.03
    lr_scheduler : str, default="cosine"
        A transformers scheduler name ("cosine", "linear", "constant", ...).
    weight_decay, max_grad_norm : float, default=0.0, 1.0
    batch_tokens : int, default=4096
        Token budget of a micro-batch.
    template : {"alpaca", "chat"} or callable, default="alpaca"
    max_length : int, optional
    seed : int, default=0
        Seeds each epoch's example order (with the epoch number) and torch's generator.

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> from iterselect.training import ContinuousTrainer
    >>> model, tok = toy_model_and_tokenizer()
    >>> trainer = ContinuousTrainer(model, tok, epochs=2, examples_per_epoch=4, batch_size=2,
    ...                             lr=1e-2, warmup_ratio=0.0, lr_scheduler="linear")
    >>> data = [("Q: 2+2?\\nA:", " 4"), ("Q: 3+3?\\nA:", " 6")] * 2
    >>> [r.step for r in (trainer.train_epoch(data, epoch=0), trainer.train_epoch(data, epoch=1))]
    [2, 4]
    >>> trainer.train_epoch(data, epoch=1).learning_rates.tolist()[:1]  # past the plan: lr 0
    [0.0]
    """

    def __init__(self, model, tokenizer, *, epochs, examples_per_epoch, batch_size=32, lr=2e-5,
                 warmup_ratio=0.03, lr_scheduler="cosine", weight_decay=0.0, max_grad_norm=1.0,
                 batch_tokens=4096, template="alpaca", max_length=None, seed=0):
        import torch
        from transformers import get_scheduler

        from ..scoring._common import check_model, check_tokenizer, resolve_max_length

        func = "ContinuousTrainer"
        check_model(model, func)
        check_tokenizer(tokenizer, func)
        self.model, self.tokenizer = model, tokenizer
        self.epochs = check_int(epochs, "epochs", func, low=1)
        examples_per_epoch = check_int(examples_per_epoch, "examples_per_epoch", func, low=1)
        self.batch_size = check_int(batch_size, "batch_size", func, low=1)
        self.steps_per_epoch = math.ceil(examples_per_epoch / self.batch_size)
        self.total_steps = self.epochs * self.steps_per_epoch
        warmup_ratio = check_float(warmup_ratio, "warmup_ratio", func, low=0, high=1, high_open=True)
        self.max_grad_norm = check_float(max_grad_norm, "max_grad_norm", func, low=0)
        self.batch_tokens = check_int(batch_tokens, "batch_tokens", func, low=1)
        self.template = template
        self.max_length = resolve_max_length(max_length, model, func, low=2)
        self.seed = check_int(seed, "seed", func, low=0)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=check_float(lr, "lr", func, low=0, low_open=True),
                                           weight_decay=check_float(weight_decay, "weight_decay", func, low=0))
        self.scheduler = get_scheduler(lr_scheduler, self.optimizer,
                                       num_warmup_steps=math.ceil(warmup_ratio * self.total_steps),
                                       num_training_steps=self.total_steps)
        self.step = 0

    def state_dict(self) -> dict:
        """The optimizer's and the schedule's state and the step count (the model is saved apart)."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])

    def save(self, path) -> None:
        import torch

        torch.save(self.state_dict(), path)

    def load(self, path) -> None:
        import torch

        self.load_state_dict(torch.load(path, weights_only=False))

    def _features(self, examples):
        from ..scoring.formatting import as_examples
        from ..scoring.tokenization import encode_examples, scored_mask, truncate

        examples = as_examples(examples, "ContinuousTrainer.train_epoch", template=self.template,
                               tokenizer=self.tokenizer)
        out = []
        for enc in encode_examples(self.tokenizer, examples):
            window, _ = truncate(enc, self.max_length)
            scored = scored_mask(window)
            if scored.any():
                out.append((window.ids, np.where(scored, window.ids, -100)))
        return out

    def train_epoch(self, examples, *, epoch: int) -> EpochResult:
        """Train one epoch on ``examples`` in an order drawn from ``(seed, epoch)``."""
        import torch

        from ..scoring._common import model_device, pad_id
        from ..scoring.batching import pad_batch, plan_batches

        features = self._features(examples)
        rng = np.random.default_rng([self.seed, int(epoch)])
        torch.manual_seed(self.seed + int(epoch))
        order = rng.permutation(len(features))
        device = model_device(self.model)
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                    and next(self.model.parameters()).dtype == torch.float32 else _Null())
        pad = pad_id(self.tokenizer)
        losses, rates = [], []
        self.model.train()
        for s in range(0, len(order), self.batch_size)[:self.steps_per_epoch]:
            batch = [features[i] for i in order[s:s + self.batch_size]]
            n_tokens = sum(int((labels[1:] != -100).sum()) for _, labels in batch)
            rates.append(float(self.scheduler.get_last_lr()[0]))
            total = 0.0
            for micro in plan_batches([len(ids) for ids, _ in batch], self.batch_tokens):
                ids, mask, _ = pad_batch([batch[i][0] for i in micro], pad, "right")
                labels, _, _ = pad_batch([batch[i][1] for i in micro], -100, "right")
                ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
                with autocast:
                    logits = self.model(input_ids=ids, attention_mask=mask).logits
                nll = torch.nn.functional.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                    ignore_index=-100, reduction="sum")
                (nll / max(n_tokens, 1)).backward()
                total += float(nll.detach())
            if self.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            losses.append(total / max(n_tokens, 1))
        self.model.eval()
        return EpochResult(np.asarray(losses), np.asarray(rates), len(features), self.step)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
