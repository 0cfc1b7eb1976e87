"""The ``iterselect bench`` command's flags, and the call that runs it."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .data import Source
from .runner import BenchError, check_settings, plan, run_bench, settings
from .speed import KERNELS

HELP = "benchmark the kernels against their references (speed) and the selectors (quality)"


def _ints(text: str) -> tuple:
    try:
        values = tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError:
        raise BenchError(f"expected comma-separated integers such as 10000,100000; got {text!r}") from None
    if not values:
        raise BenchError(f"expected comma-separated integers; got {text!r}")
    return values


def add_arguments(p) -> None:
    """The command's own flags (the field-mapping flags are the CLI's common ones)."""
    p.add_argument("--suite", choices=("speed", "quality", "all"), default="all")
    p.add_argument("--n", help="sizes of the speed suite, comma-separated (default 10000,100000,1000000; "
                               "--quick: 2000,20000)")
    p.add_argument("--k", help="budget of the selectors in the speed suite: one, or one per size "
                               "(default 1000; --quick: 100)")
    p.add_argument("--kernels", default=",".join(KERNELS),
                   help=f"speed-suite kernels, comma-separated (default all: {','.join(KERNELS)})")
    p.add_argument("--embeddings", type=Path,
                   help="(N, d) .npy embeddings to use instead of the synthetic set made from bundled Dolly")
    p.add_argument("--input", type=Path,
                   help="records (.jsonl, .json, .parquet, datasets folder) whose responses replace the "
                        "synthetic texts")
    p.add_argument("--quality", type=Path, help="(N,) .npy quality scores of the quality suite's pool "
                                                "(adds kMQ, DEITA and quality top-k)")
    p.add_argument("--pool", type=int, help="quality suite: the first N rows of the pool (default: all "
                                            "15,015 of Dolly; --quick: 3000)")
    p.add_argument("--budget", type=int, help="quality suite: records each selector picks (default 1000; "
                                              "--quick: 100)")
    p.add_argument("--box", type=float,
                   help="seconds a reference may run before it is stopped and extrapolated (default 60; "
                        "--quick: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    p.add_argument("--out", type=Path, default=Path("iterselect-bench"),
                   help="folder for results.json, results.md and the plots (default ./iterselect-bench)")
    p.add_argument("--force", action="store_true", help="replace the results already in --out")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and short time boxes: a few minutes on a laptop")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args, fields=None) -> int:
    """Run ``iterselect bench`` with parsed ``args``; ``fields``: the CLI's FieldMap for --input.
    Raises :class:`BenchError` for a bad setting or file."""
    from dataclasses import asdict

    source = Source(embeddings=str(args.embeddings) if args.embeddings else None,
                    records=str(args.input) if args.input else None,
                    quality=str(args.quality) if args.quality else None, seed=args.seed,
                    fields=asdict(fields) if fields is not None else None,
                    split=getattr(args, "split", None))
    if args.seed < 0:
        raise BenchError(f"--seed must be at least 0; got {args.seed}")
    for flag, value in (("--pool", args.pool), ("--budget", args.budget)):
        if value is not None and value < 2:
            raise BenchError(f"{flag} must be at least 2; got {value}")
    s = settings(quick=args.quick, suite=args.suite, ladder=_ints(args.n) if args.n else None,
                 k=_ints(args.k) if args.k else None,
                 kernels=tuple(k.strip() for k in args.kernels.split(",") if k.strip()), source=source,
                 out=args.out, force=args.force, box=args.box, pool=args.pool, budget=args.budget,
                 progress=not args.no_progress, command=_command_line())
    if getattr(args, "dry_run", False):
        s = check_settings(s)
        jobs = plan(s)
        for job in jobs:
            print(f"{job['job']:>9}  N={job['n'] or 'pool'}  k={job['k']}  ~{job['est']:.0f} s", file=sys.stderr)
        total = sum(j["est"] for j in jobs)
        about = f"{total / 60:.0f} minutes" if total >= 90 else f"{total:.0f} s"
        print(f"about {about} in all on a quiet 2-core machine; dry run: nothing was run or written",
              file=sys.stderr)
        return 0
    try:
        results = run_bench(s)
    except KeyboardInterrupt:
        print(f"iterselect: interrupted; what finished is in {args.out}/results.json and results.md",
              file=sys.stderr)
        return 130
    print(f"{results['status']} in {results['wall_seconds']:.0f} s -> {args.out}/results.json, results.md"
          + "".join(f", {p}" for p in results["plots"]), file=sys.stderr)
    return 0


def _command_line() -> str:
    argv = sys.argv[1:] if sys.argv and Path(sys.argv[0]).name.startswith("iterselect") else None
    return "iterselect " + shlex.join(argv) if argv else "iterselect bench"
