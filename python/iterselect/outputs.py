"""Output safety for every command: no output is one of its inputs, and nothing existing is
replaced unless asked.

Each command names its inputs (records, embeddings, scores, models) and its outputs (selections,
reports, embeddings, run directories) and calls :func:`check_outputs` before it reads anything
big, so that a slip such as ``--input data.jsonl --output data.jsonl`` is refused before any
work is done, not discovered after the input was overwritten.
"""
from __future__ import annotations

import os
from pathlib import Path


class OutputError(ValueError):
    """An output path that would overwrite an input, another output, or an existing file."""


def same_file(a, b) -> bool:
    """True when paths ``a`` and ``b`` name the same file: equal once resolved (symbolic links,
    ``..``), or the same inode on the same device (hard links, bind mounts).

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect.outputs import same_file
    >>> d = tempfile.mkdtemp()
    >>> a = os.path.join(d, "a.jsonl"); _ = open(a, "w").write("{}")
    >>> os.link(a, os.path.join(d, "hard.jsonl"))
    >>> same_file(a, os.path.join(d, "hard.jsonl")), same_file(a, os.path.join(d, "x", "..", "a.jsonl"))
    (True, True)
    >>> same_file(a, os.path.join(d, "b.jsonl"))
    False
    """
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:  # one of them does not exist (yet): only the names could match
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_outputs(inputs: dict, outputs: dict, *, force: bool = False) -> None:
    """Refuse outputs that would destroy data, before any work is done.

    Parameters
    ----------
    inputs : dict
        ``{label: path}`` of everything the command reads (a label is what the user typed, e.g.
        ``"--input"``; a path may be None when not given, or a list for repeated flags).
    outputs : dict
        ``{label: path}`` of the files the command writes (None when not given).
    force : bool, default=False
        Allow replacing an existing output file (never an input).

    Raises
    ------
    OutputError
        When an output is the same file as an input (compared by resolved path and inode), lies
        inside an input folder or holds an input, two outputs are the same file, an output is an
        existing directory other than a saved ``datasets`` folder (which a selection in that
        format replaces), or an output exists and ``force`` is False. The message names the
        flags and the path.

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect.outputs import OutputError, check_outputs
    >>> d = tempfile.mkdtemp(); data = os.path.join(d, "data.jsonl")
    >>> _ = open(data, "w").write("{}")
    >>> try:
    ...     check_outputs({"--input": data}, {"--output": data})
    ... except OutputError as exc:
    ...     print(str(exc).replace(d, "D"))
    --output D/data.jsonl is the same file as --input; choose another output path
    >>> check_outputs({"--input": data}, {"--output": os.path.join(d, "picked.jsonl")})
    """
    ins = list(_flatten(inputs))
    outs = list(_flatten(outputs))
    for i, (out_label, out) in enumerate(outs):
        for in_label, src in ins:
            if same_file(out, src):
                raise OutputError(f"{out_label} {out} is the same file as {in_label}; choose another "
                                  "output path")
            if _inside(out, src) or _inside(src, out):
                raise OutputError(f"{out_label} {out} and {in_label} {src} lie one inside the other; "
                                  "choose an output path outside the input")
        for other_label, other in outs[:i]:
            if same_file(out, other):
                raise OutputError(f"{out_label} {out} is the same file as {other_label}; give them "
                                  "different paths")
        if out.is_dir() and not _saved_dataset(out):
            raise OutputError(f"{out_label} {out} is a directory (not a saved datasets folder); "
                              "give a file path")
        if out.exists() and not force:
            raise OutputError(f"{out_label} {out} exists; pass --force to replace it, or choose "
                              "another path")


def _inside(path: Path, folder: Path) -> bool:
    """``path`` lies strictly inside the directory ``folder`` (after resolving links)."""
    if not folder.is_dir():
        return False
    a, b = path.resolve(), folder.resolve()
    return a != b and b in a.parents


def _saved_dataset(folder: Path) -> bool:
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists()


def _flatten(named: dict):
    for label, value in named.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is not None:
                yield label, Path(v)
