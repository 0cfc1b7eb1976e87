"""Atomic file writes: readers see the old file or the complete new one, never a part."""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path


@contextlib.contextmanager
def atomic_file(path, mode: str = "w"):
    """Open a temporary file beside ``path`` for writing; when the block ends without error it
    is flushed, fsynced and renamed over ``path``; on any error it is removed and ``path`` is
    left as it was. The parent folder is created if needed. The file gets the permissions of
    any file the user creates (0666 less the umask), not the temporary file's 0600, and an error
    names ``path``, never the temporary name.

    Examples
    --------
    >>> import os, tempfile
    >>> from iterselect._files import atomic_file
    >>> p = os.path.join(tempfile.mkdtemp(), "sub", "out.txt")
    >>> with atomic_file(p) as f:
    ...     _ = f.write("done")
    >>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
    ('done', ['out.txt'])
    >>> oct(os.stat(p).st_mode & 0o777) == oct(user_mode())
    True
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.fchmod(fd, user_mode())
        text = {} if "b" in mode else {"encoding": "utf-8"}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename != str(path):
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise


@contextlib.contextmanager
def atomic_directory(path):
    """Yield an empty temporary folder beside ``path`` to fill; when the block ends without
    error it replaces ``path`` (an old folder or file there is moved aside, then removed); on
    any error it is removed and ``path`` is left as it was (an error writing into it names
    ``path``, never the temporary name). The folder gets the permissions of any folder the user
    creates (0777 less the umask), not the temporary folder's 0700.

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
        os.chmod(tmp, user_mode(directory=True))
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno is not None:  # name the folder, not tmp
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    old = None
    if path.exists() or path.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent)) / "old"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def user_mode(directory: bool = False) -> int:
    """The permissions the user's umask gives a new file (or folder): what a temporary one from
    ``tempfile`` (0600, 0700) is set to before it takes its final name."""
    return (0o777 if directory else 0o666) & ~_umask()


def _umask() -> int:
    """The process's umask: from /proc where Linux shows it, else by setting it and putting it
    back (there is no getter, and setting it races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_GUARD:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_GUARD = threading.Lock()
