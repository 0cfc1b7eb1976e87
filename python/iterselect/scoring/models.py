"""Load models and tokenizers from a local directory or a Hugging Face hub name."""
from __future__ import annotations

import os

from .._validation import check_choice, param_error

TASKS = ("causal-lm", "sequence-classification", "base")


def _check_name(name_or_path, func):
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise param_error(func, "name_or_path", "a local directory or a hub name (str)",
                          name_or_path, TypeError)
    return os.fspath(name_or_path)


def _default_dtype(device):
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model(name_or_path, *, task="causal-lm", dtype=None, device=None, **kwargs):
    """Load a transformers model for scoring or fine-tuning, in eval mode.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A local directory (as written by ``save_pretrained``) or a hub name (downloaded unless
        ``HF_HUB_OFFLINE=1``).
    task : {"causal-lm", "sequence-classification", "base"}, default="causal-lm"
        ``AutoModelForCausalLM``, ``AutoModelForSequenceClassification`` (reward models) or
        ``AutoModel``.
    dtype : torch.dtype, optional
        Defaults to bfloat16 on a CUDA device that supports it, float32 otherwise.
    device : str or torch.device, optional
        Defaults to ``"cuda"`` when available, else ``"cpu"``.
    **kwargs
        Passed to ``from_pretrained`` (e.g. ``revision``, ``attn_implementation``).

    Returns
    -------
    transformers.PreTrainedModel

    Examples
    --------
    >>> import tempfile
    >>> from iterselect.scoring import load_model
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     model.save_pretrained(d)
    ...     loaded = load_model(d, device="cpu")
    >>> type(loaded).__name__, loaded.dtype, loaded.training
    ('GPT2LMHeadModel', torch.float32, False)
    """
    import torch
    import transformers

    func = "load_model"
    path = _check_name(name_or_path, func)
    check_choice(task, "task", func, TASKS)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype is None:
        dtype = _default_dtype(device)
    elif not isinstance(dtype, torch.dtype):
        raise param_error(func, "dtype", "a torch.dtype or None", dtype, TypeError)
    cls = {"causal-lm": transformers.AutoModelForCausalLM,
           "sequence-classification": transformers.AutoModelForSequenceClassification,
           "base": transformers.AutoModel}[task]
    try:
        model = cls.from_pretrained(path, dtype=dtype, **kwargs)
    except (OSError, ValueError) as e:
        where = "directory" if os.path.isdir(path) else "hub name or directory"
        raise OSError(f"load_model could not load a {task} model from the {where} {path!r}: "
                      f"{e}") from e
    if task == "causal-lm" and getattr(model, "loss_type", "") is None:
        model.loss_type = "ForCausalLM"  # what it uses anyway; GPT-2 would warn on every forward
    return model.to(device).eval()


def load_tokenizer(name_or_path, *, padding_side=None, **kwargs):
    """Load a tokenizer from a local directory or a hub name.

    Parameters
    ----------
    name_or_path : str or os.PathLike
    padding_side : {"left", "right"}, optional
        Set on the tokenizer when given (scorers choose their own side regardless).
    **kwargs
        Passed to ``AutoTokenizer.from_pretrained``.

    Returns
    -------
    transformers tokenizer

    Examples
    --------
    >>> import tempfile
    >>> from iterselect.scoring import load_tokenizer
    >>> from iterselect.scoring.toy import toy_tokenizer
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = toy_tokenizer().save_pretrained(d)
    ...     tok = load_tokenizer(d)
    >>> tok.eos_token, tok.chat_template is not None
    ('</s>', True)
    """
    import transformers

    func = "load_tokenizer"
    path = _check_name(name_or_path, func)
    if padding_side is not None:
        check_choice(padding_side, "padding_side", func, ("left", "right"))
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        where = "directory" if os.path.isdir(path) else "hub name or directory"
        raise OSError(f"load_tokenizer could not load a tokenizer from the {where} {path!r}: "
                      f"{e}") from e
    if padding_side is not None:
        tok.padding_side = padding_side
    return tok
