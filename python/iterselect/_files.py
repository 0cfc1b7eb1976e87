"""Atomic file writes: readers see the old file or the complete new one, never a part."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_file(path, mode: str = "w"):
    """Open a temporary file beside ``path`` for writing; when the block ends without error it
    is flushed, fsynced and renamed over ``path``; on any error it is removed and ``path`` is
    left as it was. The parent folder is created if needed.

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect._files import atomic_file
    >>> p = os.path.join(tempfile.mkdtemp(), "sub", "out.txt")
    >>> with atomic_file(p) as f:
    ...     _ = f.write("done")
    >>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
    ('done', ['out.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        text = {} if "b" in mode else {"encoding": "utf-8"}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path):
    """Yield an empty temporary folder beside ``path`` to fill; when the block ends without
    error it replaces ``path`` (an old folder or file there is moved aside, then removed); on
    any error it is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect._files import atomic_directory
    >>> p = os.path.join(tempfile.mkdtemp(), "out")
    >>> with atomic_directory(p) as d:
    ...     _ = (d / "part.txt").write_text("done")
    >>> sorted(os.listdir(p))
    ['part.txt']
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists() or path.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent)) / "old"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)
