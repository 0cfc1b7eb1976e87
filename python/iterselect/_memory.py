"""How much memory a call may use, and the refusal of work that cannot fit (before allocating)."""
from __future__ import annotations

import os


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup v2 (or v1) memory limit, when one is set."""
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path) as f:
                raw = f.read().strip()
            if raw == "max":
                return None
            limit = int(raw)
            if limit >= 1 << 60:  # v1's "unlimited"
                return None
            with open(usage_path) as f:
                usage = int(f.read().strip())
            return max(0, limit - usage)
        except (OSError, ValueError):
            continue
    return None


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _env_limit() -> int | None:
    """``ITERSELECT_MAX_MEMORY`` in bytes (a number, optionally with K, M, G or T: powers of 1024)."""
    raw = os.environ.get("ITERSELECT_MAX_MEMORY", "").strip().upper().removesuffix("IB").removesuffix("B")
    if not raw:
        return None
    unit = raw[-1] if raw[-1] in _UNITS else ""
    try:
        return int(float(raw[:len(raw) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise ValueError(f"ITERSELECT_MAX_MEMORY must be a size such as 8G or 512M. Got "
                         f"{os.environ['ITERSELECT_MAX_MEMORY']!r} instead.") from None


def host_available() -> int:
    """Bytes of host memory a new allocation can use: MemAvailable, capped by a cgroup limit and
    by ``ITERSELECT_MAX_MEMORY`` when set (e.g. ``8G``: a share of a machine that others use)."""
    candidates = [v for v in (_meminfo_available(), _cgroup_room(), _env_limit()) if v is not None]
    if not candidates:
        try:
            import psutil

            candidates.append(int(psutil.virtual_memory().available))
        except ImportError:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(candidates)


def device_available(obj) -> int:
    """Free bytes on the CUDA device that holds ``obj`` (a torch tensor or cupy array)."""
    from ._arrays import array_kind

    if array_kind(obj) == "torch":
        import torch

        return int(torch.cuda.mem_get_info(obj.device)[0])
    import cupy

    with cupy.cuda.Device(obj.device.id):
        return int(cupy.cuda.runtime.memGetInfo()[0])


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB"
