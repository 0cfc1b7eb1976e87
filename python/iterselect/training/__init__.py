"""Fine-tuning on a selected subset (transformers Trainer, prompt tokens masked).

Needs the ``torch`` extra (``pip install 'iterselect[torch]'``).
"""
from .finetune import FinetuneResult, finetune

__all__ = ["FinetuneResult", "finetune"]
