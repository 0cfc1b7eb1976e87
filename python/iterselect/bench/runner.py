"""Runs the suites: plans the jobs, starts one worker process per job, shows one progress bar
over the whole run with an estimate of the time left, and rewrites results.json and results.md
after every finished row, so an interrupted run (Ctrl-C) keeps everything that finished.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from .._files import atomic_file
from .data import Source, embedding_rows, record_count
from .machine import machine
from .measure import load_average
from .plots import PLOTS, make_plots
from .report import markdown, seconds
from .speed import JOB_OF, KERNELS

OUTPUTS = ("results.json", "results.md") + PLOTS
POLL_SECONDS = 0.5


class BenchError(ValueError):
    """A problem with the benchmark's settings or files, said in one line."""


@dataclass
class Settings:
    """Everything a run depends on; :func:`settings` fills the defaults of a full or quick run."""

    suite: str = "all"
    ladder: tuple = (10_000, 100_000, 1_000_000)
    k: tuple = (1000,)
    kernels: tuple = KERNELS
    source: Source = field(default_factory=Source)
    out: Path = Path("iterselect-bench")
    quick: bool = False
    force: bool = False
    box: float = 60.0
    pool: int | None = None
    budget: int = 1000
    progress: bool = True
    options: dict = field(default_factory=dict)
    command: str = "iterselect bench"


FULL = dict(ladder=(10_000, 100_000, 1_000_000), k=(1000,), box=60.0, pool=None, budget=1000,
            options=dict(ap_dense_max=10_000, clusters=256, ifd_examples=2000, facility_neighbors=32,
                         quality_clusters=100))
QUICK = dict(ladder=(2_000, 20_000), k=(100,), box=5.0, pool=3000, budget=100,
             options=dict(ap_dense_max=2_000, clusters=32, ifd_examples=200, facility_neighbors=16,
                          quality_clusters=30))


def settings(*, quick: bool = False, **given) -> Settings:
    """:class:`Settings` of a full run (or a quick one), with the given fields replaced (None
    keeps the default; ``options`` are merged).

    Examples
    --------
    >>> from iterselect.bench.runner import settings
    >>> s = settings(quick=True, ladder=(1000,))
    >>> s.ladder, s.box, s.options["ap_dense_max"]
    ((1000,), 5.0, 2000)
    """
    base = dict(QUICK if quick else FULL)
    options = {**base.pop("options"), **(given.pop("options", None) or {})}
    base.update({key: value for key, value in given.items() if value is not None})
    return Settings(quick=quick, options=options, **base)


# ------------------------------------------------------------------------------------ checks

def check_settings(s: Settings) -> Settings:
    """Validate the settings against the files; the ladder is cut to the rows the user's files
    have. Raises :class:`BenchError`."""
    if s.suite not in ("speed", "quality", "all"):
        raise BenchError(f"--suite must be one of speed, quality, all; got {s.suite!r}")
    unknown = [k for k in s.kernels if k not in KERNELS]
    if unknown:
        raise BenchError(f"unknown kernel(s) {', '.join(unknown)}; choose among {', '.join(KERNELS)}")
    if not s.ladder or any(n < 10 for n in s.ladder):
        raise BenchError(f"--n must list sizes of at least 10 rows; got {','.join(map(str, s.ladder))}")
    if len(s.k) not in (1, len(s.ladder)) or any(k < 1 for k in s.k):
        raise BenchError(f"--k must be one budget or one per size of --n ({len(s.ladder)}), each at least 1; "
                         f"got {','.join(map(str, s.k))}")
    if s.box <= 0:
        raise BenchError(f"--box must be positive; got {s.box}")
    src = s.source
    for flag, path in (("--embeddings", src.embeddings), ("--input", src.records), ("--quality", src.quality)):
        if path is not None and not Path(path).exists():
            raise BenchError(f"{flag} {path}: no such file")
    _check_outputs(s)
    limits = []
    try:
        rows = embedding_rows(src)
        if rows is not None:
            limits.append(("--embeddings", rows))
        count = record_count(src)
        if count is not None:
            limits.append(("--input", count))
    except (OSError, ValueError) as exc:
        raise BenchError(str(exc)) from None
    ladder, ks = list(s.ladder), list(s.k) * (len(s.ladder) if len(s.k) == 1 else 1)
    pairs = sorted(zip(ladder, ks))
    for flag, rows in limits:
        kept = [(n, k) for n, k in pairs if n <= rows]
        if not kept and s.suite != "quality":
            raise BenchError(f"{flag} has {rows:,} rows, fewer than every size of --n "
                             f"({','.join(f'{n:,}' for n in ladder)})")
        pairs = kept or pairs
    if s.suite in ("quality", "all") and (src.embeddings is None) != (src.records is None):
        raise BenchError("the quality suite needs both --embeddings and --input (row i of one for record i of "
                         "the other) or neither (the bundled Dolly); or run --suite speed")
    if s.suite in ("quality", "all") and src.embeddings is not None:
        rows_e, rows_r = dict(limits)["--embeddings"], dict(limits)["--input"]
        if rows_e != rows_r:
            raise BenchError(f"--embeddings has {rows_e:,} rows but --input has {rows_r:,} records; row i of "
                             "one must be record i of the other")
    if src.quality is not None:
        import numpy as np

        q = np.load(src.quality, mmap_mode="r")
        pool_rows = dict(limits).get("--embeddings", 15015)
        if q.ndim != 1 or q.shape[0] != pool_rows:
            raise BenchError(f"--quality {src.quality}: must be a 1-D array of {pool_rows:,} scores (one per "
                             f"record), got shape {q.shape}")
    return replace(s, ladder=tuple(n for n, _ in pairs), k=tuple(min(k, n - 1) for n, k in pairs))


def _check_outputs(s: Settings) -> None:
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; give a folder")
    targets = {(out / name).resolve() for name in OUTPUTS}
    for flag, path in (("--embeddings", s.source.embeddings), ("--input", s.source.records),
                       ("--quality", s.source.quality)):
        if path is not None and Path(path).resolve() in targets:
            raise BenchError(f"{flag} {path} is one of the files the benchmark writes in --out; choose "
                             "another --out")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not s.force:
        raise BenchError(f"--out {out} already holds results ({', '.join(existing)}); pass --force to replace "
                         "them, or choose another folder")


# ------------------------------------------------------------------------------------ plan

# rough seconds on a quiet 2-core machine, for the progress bar (it corrects itself as it goes)
_PER_ROW = {"kcenter": 3e-5, "text": 8e-5, "affinity": 3e-4, "facility": 1.5e-4, "kmeans": 6e-5,
            "vendi": 1e-5}


def _estimate(job: str, n: int, k: int, s: Settings) -> float:
    box = s.box
    if job == "ifd":
        return 10 + 0.02 * s.options["ifd_examples"] + box
    if job == "quality":
        pool = s.pool or 15015
        return 20 + pool * 8e-3 + (pool / 1e4) ** 2 * 30
    if job == "affinity" and n <= s.options["ap_dense_max"]:
        return 5 + 2 * (n / 1e4) ** 2 * 60 + 2 * box
    ours = _PER_ROW[job] * n * (max(k, 1) / 1000 if job in ("kcenter",) else 1)
    refs = 2 if job == "text" else 1
    return 5 + 3e-5 * n + ours + refs * min(box, 1e-3 * n + 2)


def plan(s: Settings) -> list[dict]:
    """The jobs in the order they run: every kernel at the smallest N, the quality suite, then
    the larger sizes (so a stopped run keeps a complete small tier)."""
    jobs = []
    speed = s.suite in ("speed", "all")
    kinds = list(dict.fromkeys(JOB_OF[k] for k in s.kernels))
    for i, (n, k) in enumerate(zip(s.ladder, s.k)):
        for kind in kinds if speed else []:
            if kind == "ifd" and i > 0:
                continue
            jobs.append({"job": kind, "n": n, "k": k, "kernels": [x for x in s.kernels if JOB_OF[x] == kind],
                         "est": _estimate(kind, n, k, s)})
        if i == 0 and s.suite in ("quality", "all"):
            jobs.append({"job": "quality", "n": s.pool, "k": s.budget, "est": _estimate("quality", 0, 0, s)})
    if not jobs and s.suite in ("quality", "all"):
        jobs.append({"job": "quality", "n": s.pool, "k": s.budget, "est": _estimate("quality", 0, 0, s)})
    return jobs


# ------------------------------------------------------------------------------------ run

class _Run:
    """The state of a run: results, their files, the progress bar."""

    def __init__(self, s: Settings, jobs: list[dict]):
        self.s, self.jobs = s, jobs
        self.out = Path(s.out)
        self.work = self.out / ".work"
        self.t0 = time.perf_counter()
        self.prior: dict = {}
        self.results = {
            "command": s.command, "status": "running",
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "config": {"suite": s.suite, "ladder": list(s.ladder), "k": list(s.k), "kernels": list(s.kernels),
                       "quick": s.quick, "box": s.box, "pool": s.pool, "budget": s.budget,
                       "options": s.options, "data": s.source.describe()},
            "speed": [], "quality": {}, "jobs": [], "errors": [], "plots": []}
        self.bar = None
        if s.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=round(sum(j["est"] for j in jobs)), unit="s", file=sys.stderr,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed, ~{remaining} left")

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def write(self, final: bool = False) -> None:
        self.results["wall_seconds"] = time.perf_counter() - self.t0
        if final:
            self.results["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.results["machine"]["load_average_at_end"] = load_average()
            try:
                self.results["plots"] = make_plots(self.results, self.out)
            except ImportError as exc:
                self.results["plots"] = []
                self.results["errors"].append({"job": "plots", "error": f"no plots: {exc} (pip install matplotlib)"})
        from ..runs import atomic_write_json

        atomic_write_json(self.results, self.out / "results.json")
        with atomic_file(self.out / "results.md") as f:
            f.write(markdown(self.results))

    def take(self, item: dict, job: dict) -> None:
        """One line of a worker's output."""
        if item.get("event") == "error":
            self.results["errors"].append({"job": job["job"], "n": job["n"], "error": item["error"],
                                           "traceback": item.get("traceback")})
            self.say(f"error in {job['job']} N={job['n']}: {item['error']}")
            return
        if item.get("event") == "done":
            return
        if item.get("suite") == "quality":
            if item.get("event") == "pool":
                self.results["quality"]["pool"] = item
            else:
                self.results["quality"].setdefault("rows", []).append(item)
                self.say(f"quality: {item['selector']} "
                         + (f"in {seconds(item['seconds'])}" if item.get("seconds") is not None
                            else f"failed: {item.get('error')}"))
        else:
            self.results["speed"].append(item)
            if item["reference"].get("seconds") is not None:
                self.prior[item["kernel"]] = {"n": item["n"], "reference": {
                    key: value for key, value in item["reference"].items() if key != "name"}}
            ratio = f"{item['ratio']:.3g}x" if item.get("ratio") else "-"
            self.say(f"{item['kernel']} N={item['n']:,}: ours {seconds(item['ours']['seconds'])}, reference "
                     f"{'~' if item['reference'].get('extrapolated') else ''}"
                     f"{seconds(item['reference'].get('seconds'))} ({ratio}); {item['agreement'].get('summary')}")
        self.write()

    def run_job(self, index: int, job: dict) -> None:
        spec = {"job": job["job"], "n": job["n"], "k": job["k"], "box": self.s.box,
                "kernels": job.get("kernels", []), "source": asdict(self.s.source),
                "options": {**self.s.options, "ladder": list(self.s.ladder)}, "prior": dict(self.prior),
                "cache": str(self.work)}
        if job["job"] == "quality":
            spec = {"job": "quality", "source": asdict(self.s.source), "pool": self.s.pool, "k": self.s.budget,
                    "clusters": self.s.options["quality_clusters"]}
        name = f"{index:02d}_{job['job']}_{job['n']}"
        spec_path, out_path, log_path = (self.work / f"{name}.{ext}" for ext in ("json", "jsonl", "log"))
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        out_path.write_text("", encoding="utf-8")
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # the folder that holds iterselect/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        if self.bar is not None:
            self.bar.set_description_str(f"{job['job']} N={job['n'] or 'pool':,}" if job["n"]
                                         else f"{job['job']}")
        limit = 4 * job["est"] + 600
        started = time.perf_counter()
        base = self.bar.n if self.bar is not None else 0
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen([sys.executable, "-m", "iterselect.bench.worker", str(spec_path), str(out_path)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        offset, status = 0, "done"
        try:
            while True:
                code = proc.poll()
                offset = self._read(out_path, offset, job)
                if code is not None:
                    break
                elapsed = time.perf_counter() - started
                if elapsed > limit:
                    _stop(proc)
                    status = f"stopped after {elapsed:.0f} s (over its limit of {limit:.0f} s)"
                    self.results["errors"].append({"job": job["job"], "n": job["n"], "error": status})
                    break
                if self.bar is not None:  # move within the job's share, never past it
                    self.bar.update(max(0, min(base + round(min(elapsed, 0.95 * job["est"])), base + job["est"])
                                        - self.bar.n))
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            _stop(proc)
            self._read(out_path, offset, job)
            self.results["jobs"].append({**job, "status": "interrupted", "seconds": time.perf_counter() - started})
            raise
        self._read(out_path, offset, job)
        if proc.returncode not in (0, None) and status == "done":
            status = f"exit code {proc.returncode}"
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            if not any(e["job"] == job["job"] and e.get("n") == job["n"] for e in self.results["errors"]):
                self.results["errors"].append({"job": job["job"], "n": job["n"], "error": f"{status}: {tail}"})
        self.results["jobs"].append({**job, "status": status, "seconds": time.perf_counter() - started})
        if self.bar is not None:
            self.bar.update(max(0, round(base + job["est"]) - self.bar.n))
        self.write()

    def _read(self, path: Path, offset: int, job: dict) -> int:
        with open(path, encoding="utf-8") as f:
            f.seek(offset)
            while True:
                line = f.readline()
                if not line.endswith("\n"):
                    break
                offset += len(line.encode("utf-8"))
                self.take(json.loads(line), job)
        return offset


def _stop(proc) -> None:
    """Stop a worker and everything it started (its own session)."""
    for sig, wait in ((signal.SIGINT, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def run_bench(s: Settings) -> dict:
    """Run the suites of ``s`` and write results.json, results.md and the plots into ``s.out``.

    Ctrl-C stops the running job; what finished is kept in the outputs (``status``:
    "interrupted") and KeyboardInterrupt is raised again.
    """
    s = check_settings(s)
    jobs = plan(s)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # --force: results of an earlier run must not mix with these
        (out / name).unlink(missing_ok=True)
    run = _Run(s, jobs)
    run.work.mkdir(exist_ok=True)
    try:
        run.write()
        for i, job in enumerate(jobs):
            run.run_job(i, job)
        run.results["status"] = "complete" if not run.results["errors"] else "complete, with errors"
    except KeyboardInterrupt:
        run.results["status"] = "interrupted"
        raise
    finally:
        if run.bar is not None:
            run.bar.close()
        run.write(final=True)
        shutil.rmtree(run.work, ignore_errors=True)
    return run.results
