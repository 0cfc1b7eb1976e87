"""Wall time and peak memory of one call, and the extrapolation of what was cut short.

Peak memory is the largest rise of the process's resident set during the call over its size
when the call began: on Linux the kernel's high-water mark (``VmHWM``) is reset just before the
call (``/proc/self/clear_refs``) and read after it, so nothing is missed between samples;
elsewhere a thread samples the resident set every 5 ms (psutil). Memory the call allocates and
frees counts; memory allocated before it (the input) does not.
"""
from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import asdict, dataclass, field

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass
class Measured:
    """One timed call: ``seconds``, ``peak_bytes`` (rise of resident memory over the call's
    start; None when unknown) and, for an estimate, ``extrapolated=True`` with ``how``."""

    seconds: float | None
    peak_bytes: int | None = None
    cpu_seconds: float | None = None  # process CPU time, all threads (a check on a shared machine)
    extrapolated: bool = False
    how: str = ""
    status: str = "run"  # "run", "extrapolated", or "not run: <why>"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def not_run(cls, why: str) -> "Measured":
        return cls(None, None, status=f"not run: {why}")


def _status_kib(key: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_method() -> str:
    """How peak memory is measured on this machine (recorded in results.json)."""
    if _status_kib("VmHWM") is not None and _reset_high_water_mark():
        return ("Linux high-water mark: VmHWM reset through /proc/self/clear_refs before each "
                "call, peak rise = VmHWM after - VmRSS before")
    return "resident set sampled every 5 ms by a thread (psutil); peak rise over the call's start"


def _rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    import psutil

    return int(psutil.Process().memory_info().rss)


class _PeakMemory:
    """Context manager: ``.peak`` is the rise of resident memory during the block."""

    def __enter__(self):
        gc.collect()
        self.base = _rss_bytes()
        self.hwm = _reset_high_water_mark() and _status_kib("VmHWM") is not None
        self.peak = 0
        if not self.hwm:
            self._stop = threading.Event()
            self._max = self.base

            def sample():
                while not self._stop.is_set():
                    self._max = max(self._max, _rss_bytes())
                    time.sleep(0.005)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.hwm:
            top = _status_kib("VmHWM") * 1024
        else:
            self._stop.set()
            self._thread.join()
            top = max(self._max, _rss_bytes())
        self.peak = max(0, top - self.base)
        return False


def measure(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), Measured)``: the call's wall time, CPU time and peak memory rise.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.bench.measure import measure
    >>> out, m = measure(lambda: np.ones(4_000_000).sum())
    >>> float(out), m.seconds > 0, m.peak_bytes >= 0
    (4000000.0, True, True)
    """
    with _PeakMemory() as mem:
        t, c = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
    return out, Measured(seconds, mem.peak, cpu)


def scaled(measured: Measured, factor: float, how: str, memory_factor: float | None = None) -> Measured:
    """An estimate: ``measured``'s time times ``factor`` (and its memory times ``memory_factor``,
    kept as measured when None), marked extrapolated with ``how``."""
    peak, extra = measured.peak_bytes, dict(measured.extra)
    if peak is not None and memory_factor is not None:
        peak = int(peak * memory_factor)
        extra["memory_extrapolated"] = True
    cpu = None if measured.cpu_seconds is None else measured.cpu_seconds * factor
    return Measured(measured.seconds * factor, peak, cpu, True, how, "extrapolated", extra)


def power_law_estimate(n_from: int, measured: Measured, n_to: int, time_power: float,
                       memory_power: float) -> Measured:
    """Extrapolate a run on ``n_from`` rows to ``n_to`` rows: time as ``n ** time_power``,
    memory as ``n ** memory_power``."""
    r = n_to / n_from
    basis = f"estimated at N = {n_from:,} ({measured.how})" if measured.extrapolated else f"measured at N = {n_from:,}"
    how = f"{basis}, scaled as N^{time_power:g}"
    if memory_power != time_power:
        how += f" (memory as N^{memory_power:g})"
    return scaled(measured, r ** time_power, how, r ** memory_power)


def available_memory() -> int:
    """Bytes a new allocation can use now (the package's view: MemAvailable, cgroup limit,
    ITERSELECT_MAX_MEMORY)."""
    from .._memory import host_available

    return host_available()


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
