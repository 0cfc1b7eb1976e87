"""``iterselect bench``: million-sample benchmarking of the kernels and the selectors.

* the speed suite (:mod:`~iterselect.bench.speed`): each kernel against its reference
  (numpy loops, scikit-learn, apricot, vendi-score, the one-example IFD loop) at every N of a
  ladder, in one worker process per job, with time boxes and marked extrapolation;
* the quality suite (:mod:`~iterselect.bench.quality`): every selector and baseline on one pool
  and budget, with the subset's Vendi score, covering radius, n-gram coverage and cluster
  entropy;
* the data (:mod:`~iterselect.bench.data`): the user's files, or a deterministic set of any size
  made from the bundled Dolly 15k;
* the outputs (:mod:`~iterselect.bench.report`, :mod:`~iterselect.bench.plots`): results.json,
  results.md and PNG plots, rewritten as rows finish (:mod:`~iterselect.bench.runner`).

Examples
--------
>>> from iterselect.bench import settings
>>> settings(quick=True).ladder
(2000, 20000)
"""
from .data import Source, synth_embeddings, synth_records
from .runner import BenchError, Settings, run_bench, settings
from .speed import KERNELS

__all__ = ["BenchError", "KERNELS", "Settings", "Source", "run_bench", "settings", "synth_embeddings",
           "synth_records"]
