"""An exclusive lock on a directory (a run directory, an output folder): one process works in
it at a time.

The lock is the file ``.lock`` in the directory, held with ``flock`` for as long as the owner
runs and holding its process id, host and start time, so that a refusal can say who holds it.
The operating system drops an ``flock`` when its process dies, so the lock of a killed process
is stale and taken over at once; where ``flock`` is missing (or does not reach across machines,
as on some network file systems), a lock whose process is gone from this host is stale, and a
lock held from another host is refused with the owner named and the file to delete.

Within one process the lock is re-entrant: the command line takes it before its minutes of
embedding, and the method's run directory takes it again.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_FILE = ".lock"
_registry: dict = {}
_registry_guard = threading.Lock()


class LockedError(RuntimeError):
    """The directory is locked by another process (the message names it)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _owner(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(owner: dict) -> str:
    since = owner.get("since")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if since else ""
    return f"process {owner.get('pid', '?')} on {owner.get('host', '?')}{when}"


class DirectoryLock:
    """A held lock on ``path``; :meth:`release` (or leaving the ``with`` block) lets it go.

    Examples
    --------
    >>> import tempfile
    >>> from iterselect._lock import lock_directory
    >>> d = tempfile.mkdtemp()
    >>> with lock_directory(d) as held:
    ...     again = lock_directory(d)     # the same process may take it again
    ...     again.release()
    ...     held.owner["pid"] == __import__("os").getpid()
    True
    """

    def __init__(self, key: str, file: Path, fd: int, owner: dict):
        self.key, self.file, self._fd, self.owner = key, file, fd, owner
        self.count = 1

    def release(self, *, every_hold: bool = False) -> None:
        """Let go of one hold (the lock is released with the last), or of ``every_hold`` this
        process has (for a run abandoned before anything of it was kept)."""
        with _registry_guard:
            self.count = 0 if every_hold else self.count - 1
            if self.count > 0 or self._fd is None:
                return
            _registry.pop(self.key, None)
            try:
                if os.fstat(self._fd).st_ino == os.stat(self.file).st_ino:
                    os.unlink(self.file)  # while still held, so no one takes a file being removed
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_directory(path) -> DirectoryLock:
    """Take the exclusive lock on directory ``path`` (created if missing).

    Raises
    ------
    LockedError
        When another live process holds it: ``"RUN: in use by process 4242 on host-a since
        2025-01-01 12:00:00; wait for it to finish or stop it"``.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _registry_guard:
        held = _registry.get(key)
        if held is not None:
            held.count += 1
            return held
        file = path / LOCK_FILE
        while True:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o666)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = _owner(fd)
                    os.close(fd)
                    raise LockedError(f"{path}: in use by {_describe(owner)}; wait for it to finish "
                                      "or stop it") from None
            try:  # the previous owner may have removed the file between our open and flock
                same = os.fstat(fd).st_ino == os.stat(file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        owner = _owner(fd)
        here = socket.gethostname()
        if owner.get("pid") and owner.get("pid") != os.getpid():
            other_host = owner.get("host") != here
            if other_host or (fcntl is None and _pid_alive(int(owner["pid"]))):
                os.close(fd)
                hint = f"; if it is no longer running, delete {file}" if other_host else "; wait for it to finish or stop it"
                raise LockedError(f"{path}: in use by {_describe(owner)}{hint}")
        me = {"pid": os.getpid(), "host": here, "since": time.time()}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode())
        os.fsync(fd)
        lock = DirectoryLock(key, file, fd, me)
        _registry[key] = lock
        return lock
