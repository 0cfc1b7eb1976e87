"""What a benchmark ran on: machine, CPU flags, threads, library versions, git revision."""
from __future__ import annotations

import importlib
import os
import platform
import subprocess
from pathlib import Path

# the flags that decide which vector paths the kernels, numpy's BLAS and faiss can take
_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                      "avx512dq", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                      "neon", "asimd", "sve")
_VERSIONED = ("numpy", "scipy", "sklearn", "faiss", "vendi_score", "apricot", "numba", "torch",
              "transformers", "tokenizers", "matplotlib", "psutil", "tqdm")


def _cpuinfo() -> dict:
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "flags", "Features") and key not in info:
                    info[key] = value.strip()
    except OSError:
        pass
    return info


def cpu_flags() -> list[str]:
    """The CPU's instruction-set flags that matter for the kernels (Linux /proc/cpuinfo)."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in _FLAGS_OF_INTEREST if f in flags]


def versions() -> dict:
    """Version of every library the benchmark may use (None when not installed)."""
    from .. import __version__

    out = {"python": platform.python_version(), "iterselect": __version__}
    for name in _VERSIONED:
        try:
            module = importlib.import_module(name)
            out[name] = getattr(module, "__version__", "installed")
        except Exception:  # an installed but broken module is reported, not fatal
            out[name] = None
    return out


def git_revision() -> str | None:
    """The commit of the checkout the package runs from (with "-dirty" for local changes), or
    None for an installed package."""
    here = Path(__file__).resolve().parents[3]
    if not (here / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def threads() -> dict:
    """The threads each library uses by default here."""
    out = {"cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        out["usable_cpus"] = len(os.sched_getaffinity(0))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITERSELECT_SIMD"):
        if os.environ.get(var):
            out[var] = os.environ[var]
    out["iterselect"] = "all usable CPUs (threads=None)"
    try:
        import faiss

        out["faiss"] = int(faiss.omp_get_max_threads())
    except Exception:
        pass
    try:
        import torch

        out["torch"] = int(torch.get_num_threads())
    except Exception:
        pass
    return out


def instruction_path(kernel: str) -> dict:
    """The vector path a kernel's CPU code takes here.

    iterselect's C++ kernels report it through ``iterselect._core.simd_info()`` where the build
    has it (``{'path', 'flags', 'supported'}``); IFD runs in torch, whose CPU capability is
    reported instead.
    """
    if kernel == "ifd":
        try:
            import torch

            return {"path": str(torch.backends.cpu.get_cpu_capability()), "by": "torch"}
        except Exception as exc:
            return {"path": "not reported", "why": str(exc)}
    from .._backends import core

    info = getattr(core, "simd_info", None)
    if info is None:
        return {"path": "not reported", "why": "this build's iterselect._core has no simd_info()"}
    d = dict(info())
    return {"path": d.get("path"), "flags": d.get("flags"), "supported": d.get("supported")}


def machine() -> dict:
    """Machine, CPU, memory, threads, versions, git revision and iterselect's backends."""
    from .. import backends
    from .measure import load_average, memory_method

    info = _cpuinfo()
    total = None
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pass
    return {"platform": platform.platform(), "machine": platform.machine(),
            "cpu": info.get("model name") or platform.processor() or platform.machine(),
            "cpu_flags": cpu_flags(), "memory_bytes": total, "threads": threads(),
            "load_average_at_start": load_average(), "versions": versions(),
            "git_revision": git_revision(), "backends": backends(),
            "instruction_path": instruction_path("kcenter"), "memory_method": memory_method()}
