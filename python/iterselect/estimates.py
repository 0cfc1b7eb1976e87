"""Estimates before long work: each step's time from a short calibration run on data of the
same shape, its memory from the sizes, and the choice it made (mode, dtype, block, threads).

A :class:`Plan` collects the steps of a command. It names the steps worth announcing (over about
a minute, or over a quarter of the free memory) and the first step that cannot fit, with the
option that would (:meth:`Plan.problem`), so a command can stop before it allocates anything.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._memory import gib, host_available

NOTICE_SECONDS = 60.0
NOTICE_MEMORY_FRACTION = 0.25
_KCENTER_CALIBRATION_ROWS = 16384


def cpu_threads() -> int:
    """CPU threads this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Step:
    """One step of a plan.

    Attributes
    ----------
    name : str
        What the step does, with its sizes.
    seconds : float or None
        Expected time (None: not estimated, said why in ``basis``).
    memory : int
        Bytes of memory the step allocates.
    choice : str
        What was chosen for it (mode, dtype, block size, threads).
    basis : str
        Where the time comes from (the calibration run) or why there is none.
    disk : int
        Bytes the step writes to disk (checked against the free space of ``disk_path``).
    disk_path : Path, optional
    instead : str
        The option to use when the step does not fit.
    """

    name: str
    seconds: float | None
    memory: int
    choice: str = ""
    basis: str = ""
    disk: int = 0
    disk_path: Path | None = None
    instead: str = ""

    def line(self) -> str:
        if self.seconds is None:
            time_ = "time not estimated"
        else:
            time_ = "under 1 s" if self.seconds < 0.5 else f"about {duration(self.seconds)}"
        parts = [f"{self.name}: {time_}", f"memory {size(self.memory)}"]
        if self.disk:
            parts.append(f"disk {size(self.disk)}")
        text = ", ".join(parts)
        if self.choice:
            text += f"; {self.choice}"
        if self.basis:
            text += f" ({self.basis})"
        return text


@dataclass
class Plan:
    """The steps of a command, with the memory available when it was made.

    Examples
    --------
    >>> from iterselect.estimates import Plan, Step
    >>> plan = Plan(memory_available=2**30)
    >>> _ = plan.add(Step("dense affinity propagation, n=20,000", 120.0, 4_800_000_000,
    ...                   instead="the sparse mode (n_neighbors=32)"))
    >>> print(plan.problem())
    dense affinity propagation, n=20,000 needs 4.5 GiB of memory but 1.0 GiB is available; use the sparse mode (n_neighbors=32)
    """

    memory_available: int = field(default_factory=host_available)
    steps: list = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def notable(self) -> list:
        """Steps expected to take over a minute or over a quarter of the free memory."""
        return [s for s in self.steps
                if (s.seconds or 0) > NOTICE_SECONDS
                or s.memory > NOTICE_MEMORY_FRACTION * self.memory_available]

    def lines(self, everything: bool = True) -> list:
        steps = self.steps if everything else self.notable()
        head = f"plan ({size(self.memory_available)} of memory available, {cpu_threads()} CPU threads):"
        return [head] + [f"  {s.line()}" for s in steps] if steps else []

    def problem(self) -> str | None:
        """Why the plan cannot run (the first step that does not fit), or None."""
        for s in self.steps:
            if s.memory > self.memory_available:
                return (f"{s.name} needs {size(s.memory)} of memory but {size(self.memory_available)} "
                        f"is available" + (f"; use {s.instead}" if s.instead else ""))
            if s.disk and s.disk_path is not None:
                free = shutil.disk_usage(_existing_parent(s.disk_path)).free
                if s.disk > free:
                    return (f"{s.name} writes {size(s.disk)} but {s.disk_path.parent} has "
                            f"{size(free)} free" + (f"; use {s.instead}" if s.instead else ""))
        return None


def _existing_parent(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"2 h 05 min"``."""
    s = max(1, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def size(nbytes: float) -> str:
    if nbytes < 2**20:
        return f"{nbytes / 2**10:.0f} KiB" if nbytes >= 2**10 else f"{int(nbytes)} bytes"
    if nbytes < 2**30:
        return f"{nbytes / 2**20:.1f} MiB"
    return gib(nbytes)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _sample(rows: int, d: int, dtype, seed: int = 0) -> np.ndarray:
    """Data of the input's shape and dtype for a calibration run (the kernels' time does not
    depend on the values)."""
    return np.random.default_rng(seed).standard_normal((rows, d)).astype(dtype)


def _dtype_name(dtype) -> str:
    return dtype if isinstance(dtype, str) else np.dtype(dtype).name


# ---------------------------------------------------------------- the steps

def embedding_step(n: int, calibration: tuple | None, dim: int, *, model: str,
                   in_memory: bool, dtype: str = "float32", output: Path | None = None,
                   chunk_size: int = 1024, calibrated_on: int = 0) -> Step:
    """Embedding ``n`` records: into memory (N x d) or into a ``.npy`` file. ``calibration``:
    :func:`calibrate_embedding`'s result (None: not calibrated)."""
    item = np.dtype(dtype).itemsize
    seconds_per_record, activations = calibration or (None, 0)
    if in_memory:
        memory, disk = n * dim * item + activations, 0
        where = f"in memory ({dtype})"
        instead = ("`iterselect embed --input FILE --output emb.npy` first (a memory-mapped "
                   "file; --batch-size 16 needs less memory for the model's activations), then "
                   "--embeddings emb.npy")
    else:
        memory, disk = chunk_size * dim * 8 + activations, n * dim * item
        where = f"to {output} ({dtype}, memory-mapped, chunks of {chunk_size:,})"
        instead = ("a smaller --batch-size (less memory for the model's activations), an "
                   "--output on a disk with more free space, or --dtype float16")
    basis = (f"calibrated on {calibrated_on} records" if calibrated_on else "not calibrated")
    return Step(f"embed {n:,} records with {model}", None if seconds_per_record is None
                else seconds_per_record * n, memory, choice=f"{where}, {cpu_threads()} threads",
                basis=basis, disk=disk, disk_path=output, instead=instead)


def calibrate_embedding(model, texts, *, batch_size: int = 64) -> tuple[float, int]:
    """``(seconds per record, bytes)`` of ``model`` on ``texts`` (a few dozen of the input's own
    texts), after one warm-up batch: the time, and the memory the run added at its peak (the
    model's activations; 0 where the peak cannot be measured)."""
    from .scoring.embeddings import embed_sentences

    texts = list(texts)
    embed_sentences(model, texts[:2], batch_size=batch_size, progress=False)
    before = _reset_peak()
    seconds = _timed(lambda: embed_sentences(model, texts, batch_size=batch_size, progress=False))
    peak = _proc_status("VmHWM") if before else None
    scale = max(1.0, batch_size / len(texts))  # activations grow with the batch
    extra = int(max(0, peak - before) * scale) if peak else 0
    return seconds / len(texts), extra


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> int | None:
    """Reset this process's peak resident size to the current one (Linux); the current size,
    or None where it cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _proc_status("VmRSS")


def kcenter_step(n: int, d: int, k: int, *, dtype="float32", metric="euclidean",
                 threads: int | None = None, rows=None) -> Step:
    """k-center greedy: at most k + 1 passes over the N x d rows; working memory a few vectors
    of length N. Timed on the first rows of the input when ``rows`` is given (else on random
    rows of its shape); the lazy loop's later picks touch fewer rows than its first ones, so the
    time is an upper bound (2 to 3 times the measured time on Dolly's MiniLM embeddings)."""
    from .kcenter import kcenter_greedy

    m = min(n, _KCENTER_CALIBRATION_ROWS)
    picks = min(16, m - 1) if m > 1 else 1
    X = np.asarray(rows[:m]) if rows is not None else _sample(m, d, dtype)
    kcenter_greedy(X[:64], 1, metric=metric, threads=threads, progress=False)  # warm the pool
    t = _timed(lambda: kcenter_greedy(X, picks, metric=metric, threads=threads, progress=False,
                                      min_distances=False))
    seconds = t / (m * (picks + 1)) * n * (k + 1)
    return Step(f"k-center greedy, {k:,} of {n:,} rows (d={d})", seconds, 24 * n,
                choice=f"{_dtype_name(dtype)} rows, float32 sums, lazy, "
                       f"{threads or cpu_threads()} threads",
                basis=f"upper bound, calibrated on {m:,} rows x {picks} picks")


def knn_step(n: int, d: int, *, dtype="float32", metric="euclidean") -> Step:
    """The kNN-1 distance baseline: all N^2 pairs, in blocks."""
    from .methods.baselines import knn_block_size, knn_distance, knn_memory

    block = knn_block_size(n, d)
    m = min(n, 1024)
    X = _sample(m, d, dtype)
    t = _timed(lambda: knn_distance(X, 1, metric=metric, block_size=min(block, m)))
    seconds = t / (m * m) * n * n
    return Step(f"kNN-1 distances, {n:,} rows (d={d})", seconds, knn_memory(block, n, d),
                choice=f"exact, float64, blocks of {block:,} rows",
                basis=f"calibrated on {m:,} rows")


def deita_step(n: int, d: int, k: int) -> Step:
    return Step(f"DEITA filter, {k:,} of {n:,} rows (d={d})", None, 8 * (k * d + 2 * n),
                basis="its time depends on how many records the threshold rejects")


def dense_ap_memory(n: int, itemsize: int, history: bool) -> int:
    """S, R and A (n x n each), plus the history and its distance matrix when used."""
    return (3 + (1 if history else 0)) * n * n * itemsize + (n * n * 8 if history else 0)


def dense_ap_step(n: int, d: int, *, dtype=np.float64, history: bool, max_iter: int = 200,
                  what: str = "affinity propagation") -> Step:
    """Dense affinity propagation on n points: memory from the sizes, time per iteration from a
    short run on 256 points, for all ``max_iter`` iterations (an upper bound)."""
    from .affinity import affinity_propagation

    dt = np.dtype(dtype)
    m = min(n, 256)
    X = _sample(m, d, np.float32)
    iters = 20
    with warnings.catch_warnings():  # the calibration run stops before it converges, on purpose
        warnings.simplefilter("ignore")
        t = _timed(lambda: affinity_propagation(X, max_iter=iters, convergence_iter=iters + 1,
                                                dtype=dt, progress=False))
    seconds = t / (m * m * iters) * n * n * max_iter
    return Step(f"{what}, n={n:,}", seconds, dense_ap_memory(n, dt.itemsize, history),
                choice=f"dense, {dt.name}, {cpu_threads()} threads",
                basis=f"upper bound ({max_iter} iterations), calibrated on {m} points")


def sparse_ap_step(n: int, n_neighbors: int, *, dtype=np.float64, history: bool,
                   what: str = "affinity propagation") -> Step:
    """Affinity propagation on the symmetrized kNN graph of n points: the memory of S, R and A
    (and the history) on its entries, at most n (2 k + 1) of them; the time is not estimated."""
    dt = np.dtype(dtype)
    entries = n * (2 * n_neighbors + 1)
    memory = entries * (3 + (1 if history else 0)) * dt.itemsize
    return Step(f"{what}, n={n:,}", None, memory,
                choice=f"sparse ({n_neighbors} neighbours a point), {dt.name}",
                basis=f"memory for at most {entries:,} graph entries; time not estimated")


def dense_ap_fits(memory: int, itemsize: int, history: bool) -> int:
    """The largest n whose dense affinity propagation fits in ``memory`` bytes."""
    per = (3 + (1 if history else 0)) * itemsize + (8 if history else 0)
    return int((memory / per) ** 0.5)
