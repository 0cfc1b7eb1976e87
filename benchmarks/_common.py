"""Helpers shared by the benchmark scripts: data paths, timing, peak-memory sampling, tables."""
from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; ITERSELECT_SHARED names it, or ITERSELECT_SHARED_DATA its data/.
SHARED = Path(os.environ.get("ITERSELECT_SHARED")
              or (Path(os.environ["ITERSELECT_SHARED_DATA"]).parent
                  if os.environ.get("ITERSELECT_SHARED_DATA") else REPO.parent / "shared"))
DATA = SHARED / "data"
CACHE = Path(os.environ.get("ITERSELECT_BENCH_CACHE", Path.home() / ".cache" / "iterselect-bench"))


def synth_embeddings(n: int, dtype="float32") -> np.ndarray:
    """shared/bench/synth.py's million-scale embeddings (same seed, same data), cached as .npy."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synth_embeddings_{n}_{dtype}.npy"
    if not path.exists():
        sys.path.insert(0, str(SHARED / "bench"))
        import synth  # noqa: E402

        np.save(path, synth.embeddings(n, 0, np.dtype(dtype)))
    return np.load(path, mmap_mode=None)


def load_outputs(path: Path, limit: int | None = None) -> list[str]:
    """The ``output`` field of a gzipped JSON Lines file (Alpaca, synth.py texts), in order."""
    import gzip
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["output"])
            if limit is not None and len(out) == limit:
                break
    return out


def synth_texts(n: int = 1_000_000) -> Path:
    """shared/bench/synth.py's synthetic records (same seed, same data), generated once into the
    cache."""
    import subprocess

    path = CACHE / f"synth_texts_{n}.jsonl.gz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} with {SHARED / 'bench' / 'synth.py'} (once) ...", flush=True)
        subprocess.run([sys.executable, str(SHARED / "bench" / "synth.py"), "texts", str(n), str(path)],
                       check=True)
    return path


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_memory():
    """Samples resident memory every 5 ms; yields a dict whose 'extra' is the peak growth."""
    out = {"extra": 0}
    base = rss_bytes()
    stop = threading.Event()

    def sample():
        peak = base
        while not stop.is_set():
            peak = max(peak, rss_bytes())
            time.sleep(0.005)
        out["extra"] = max(0, max(peak, rss_bytes()) - base)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def add_json_option(parser) -> None:
    """``--json PATH``: also write the results, machine-readable, to PATH."""
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the results as JSON to PATH (what the smoke tests read)")


def write_json(path: Path | None, results: dict) -> None:
    """Write ``results`` to ``path`` as JSON (numpy numbers as Python numbers); no-op without a path."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)

    def plain(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return str(obj)

    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, default=plain)
