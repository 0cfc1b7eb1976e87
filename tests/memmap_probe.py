"""Run selectors on a memory-mapped .npy and print this process's memory as JSON: the resident
set after the imports, its peak (VmHWM), and the peak of its anonymous memory (sampled every
millisecond). test_memmap.py runs it in a subprocess; ``python tests/memmap_probe.py FILE.npy``
runs it by hand."""
from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np


def status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    return out


class AnonPeak(threading.Thread):
    """The largest RssAnon seen while it runs (the kernels release the GIL, so it samples
    during them too)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, status()["RssAnon"])
            time.sleep(0.001)


def main(path: str) -> None:
    import iterselect
    from iterselect.cluster import kmeans
    from iterselect.methods.baselines import deita_select

    base = status()
    sampler = AnonPeak()
    sampler.start()
    X = np.load(path, mmap_mode="r")
    n = X.shape[0]
    seconds = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        fn()
        seconds[name] = round(time.perf_counter() - t0, 2)

    timed("kcenter_euclidean", lambda: iterselect.kcenter_greedy(X, 3, progress=False))
    timed("kcenter_cosine", lambda: iterselect.kcenter_greedy(X, 2, metric="cosine", progress=False))
    timed("kmeans", lambda: kmeans(X, 4, niter=2, max_points_per_centroid=64))
    quality = np.random.default_rng(0).random(n)
    timed("deita", lambda: deita_select(X, 3, quality=quality, threshold=0.99))
    sampler.running = False
    sampler.join()
    end = status()
    print(json.dumps({"rows": n, "file_bytes": X.nbytes, "base_rss": base["VmRSS"],
                      "base_anon": base["RssAnon"], "peak_rss": end["VmHWM"],
                      "peak_anon": sampler.peak, "end": end, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1])
