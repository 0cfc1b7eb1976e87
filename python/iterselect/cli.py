"""The ``iterselect`` command.

    iterselect select kcenter --budget N [--input FILE.jsonl] [--embeddings FILE.npy]
                              [--output FILE.jsonl] [--metric euclidean|cosine] [--seed-index I]

With no --input it selects from the bundled Dolly 15k set (its MiniLM embeddings are computed
once and cached). The selected records are written unchanged, in selection order, as JSONL (to
--output, or to standard output); the covering radius is printed. Any error is one line on
standard error and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

EXIT_USAGE = 2


class CliError(Exception):
    """An error to report as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's usage dump is not one line)
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="iterselect", description="Fast, exact training-subset selection.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    select = sub.add_parser("select", help="select a subset with a static selector")
    methods = select.add_subparsers(dest="method", required=True, parser_class=_Parser)
    kc = methods.add_parser("kcenter", help="k-center greedy on embeddings")
    kc.add_argument("--budget", type=int, required=True, help="number of records to select")
    kc.add_argument("--input", type=Path, help="records (.jsonl, .jsonl.gz or .json); default: bundled Dolly 15k")
    kc.add_argument("--embeddings", type=Path, help="(N, d) .npy embeddings, row i for record i")
    kc.add_argument("--output", type=Path, help="where to write the selected records (default: stdout)")
    kc.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    kc.add_argument("--seed-index", type=int, default=0, help="first pick (default 0)")
    kc.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _load_embeddings(path: Path) -> np.ndarray:
    if not path.exists():
        raise CliError(f"{path}: no such file")
    try:
        emb = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise CliError(f"{path}: cannot be read as a .npy array ({exc})") from None
    if emb.ndim != 2:
        raise CliError(f"{path}: embeddings must be 2-D (rows x dimensions), got shape {emb.shape}")
    return emb


def _select_kcenter(args) -> int:
    from . import datasets
    from .data import DataError, read_records, write_jsonl
    from .kcenter import kcenter_greedy

    progress = not args.no_progress
    try:
        records = read_records(args.input) if args.input else datasets.load_dolly(raw=True)
    except DataError as exc:
        raise CliError(str(exc)) from None
    n = len(records)
    if n == 0:
        raise CliError(f"{args.input}: holds no records")
    if not 1 <= args.budget <= n:
        raise CliError(f"--budget must be between 1 and the number of records ({n}), got {args.budget}")
    if not 0 <= args.seed_index < n:
        raise CliError(f"--seed-index must be between 0 and {n - 1}, got {args.seed_index}")
    if args.embeddings:
        emb = _load_embeddings(args.embeddings)
    elif args.input is None:
        emb = datasets.dolly_embeddings(progress=progress)
    else:
        emb = datasets.minilm_embeddings([datasets.embedding_text(r) for r in records.records], progress=progress)
    if emb.shape[0] != n:
        source = args.embeddings or "the computed embeddings"
        raise CliError(f"{source}: has {emb.shape[0]} rows but there are {n} records; row i must embed record i")
    try:
        result = kcenter_greedy(emb, args.budget, metric=args.metric, seed_index=args.seed_index, progress=progress)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    lines = [records.raw[i] for i in result.indices.tolist()]
    radius = float(result.radii[-1])
    if args.output:
        try:
            write_jsonl(lines, args.output)
        except OSError as exc:
            raise CliError(f"{args.output}: cannot be written ({exc.strerror})") from None
        print(f"selected {args.budget} of {n} records -> {args.output}; covering radius {radius:.6f} ({args.metric})")
    else:
        for line in lines:
            sys.stdout.write(line + "\n")
        print(f"selected {args.budget} of {n} records; covering radius {radius:.6f} ({args.metric})", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "select" and args.method == "kcenter":
            return _select_kcenter(args)
        raise CliError(f"unknown command {args.command!r}")
    except CliError as exc:
        print(f"iterselect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("iterselect: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
