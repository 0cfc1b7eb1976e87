"""Run directories for the model-in-the-loop methods: state after every round, atomic writes,
resume.

A run directory holds::

    state.json             the last completed round: method, config, rounds_done, method state
    rounds/round_003.json  the report of each completed round (selection size, objective, ...)
    models/round_003/      a model checkpoint, for methods whose model carries over rounds
    report.json, plot.png  written by the command line at the end
    inputs.json            fingerprints of the files the run reads (data, embeddings, model)
    .lock                  held by the process working in the directory (pid, host)

Every file is written to a temporary name in the same folder and renamed over its target
(``os.replace``), and ``state.json`` is written last: a crash at any moment leaves the state of
the last completed round, and ``resume=True`` continues from it without losing or repeating a
round. One process at a time works in a run directory (the others are told which process holds
it), and a resume whose inputs differ from the ones the run started with is refused, naming what
changed.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import weakref
from pathlib import Path

import numpy as np

from ._files import atomic_directory, atomic_file
from ._fingerprint import describe_changes
from ._lock import LockedError, lock_directory
from .exceptions import RunError

STATE_FILE = "state.json"
INPUTS_FILE = "inputs.json"
FORMAT_VERSION = 1


def _plain(obj):
    """JSON-ready copy of ``obj``: numpy arrays and scalars become lists and Python numbers;
    non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(obj, path) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file in the same folder, fsync,
    ``os.replace``).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "s.json")
    >>> atomic_write_json({"ids": np.arange(3), "x": float("nan")}, p)
    >>> open(p).read()
    '{\\n  "ids": [\\n    0,\\n    1,\\n    2\\n  ],\\n  "x": null\\n}'
    """
    with atomic_file(path) as f:
        json.dump(_plain(obj), f, indent=2, allow_nan=False)


def fingerprint(records, *arrays) -> str:
    """A SHA-256 of ``records`` (JSON with sorted keys) and the bytes of ``arrays``: what a resume
    compares to refuse inputs that changed.

    Examples
    --------
    >>> import numpy as np
    >>> fingerprint([{"a": 1}], np.ones(2)) == fingerprint([{"a": 1}], np.ones(2))
    True
    >>> fingerprint([{"a": 1}], np.ones(2)) == fingerprint([{"a": 2}], np.ones(2))
    False
    """
    h = hashlib.sha256()
    h.update(json.dumps(records, sort_keys=True, default=str).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class RunDirectory:
    """The on-disk record of one multi-round run.

    Parameters
    ----------
    path : str or Path
        Created if missing.
    method : str
        The method's name; a resumed run must be of the same method.
    config : dict
        The run's settings (JSON-ready). A resumed run must have the same config, so that
        resuming can never mix two experiments.
    resume : bool, default=False
        Continue after the last completed round. Without it, a directory that already holds a
        state is refused (nothing is overwritten).
    inputs : dict, optional
        ``{label: fingerprint}`` of what the run reads (see :func:`claim_run`); a resume whose
        fingerprints differ is refused, naming each changed input.
    how_to_resume : str, default="pass resume=True"
        How the refusal of an existing run tells the user to continue it (the command line says
        ``--resume``).

    The directory is locked (``.lock``) while the object lives or until :meth:`close`.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> run = RunDirectory(d, method="demo", config={"k": 2})
    >>> run.rounds_done
    0
    >>> run.commit({"round": 0, "selected": [4, 1]}, {"selected": [4, 1]})
    >>> again = RunDirectory(d, method="demo", config={"k": 2}, resume=True)
    >>> again.rounds_done, again.state["selected"], [r["round"] for r in again.reports()]
    (1, [4, 1], [0])
    """

    def __init__(self, path, *, method: str, config: dict, resume: bool = False, inputs=None,
                 how_to_resume: str = "pass resume=True"):
        self.path = Path(path)
        self.method = method
        self.config = _plain(config)
        self._lock = _lock(self.path)
        self._release = weakref.finalize(self, self._lock.release)
        try:
            saved = _check_saved(self.path, method, resume, how_to_resume)
            if saved is not None and saved.get("config") != self.config:
                diff = sorted(k for k in set(saved.get("config", {})) | set(self.config)
                              if saved.get("config", {}).get(k) != self.config.get(k))
                raise RunError(f"{self.path}: was started with other settings (differing: "
                               f"{', '.join(diff)}); resume with the same settings")
            if inputs is not None:
                _check_inputs(self.path, inputs, resuming=saved is not None)
        except BaseException:
            self.close()
            raise
        self._saved = saved
        self._round_started = time.monotonic()

    def close(self) -> None:
        """Release the directory's lock (also done when the object is garbage-collected)."""
        self._release()

    @property
    def rounds_done(self) -> int:
        """Completed rounds (0 for a new run)."""
        return 0 if self._saved is None else int(self._saved["rounds_done"])

    @property
    def state(self) -> dict | None:
        """The method state saved with the last completed round (None for a new run)."""
        return None if self._saved is None else self._saved["state"]

    def round_path(self, round_index: int) -> Path:
        return self.path / "rounds" / f"round_{round_index:03d}.json"

    def model_path(self, round_index: int) -> Path:
        return self.path / "models" / f"round_{round_index:03d}"

    def save_model(self, model, tokenizer, round_index: int) -> Path:
        """Save a checkpoint (``save_pretrained``) under ``models/round_NNN`` atomically: written
        to a temporary folder, then renamed. Returns its path."""
        target = self.model_path(round_index)
        # a folder left there by a crash after the rename but before state.json is replaced
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
        return target

    def commit(self, report: dict, state: dict) -> None:
        """Record a completed round: its report, then the new state (the commit point) with the
        round's wall time (since the previous commit, or since the directory was opened)."""
        round_index = self.rounds_done
        seconds = self.seconds()[:round_index] + [time.monotonic() - self._round_started]
        atomic_write_json(dict(report, round=round_index), self.round_path(round_index))
        saved = {"format": FORMAT_VERSION, "method": self.method, "config": self.config,
                 "rounds_done": round_index + 1, "seconds": seconds, "state": _plain(state)}
        atomic_write_json(saved, self.path / STATE_FILE)
        self._saved = json.loads(json.dumps(saved))
        self._round_started = time.monotonic()

    def seconds(self) -> list:
        """Wall time of each completed round in seconds (kept apart from the reports, so that a
        resumed run's reports equal an uninterrupted run's)."""
        saved = (self._saved or {}).get("seconds") or []
        return [float(x) for x in saved] + [None] * (self.rounds_done - len(saved))

    def reports(self) -> list:
        """The reports of the completed rounds, in order."""
        out = []
        for r in range(self.rounds_done):
            with open(self.round_path(r), encoding="utf-8") as f:
                out.append(json.load(f))
        return out


VERSIONED = ("numpy", "scipy", "torch", "transformers", "tokenizers", "accelerate",
             "sentence-transformers", "faiss-cpu", "faiss-gpu", "scikit-learn", "ray", "matplotlib")


def environment() -> dict:
    """Python's and iterselect's versions and those of the installed libraries a run's numbers
    depend on, for a run's report.

    Examples
    --------
    >>> env = environment()
    >>> sorted(env)[:3], "numpy" in env["packages"]
    (['iterselect', 'packages', 'platform'], True)
    """
    import platform
    import sys
    from importlib import metadata

    from . import __version__

    packages = {}
    for name in VERSIONED:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"iterselect": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": packages}


def _lock(path: Path):
    if path.exists() and not path.is_dir():
        raise RunError(f"{path}: exists and is not a directory")
    try:
        return lock_directory(path)
    except LockedError as exc:
        raise RunError(str(exc)) from None


def round_seconds(path) -> list:
    """The wall time of each completed round of the run in ``path`` (None where not recorded).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> RunDirectory(d, method="demo", config={}).commit({}, {})
    >>> [s >= 0 for s in round_seconds(d)]
    [True]
    """
    saved = _read_state(Path(path)) or {}
    done = int(saved.get("rounds_done", 0))
    seconds = [float(x) for x in saved.get("seconds") or []]
    return seconds + [None] * (done - len(seconds))


def _read_state(path: Path):
    file = path / STATE_FILE
    if not file.exists():
        return None
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{file}: cannot be read ({exc})") from None


def _check_saved(path: Path, method: str, resume: bool, how_to_resume: str):
    """The saved state, after refusing a run that exists without resume or is of another
    method."""
    saved = _read_state(path)
    if saved is not None and not resume:
        raise RunError(f"{path}: already holds a run ({saved['rounds_done']} round(s) done); "
                       f"{how_to_resume} to continue it or choose another directory")
    if saved is not None and saved.get("method") != method:
        raise RunError(f"{path}: holds a {saved.get('method')!r} run, not {method!r}")
    return saved


def _check_inputs(path: Path, inputs: dict, *, resuming: bool) -> None:
    """Refuse a resume whose inputs differ from the recorded ones; record them for a new run."""
    file = path / INPUTS_FILE
    inputs = _plain(inputs)
    if resuming and file.exists():
        with open(file, encoding="utf-8") as f:
            changes = describe_changes(json.load(f), inputs)
        if changes:
            raise RunError(f"{path}: the inputs differ from the ones the run started with "
                           f"({'; '.join(changes)}); resume with the same inputs or start a new run")
    elif not resuming:
        atomic_write_json(inputs, file)


class RunClaim:
    """A run directory reserved by :func:`claim_run`: locked until :meth:`release` (or the end
    of the ``with`` block). A claim that ends by an error before the run saved a round removes
    the directory it created, so a refused command leaves nothing behind."""

    def __init__(self, path: Path, lock, created: bool):
        self.path, self._lock, self._created = path, lock, created

    def release(self, failed: bool = False) -> None:
        abandoned = failed and self._created and _read_state(self.path) is None
        if abandoned:
            (self.path / INPUTS_FILE).unlink(missing_ok=True)
        self._lock.release(every_hold=abandoned)  # a run object kept by a traceback holds it too
        if abandoned:
            try:
                self.path.rmdir()  # only if nothing else was written there
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.release(failed=exc_type is not None)


def claim_run(path, *, method: str, resume: bool, inputs: dict,
              how_to_resume: str = "pass resume=True") -> RunClaim:
    """Reserve a run directory before the expensive work: lock it, refuse an existing run
    without ``resume`` or of another method, and on resume refuse inputs that differ from the
    recorded ones (a new run records them in ``inputs.json``).

    Parameters
    ----------
    path : str or Path
    method : str
    resume : bool
    inputs : dict
        ``{label: fingerprint}``, e.g. ``{"--input": file_fingerprint(path), "--model":
        model_fingerprint(model)}`` (see :mod:`iterselect._fingerprint`).
    how_to_resume : str
        The words that tell the user how to continue an existing run.

    Examples
    --------
    >>> import tempfile
    >>> from iterselect.runs import RunDirectory, claim_run
    >>> d = tempfile.mkdtemp()
    >>> with claim_run(d, method="demo", resume=False, inputs={"data": {"size": 3, "hash": "x"}}):
    ...     RunDirectory(d, method="demo", config={}).commit({}, {})
    >>> try:
    ...     claim_run(d, method="demo", resume=True, inputs={"data": {"size": 4, "hash": "y"}})
    ... except RunError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    the inputs differ from the ones the run started with (data: 3 -> 4 bytes); resume with the same inputs or start a new run
    """
    path = Path(path)
    created = not path.exists()
    lock = _lock(path)
    claim = RunClaim(path, lock, created)
    try:
        saved = _check_saved(path, method, resume, how_to_resume)
        _check_inputs(path, inputs, resuming=saved is not None)
    except BaseException:
        claim.release(failed=True)
        raise
    return claim
