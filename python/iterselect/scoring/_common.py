"""Small helpers shared by the scorers: model device and dtype, special token ids, length limits."""
from __future__ import annotations

import inspect

from .._validation import check_int, param_error


def model_device(model):
    """The device of the model's first parameter (CPU for a model without parameters)."""
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def model_dtype(model):
    """The dtype of the model's first parameter (float32 for a model without parameters)."""
    import torch

    for p in model.parameters():
        return p.dtype
    return torch.float32


def check_model(model, func: str, name: str = "model"):
    """Refuse anything that is not a torch module (a path, a name, None)."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise param_error(func, name, "a torch.nn.Module (e.g. from load_model)",
                          type(model).__name__, TypeError)
    return model


def check_tokenizer(tokenizer, func: str, name: str = "tokenizer"):
    """Refuse anything that does not look like a transformers tokenizer."""
    if (tokenizer is None or not callable(tokenizer)
            or not hasattr(tokenizer, "convert_tokens_to_ids")):
        raise param_error(func, name, "a transformers tokenizer (e.g. from load_tokenizer)",
                          type(tokenizer).__name__, TypeError)
    return tokenizer


def pad_id(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad token, else its EOS token, else 0.

    Padded positions are always masked out, so the value only matters to models that look for
    it (sequence classifiers find their last token by it).
    """
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def max_positions(model) -> int | None:
    """The longest sequence the model's position embeddings allow (None when unknown)."""
    config = getattr(model, "config", None)
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def resolve_max_length(max_length, model, func: str, low: int = 1) -> int | None:
    """``max_length`` validated, or the model's limit when it is None."""
    limit = max_positions(model)
    if max_length is None:
        return limit
    return check_int(max_length, "max_length", func, low=low, high=limit)


def accepts(module, argument: str) -> bool:
    """Whether ``module.forward`` takes ``argument``, by name or through ``**kwargs``.

    Wrappers (PEFT models, hooks) pass keyword arguments on to the wrapped model, so a
    ``**kwargs`` forward counts as accepting; callers check the output shapes they get back.
    """
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return argument in params or any(p.kind is inspect.Parameter.VAR_KEYWORD
                                     for p in params.values())


def check_padding_side(padding_side, func: str) -> str:
    if padding_side is None:
        return "right"
    if padding_side not in ("left", "right"):
        raise param_error(func, "padding_side", "one of {'left', 'right'} or None", padding_side)
    return padding_side


def check_texts(texts, func: str, name: str = "texts") -> list[str]:
    """A non-empty list of strings; the first non-string is named by its index."""
    if isinstance(texts, str) or texts is None or not hasattr(texts, "__len__"):
        got = texts if texts is None else type(texts).__name__
        raise param_error(func, name, "a list of str", got, TypeError)
    texts = list(texts)
    if not texts:
        raise param_error(func, name, "a non-empty list of str", texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise param_error(func, name, "a list of str",
                              f"{type(t).__name__} at index {i}", TypeError)
    return texts
