"""Fingerprints of a run's inputs (data files, embeddings, models), so that a resumed run can
prove it reads what the run started with.

A file's fingerprint is its size and a BLAKE2b hash of its bytes: all of them up to 64 MiB,
beyond that 64 blocks of 1 MiB spread evenly over the file (first and last included), which
keeps it cheap for a million records (a fraction of a second) while any change of length and
almost any rewrite is seen. Where the file lives is recorded but not compared, so a run whose
inputs were moved still resumes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

FULL_HASH_BYTES = 64 << 20
SAMPLE_BLOCKS = 64
BLOCK_BYTES = 1 << 20
_MODEL_FILES = (".json", ".safetensors", ".bin", ".model", ".txt", ".py", ".tiktoken", ".pt")


def file_fingerprint(path) -> dict:
    """``{"path", "size", "hash"}`` of a file (see the module's note on what is hashed).

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect._fingerprint import file_fingerprint
    >>> p = os.path.join(tempfile.mkdtemp(), "d.jsonl")
    >>> _ = open(p, "w").write('{"a": 1}\\n')
    >>> fp = file_fingerprint(p)
    >>> fp["size"], fp["hash"][:8]
    (9, 'blake2b:')
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            for chunk in iter(lambda: f.read(BLOCK_BYTES), b""):
                h.update(chunk)
        else:
            for offset in np.linspace(0, size - BLOCK_BYTES, SAMPLE_BLOCKS).astype(np.int64):
                f.seek(int(offset))
                h.update(f.read(BLOCK_BYTES))
    h.update(str(size).encode())
    return {"path": str(path.resolve()), "size": size, "hash": f"blake2b:{h.hexdigest()}"}


def path_fingerprint(path) -> dict:
    """The fingerprint of a file, or of a folder as the fingerprints of its files (sorted by
    name; hidden files left out), e.g. a model directory or a ``datasets`` folder."""
    path = Path(path)
    if not path.is_dir():
        return file_fingerprint(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    h = hashlib.blake2b(digest_size=16)
    size = 0
    for p in files:
        fp = file_fingerprint(p)
        size += fp["size"]
        h.update(f"{p.relative_to(path).as_posix()}\0{fp['hash']}\0".encode())
    return {"path": str(path.resolve()), "size": size, "hash": f"blake2b:{h.hexdigest()}",
            "files": len(files)}


def model_fingerprint(model) -> dict:
    """The fingerprint of a model given as a directory (its files, as :func:`path_fingerprint`),
    a hub name (the name only: which revision the hub serves is not checked), or an in-memory
    torch model (its class, and the shapes and a sample of 64 values of every parameter)."""
    if isinstance(model, (str, Path)):
        if Path(model).is_dir():
            fp = path_fingerprint(model)
            return dict(fp, kind="directory")
        return {"name": str(model), "kind": "hub name"}
    h = hashlib.blake2b(digest_size=16)
    count = 0
    named = (model.named_parameters() if hasattr(model, "named_parameters")
             else ((str(i), p) for i, p in enumerate(model.parameters())))
    for name, p in named:
        flat = p.detach().reshape(-1)
        idx = np.linspace(0, flat.numel() - 1, min(64, flat.numel())).astype(np.int64)
        sample = flat[idx].float().cpu().numpy()
        h.update(f"{name}\0{tuple(p.shape)}\0{p.dtype}\0".encode())
        h.update(sample.tobytes())
        count += int(p.numel())
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    return {"class": type(model).__name__, "name": name, "parameters": count,
            "hash": f"blake2b:{h.hexdigest()}", "kind": "in memory"}


def describe_changes(old: dict, new: dict) -> list:
    """What differs between two ``{label: fingerprint}`` records, one phrase per input, e.g.
    ``"--input: 2,048 -> 1,024 bytes"``; empty when they match (paths are not compared)."""
    changes = []
    for label in sorted(set(old) | set(new)):
        a, b = old.get(label), new.get(label)
        if a is None or b is None:
            changes.append(f"{label}: {'not given when the run started' if a is None else 'not given now'}")
            continue
        if {k: v for k, v in a.items() if k != "path"} == {k: v for k, v in b.items() if k != "path"}:
            continue
        where = f" (the run started from {a['path']})" if a.get("path") and a.get("path") != b.get("path") else ""
        if "name" in a and a.get("kind") != "in memory" and a.get("name") != b.get("name"):
            changes.append(f"{label}: {a.get('name')} -> {b.get('name')}")
        elif a.get("size") != b.get("size"):
            changes.append(f"{label}: {a['size']:,} -> {b['size']:,} bytes{where}")
        else:
            changes.append(f"{label}: same size, other contents{where}")
    return changes
