"""Fine-tuning on a selected subset (transformers Trainer, prompt tokens masked), and a resumable
trainer that keeps one optimizer and one schedule over epochs whose data changes.

Needs the ``torch`` extra (``pip install 'iterselect[torch]'``).
"""
from .continuous import ContinuousTrainer, EpochResult
from .finetune import FinetuneResult, finetune

__all__ = ["ContinuousTrainer", "EpochResult", "FinetuneResult", "finetune"]
