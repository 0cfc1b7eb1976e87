"""Stand-ins for a transformers model and tokenizer in tests that pin a method's loop: they are
copied and saved like the real ones, and do nothing else."""
from __future__ import annotations


class FakeModel:
    """Copied for every round (``copy.deepcopy``) and saved as one small file."""

    def parameters(self):
        return iter(())

    def save_pretrained(self, path):
        with open(f"{path}/weights.txt", "w") as f:
            f.write("fake")


class FakeTokenizer:
    chat_template = None
    eos_token = "</s>"

    def save_pretrained(self, path):
        pass


class FakeFit:
    """What a fine-tuning step returns, as far as the loops read it."""

    train_loss = 0.5
    recipe = {"epochs": 3}
