"""The ``iterselect`` command.

    iterselect select {random,longest,knn,deita,ifd,graphfilter} --budget N [--input FILE] [--output FILE]
                      [--report FILE.json] [--embeddings FILE.npy] [--scores FILE.npy]
    iterselect run {diverse-evol,iterit,kmq} --model PATH|toy --run-dir DIR --budget N
                   [--rounds R] [--input FILE] [--limit N] [--resume] ...
    iterselect run insbank --input A.jsonl --input B.jsonl ... --bank-size M --run-dir DIR
                   [--embeddings A.npy --embeddings B.npy ...] [--quality-field quality]
                   [--combine multiply|add] [--gamma G] [--no-history] [--resume]
                   [--history-convention paper|published] [--normalize paper|published]
                   [--preference 0|median] [--batch-size B] [--mode auto|dense|sparse]

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
    _add_baseline_parsers(methods)
    _add_run_parsers(sub)
    return parser


def _common_select(p, *, embeddings=False, scores=None):
    p.add_argument("--budget", type=int, required=True, help="number of records to select")
    p.add_argument("--input", type=Path, help="records (.jsonl, .jsonl.gz or .json); default: bundled Dolly 15k")
    p.add_argument("--output", type=Path, help="where to write the selected records (default: stdout)")
    p.add_argument("--report", type=Path, help="JSON report (default: OUTPUT.report.json when --output is given)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if embeddings:
        p.add_argument("--embeddings", type=Path, help="(N, d) .npy embeddings, row i for record i (default: MiniLM)")
        p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    if scores:
        p.add_argument("--scores", type=Path, required=True, help=scores)


def _add_baseline_parsers(methods):
    p = methods.add_parser("random", help="uniform random subset")
    _common_select(p)
    p.add_argument("--seed", type=int, default=0)
    _common_select(methods.add_parser("longest", help="longest responses first"))
    _common_select(methods.add_parser("knn", help="largest distance to the nearest neighbour first"),
                   embeddings=True)
    p = methods.add_parser("deita", help="by quality, skipping near-duplicates (cosine >= threshold)")
    _common_select(p, embeddings=True, scores="(N,) .npy quality scores, higher is better")
    p.add_argument("--threshold", type=float, default=0.9)
    _common_select(methods.add_parser("ifd", help="highest IFD below 1 first"),
                   scores="(N,) .npy IFD scores (NaN allowed, dropped)")
    p = methods.add_parser("graphfilter", help="GraphFilter: IFD x TF-IDF of the instructions, greedy, "
                           "covered n-grams removed")
    _common_select(p, scores="(N,) .npy IFD scores (NaN allowed, dropped)")
    p.add_argument("--weighting", choices=("sklearn", "paper"), default="sklearn",
                   help="TF-IDF weighting of the instructions")


def _add_run_parsers(sub):
    run = sub.add_parser("run", help="run a model-in-the-loop method")
    methods = run.add_subparsers(dest="method", required=True, parser_class=_Parser)
    for name, help_ in (("diverse-evol", "DiverseEvol: fine-tune, embed, k-center, repeat"),
                        ("iterit", "IterIT: IFD candidates, per-epoch IFD x coverage, train"),
                        ("kmq", "iterative kMQ: MiniLM k-means, draw, train, generate, score, re-weight")):
        p = methods.add_parser(name, help=help_)
        p.add_argument("--model", required=True,
                       help="causal LM directory or hub name; 'toy' builds a tiny local model")
        p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
        p.add_argument("--input", type=Path, help="records; default: bundled Dolly 15k")
        p.add_argument("--limit", type=int, help="use only the first N records")
        p.add_argument("--budget", type=int, required=True,
                       help="records added per round (diverse-evol) or trained on per epoch (iterit)")
        p.add_argument("--rounds", type=int, default=3 if name == "iterit" else 2,
                       help="rounds (diverse-evol, kmq; default 2) or epochs T (iterit; default 3)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--lr", type=float, default=2e-5)
        p.add_argument("--max-length", type=int, help="longest training/scoring sequence in tokens")
        p.add_argument("--batch-tokens", type=int, default=4096)
        p.add_argument("--resume", action="store_true", help="continue a crashed run")
        p.add_argument("--output", type=Path, help="final selection as JSONL (default: RUN_DIR/selection.jsonl)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        if name == "diverse-evol":
            p.add_argument("--initial-size", type=int, help="random initial pool (default: --budget)")
        elif name == "kmq":
            p.add_argument("--clusters", type=int, default=16, help="k-means clusters (default 16)")
            p.add_argument("--embeddings", type=Path,
                           help="(N, d) .npy embeddings for clustering (default: MiniLM)")
            p.add_argument("--max-new-tokens", type=int, default=32, help="generated answer length")
        else:
            p.add_argument("--candidate-factor", type=float, default=3.0, help="a: the pool holds a x M records")
            p.add_argument("--decay", type=float, default=0.1, help="b of Eq. 7")
            p.add_argument("--weighting", choices=("paper", "sklearn"), default="paper",
                           help="TF-IDF of Eq. 5, or the published code's scikit-learn weighting")
            p.add_argument("--pool", choices=("paper", "published"), default="paper",
                           help="top a x M then IFD < 1 (Alg. 1), or the published code's order")
    p = methods.add_parser("insbank", help="InsBank/PIBE: evolve a bank as datasets arrive")
    p.add_argument("--input", type=Path, action="append", required=True,
                   help="an arriving dataset (records with a quality field); repeat, in order")
    p.add_argument("--embeddings", type=Path, action="append",
                   help="(N, d) .npy embeddings of the --input of the same position; repeat once "
                        "per --input (default: MiniLM)")
    p.add_argument("--bank-size", type=int, required=True, help="records kept in the bank")
    p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
    p.add_argument("--quality-field", default="quality", help="the records' quality field")
    p.add_argument("--combine", choices=("multiply", "add"), default="multiply",
                   help="Eq. 10 (1+rep)(1+q)^gamma, or Eq. 9 rep + gamma q")
    p.add_argument("--gamma", type=float, default=1.0, help="weight of the quality")
    p.add_argument("--no-history", action="store_true", help="no responsibility history")
    p.add_argument("--history-weight", type=float, default=0.5, help="alpha of Eq. 6 (paper: 0.5)")
    p.add_argument("--history-decay", type=float, default=0.99, help="lambda of Eq. 6 (paper: 0.99)")
    p.add_argument("--history-convention", choices=("paper", "published"), default="paper",
                   help="history matrix of Eq. 4-5 as the paper or as its published code builds it")
    p.add_argument("--preference", default="0", help="diagonal of S: a number (paper: 0) or 'median'")
    p.add_argument("--normalize", choices=("paper", "published"), default="paper",
                   help="representation min-max as the paper (Eq. 8) or its published code")
    p.add_argument("--batch-size", type=int, help="split each dataset into rounds of this size "
                   "(published code: 27000)")
    p.add_argument("--mode", choices=("auto", "dense", "sparse"), default="auto",
                   help="affinity propagation: dense, on a kNN graph, or dense when it fits")
    p.add_argument("--n-neighbors", type=int, default=64, help="sparse mode: neighbours per candidate")
    p.add_argument("--resume", action="store_true", help="continue a crashed run")
    p.add_argument("--output", type=Path, help="final bank as JSONL (default: RUN_DIR/selection.jsonl)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


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
    from .io import DataError, read_records, write_jsonl
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


def _records(args):
    from . import datasets
    from .io import DataError, read_records

    try:
        records = read_records(args.input) if args.input else datasets.load_dolly(raw=True)
    except DataError as exc:
        raise CliError(str(exc)) from None
    if len(records) == 0:
        raise CliError(f"{args.input}: holds no records")
    return records


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"{flag} must be a number or 'median', got {text!r}") from None


def _check_budget(budget, n):
    if not 1 <= budget <= n:
        raise CliError(f"--budget must be between 1 and the number of records ({n}), got {budget}")


def _vector(path: Path, n: int, flag: str) -> np.ndarray:
    if not path.exists():
        raise CliError(f"{path}: no such file")
    try:
        v = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise CliError(f"{path}: cannot be read as a .npy array ({exc})") from None
    if v.shape != (n,):
        raise CliError(f"{path}: {flag} must have shape ({n},) (one score per record), got {v.shape}")
    return v.astype(np.float64)


def _select_baseline(args) -> int:
    from . import datasets
    from .io import write_jsonl
    from .methods import baselines
    from .runs import atomic_write_json

    records = _records(args)
    n = len(records)
    _check_budget(args.budget, n)
    progress = not args.no_progress
    emb = None
    if getattr(args, "embeddings", None):
        emb = _load_embeddings(args.embeddings)
    elif hasattr(args, "embeddings"):
        emb = (datasets.dolly_embeddings(progress=progress) if args.input is None else
               datasets.minilm_embeddings([datasets.embedding_text(r) for r in records.records],
                                          progress=progress))
    if emb is not None and emb.shape[0] != n:
        raise CliError(f"{args.embeddings or 'the computed embeddings'}: has {emb.shape[0]} rows "
                       f"but there are {n} records; row i must embed record i")
    try:
        if args.method == "random":
            result = baselines.random_select(n, args.budget, seed=args.seed)
        elif args.method == "longest":
            result = baselines.longest_response(records.records, args.budget)
        elif args.method == "knn":
            result = baselines.knn_distance(emb, args.budget, metric=args.metric)
        elif args.method == "deita":
            result = baselines.deita_select(emb, _vector(args.scores, n, "--scores"), args.budget,
                                            threshold=args.threshold)
        elif args.method == "graphfilter":
            result = baselines.graphfilter_select(records.records, args.budget,
                                                  ifd=_vector(args.scores, n, "--scores"),
                                                  weighting=args.weighting, progress=progress)
        else:
            result = baselines.ifd_topk(_vector(args.scores, n, "--scores"), args.budget)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    idx = result.indices.tolist()
    lines = [records.raw[i] for i in idx]
    report = {"method": result.method, "budget": args.budget, "n_records": n,
              "selected": len(idx), "n_dropped": result.n_dropped, "indices": idx,
              "scores": result.scores.tolist()}
    report_path = args.report or (args.output.with_name(args.output.name + ".report.json")
                                  if args.output else None)
    try:
        if args.output:
            write_jsonl(lines, args.output)
        else:
            for line in lines:
                sys.stdout.write(line + "\n")
        if report_path:
            atomic_write_json(report, report_path)
    except OSError as exc:
        raise CliError(f"{exc.filename}: cannot be written ({exc.strerror})") from None
    where = f" -> {args.output}" if args.output else ""
    print(f"selected {len(idx)} of {n} records ({result.method}){where}"
          + (f"; report {report_path}" if report_path else ""), file=sys.stderr)
    return 0


def _run_insbank(args) -> int:
    import json

    from .io import DataError, read_records, write_jsonl
    from .methods.insbank import InsBank
    from .plots import plot_rounds
    from .runs import RunError, atomic_write_json

    if args.embeddings and len(args.embeddings) != len(args.input):
        raise CliError(f"--embeddings must be given once per --input ({len(args.input)}), got "
                       f"{len(args.embeddings)}")
    sets, raws = [], []
    for k, path in enumerate(args.input):
        try:
            recs = read_records(path, required=(args.quality_field,))
        except DataError as exc:
            raise CliError(str(exc)) from None
        if len(recs) == 0:
            raise CliError(f"{path}: holds no records")
        for i, r in enumerate(recs.records):
            v = r[args.quality_field]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise CliError(f"{path}: record {i + 1}: {args.quality_field!r} must be a finite "
                               f"number, got {v!r}")
        item = {"records": recs.records}
        if args.embeddings:
            emb = _load_embeddings(args.embeddings[k])
            if emb.shape[0] != len(recs):
                raise CliError(f"{args.embeddings[k]}: has {emb.shape[0]} rows but {path} has "
                               f"{len(recs)} records; row i must embed record i")
            item["embeddings"] = emb
        sets.append(item)
        raws.extend(recs.raw)
    try:
        preference = args.preference if args.preference == "median" else _number(args.preference,
                                                                                   "--preference")
        method = InsBank(args.bank_size, combine=args.combine, gamma=args.gamma,
                         use_history=not args.no_history, history_weight=args.history_weight,
                         history_decay=args.history_decay,
                         history_convention=args.history_convention, preference=preference,
                         normalize=args.normalize, batch_size=args.batch_size, mode=args.mode,
                         n_neighbors=args.n_neighbors, progress=not args.no_progress)

        def report_arrival(t, rep):
            print(json.dumps(rep), flush=True)

        result = method.run(sets, args.run_dir, quality_field=args.quality_field,
                            resume=args.resume, on_round_end=report_arrival)
    except (RunError, ValueError, TypeError, OSError) as exc:
        raise CliError(str(exc)) from None
    output = args.output or args.run_dir / "selection.jsonl"
    try:
        write_jsonl([raws[i] for i in result.selected.tolist()], output)
        reports = list(result.reports)
        atomic_write_json({"method": method.name, "n_records": len(raws),
                           "inputs": [str(p) for p in args.input], "selected": result.selected,
                           "rounds": reports}, args.run_dir / "report.json")
        plot_rounds(reports, args.run_dir / "plot.png", title=method.name)
    except OSError as exc:
        raise CliError(f"{exc.filename}: cannot be written ({exc.strerror})") from None
    print(f"bank of {result.selected.size} of {len(raws)} records -> {output}; report "
          f"{args.run_dir / 'report.json'}, plot {args.run_dir / 'plot.png'}", file=sys.stderr)
    return 0


def _clustering_embeddings(args, records, progress: bool) -> np.ndarray:
    """kMQ's fixed embeddings: --embeddings, else MiniLM (the cached Dolly set when it is the
    bundled data and cached or complete, else computed for just these records)."""
    from . import datasets

    n = len(records)
    if args.embeddings:
        emb = _load_embeddings(args.embeddings)
        if args.limit is not None:
            emb = emb[:n]
    elif args.input is None and (args.limit is None or (datasets.cache_dir() / "dolly_15k_minilm.npy").exists()):
        emb = datasets.dolly_embeddings(progress=progress)[:n]
    else:
        emb = datasets.minilm_embeddings([datasets.embedding_text(r) for r in records.records], progress=progress)
    if emb.shape[0] != n:
        raise CliError(f"{args.embeddings}: has {emb.shape[0]} rows but there are {n} records; row i must embed record i")
    return emb


def _run_method(args) -> int:
    from .io import write_jsonl
    from .methods import DiverseEvol, IterativeKMQ, IterIT, TrainConfig
    from .plots import plot_rounds
    from .runs import RunError, atomic_write_json

    records = _records(args)
    if args.limit is not None:
        if args.limit < 1:
            raise CliError(f"--limit must be at least 1, got {args.limit}")
        records = type(records)(records.records[:args.limit], records.raw[:args.limit])
    n = len(records)
    _check_budget(args.budget, n)
    progress = not args.no_progress
    tokenizer = None
    model = args.model
    if args.model == "toy":
        from .scoring.toy import toy_model_and_tokenizer

        model, tokenizer = toy_model_and_tokenizer()
    elif not Path(args.model).exists() and "/" not in args.model:
        raise CliError(f"--model {args.model}: no such directory (give a model directory, a hub "
                       "name such as 'org/name', or 'toy')")
    try:
        train = TrainConfig(lr=args.lr, max_length=args.max_length, batch_tokens=args.batch_tokens)
        if args.method == "diverse-evol":
            method = DiverseEvol(args.initial_size or args.budget, args.budget, args.rounds,
                                 seed=args.seed, train=train, progress=progress)
        elif args.method == "kmq":
            method = IterativeKMQ(args.budget, args.rounds, args.clusters, max_new_tokens=args.max_new_tokens,
                                  seed=args.seed, train=train, progress=progress)
        else:
            method = IterIT(args.budget, args.rounds, candidate_factor=args.candidate_factor,
                            decay=args.decay, weighting=args.weighting, pool=args.pool, seed=args.seed,
                            train=train, progress=progress)
        if tokenizer is None:
            from .scoring import load_tokenizer

            tokenizer = load_tokenizer(args.model)

        def report_round(t, rep):
            print(f"round {t}: objective {rep.get('objective')} diversity {rep.get('diversity')}",
                  file=sys.stderr)

        if args.method == "kmq":
            result = method.run(model, tokenizer, records.records, _clustering_embeddings(args, records, progress),
                                args.run_dir, resume=args.resume, on_round_end=report_round)
        else:
            result = method.run(model, tokenizer, records.records, args.run_dir, resume=args.resume,
                                on_round_end=report_round)
    except (RunError, ValueError, TypeError, OSError) as exc:
        raise CliError(str(exc)) from None
    output = args.output or args.run_dir / "selection.jsonl"
    write_jsonl([records.raw[i] for i in result.selected.tolist()], output)
    reports = list(result.reports)
    atomic_write_json({"method": method.name, "n_records": n, "selected": result.selected,
                       "model_path": result.model_path, "rounds": reports},
                      args.run_dir / "report.json")
    plot_rounds(reports, args.run_dir / "plot.png", title=method.name)
    print(f"selected {result.selected.size} of {n} records -> {output}; report "
          f"{args.run_dir / 'report.json'}, plot {args.run_dir / 'plot.png'}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "select" and args.method == "kcenter":
            return _select_kcenter(args)
        if args.command == "select":
            return _select_baseline(args)
        if args.command == "run" and args.method == "insbank":
            return _run_insbank(args)
        if args.command == "run":
            return _run_method(args)
        raise CliError(f"unknown command {args.command!r}")
    except CliError as exc:
        print(f"iterselect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("iterselect: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
