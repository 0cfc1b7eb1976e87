"""Fine-tuning on a selected subset (AdamW, warm-up, schedule; prompt tokens masked).

Needs the ``torch`` extra (``pip install 'iterselect[torch]'``).
"""
from .finetune import Finetuner, FinetuneResult, finetune
from .recipe import SCHEDULERS, TrainConfig

__all__ = ["FinetuneResult", "Finetuner", "SCHEDULERS", "TrainConfig", "finetune"]
