"""Run directories for the model-in-the-loop methods: state after every round, atomic writes,
resume.

A run directory holds::

    state.json             the last completed round: method, config, rounds_done, method state
    rounds/round_003.json  the report of each completed round (selection size, objective, ...)
    models/round_003/      a model checkpoint, for methods whose model carries over rounds
    report.json, plot.png  written by the command line at the end

Every file is written to a temporary name in the same folder and renamed over its target
(``os.replace``), and ``state.json`` is written last: a crash at any moment leaves the state of
the last completed round, and ``resume=True`` continues from it without losing or repeating a
round.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ._files import atomic_file
from .exceptions import RunError

STATE_FILE = "state.json"
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

    def __init__(self, path, *, method: str, config: dict, resume: bool = False):
        self.path = Path(path)
        self.method = method
        self.config = _plain(config)
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        saved = self._read_state()
        if saved is not None and not resume:
            raise RunError(f"{self.path}: already holds a run ({saved['rounds_done']} round(s) "
                           "done); pass resume=True to continue it or choose another directory")
        if saved is not None:
            if saved.get("method") != method:
                raise RunError(f"{self.path}: holds a {saved.get('method')!r} run, not {method!r}")
            if saved.get("config") != self.config:
                diff = sorted(k for k in set(saved.get("config", {})) | set(self.config)
                              if saved.get("config", {}).get(k) != self.config.get(k))
                raise RunError(f"{self.path}: was started with other settings (differing: "
                               f"{', '.join(diff)}); resume with the same settings")
        self._saved = saved

    def _read_state(self):
        file = self.path / STATE_FILE
        if not file.exists():
            return None
        try:
            with open(file, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{file}: cannot be read ({exc})") from None

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
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            if target.exists():  # left by a crash after the rename but before state.json
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def commit(self, report: dict, state: dict) -> None:
        """Record a completed round: its report, then the new state (the commit point)."""
        round_index = self.rounds_done
        atomic_write_json(dict(report, round=round_index), self.round_path(round_index))
        saved = {"format": FORMAT_VERSION, "method": self.method, "config": self.config,
                 "rounds_done": round_index + 1, "state": _plain(state)}
        atomic_write_json(saved, self.path / STATE_FILE)
        self._saved = json.loads(json.dumps(saved))

    def reports(self) -> list:
        """The reports of the completed rounds, in order."""
        out = []
        for r in range(self.rounds_done):
            with open(self.round_path(r), encoding="utf-8") as f:
                out.append(json.load(f))
        return out
