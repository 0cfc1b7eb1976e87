"""One benchmark job in its own process: ``python -m iterselect.bench.worker SPEC.json OUT.jsonl``.

The job's rows are appended to OUT.jsonl as each is done (one JSON object a line, flushed), so
the runner keeps what finished even when it stops the job.
"""
from __future__ import annotations

import json
import sys
import traceback


def _emitter(path):
    from ..runs import _plain

    f = open(path, "a", encoding="utf-8")

    def emit(row: dict) -> None:
        f.write(json.dumps(_plain(row)) + "\n")
        f.flush()

    return emit, f


def run(spec: dict, emit) -> None:
    """Run the job ``spec`` describes (a speed job or the quality suite)."""
    if spec["job"] == "quality":
        from .quality import run_quality

        run_quality(spec, emit)
        return
    from .data import Source
    from .speed import JOBS, Job

    job = Job(**{**spec, "source": Source(**spec["source"]), "kernels": tuple(spec["kernels"])})
    JOBS[job.job](job, emit)


def main(argv=None) -> int:
    spec_path, out_path = (argv if argv is not None else sys.argv[1:])
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    emit, f = _emitter(out_path)
    try:
        run(spec, emit)
        emit({"event": "done"})
        return 0
    except KeyboardInterrupt:
        emit({"event": "error", "error": "interrupted"})
        return 130
    except BaseException as exc:  # the runner reports it in the job's row
        emit({"event": "error", "error": f"{type(exc).__name__}: {exc}",
              "traceback": traceback.format_exc(limit=8)})
        return 1
    finally:
        f.close()


if __name__ == "__main__":
    sys.exit(main())
