"""The ``iterselect`` command.

    iterselect select {random,longest,knn,deita,ifd} --budget N [--input FILE] [--output FILE]
                      [--report FILE.json] [--embeddings FILE.npy] [--scores FILE.npy]
    iterselect run {diverse-evol,iterit,kmq} --model PATH|toy --run-dir DIR --budget N
                   [--rounds R] [--input FILE] [--limit N] [--resume] ...
    iterselect run insbank --input A.jsonl --input B.jsonl ... --bank-size M --run-dir DIR
                   [--embeddings A.npy --embeddings B.npy ...] [--quality-field quality]
                   [--combine multiply|add] [--gamma G] [--no-history] [--resume]

    iterselect select kcenter --budget N [--input FILE.jsonl] [--embeddings FILE.npy]
                              [--output FILE.jsonl] [--metric euclidean|cosine] [--seed-index I]

    iterselect --version | --help | COMMAND --help

With no --input it selects from the bundled Dolly 15k set (its MiniLM embeddings are computed
once and cached). The selected records are written unchanged, in selection order, as JSONL (to
--output, or to standard output); summaries go to standard error. No command writes over one of
its inputs, and an existing --output needs --force. Any error is one line on standard error and
exit code 2, a missing optional dependency included (the line names the extra to install).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

EXIT_USAGE = 2
RESUME_HINT = "rerun with --resume"


class CliError(Exception):
    """An error to report as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's usage dump is not one line)
        for action in self._actions:
            if (isinstance(action, argparse._SubParsersAction)
                    and message.endswith(f"required: {action.dest}")):
                message = (f"{self.prog} needs one of: {', '.join(action.choices)} (see "
                           f"'{self.prog} --help')")
        raise CliError(message)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with every option's default shown (those that have one)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" in text or "default:" in text or not action.option_strings
                or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _add(sub, name: str, help_: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, description=help_, formatter_class=_HelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="iterselect", description="Fast, exact training-subset selection.",
                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"iterselect {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="{select,run}")
    select = _add(sub, "select", "select a subset with a static selector")
    methods = select.add_subparsers(dest="method", required=True, parser_class=_Parser)
    kc = _add(methods, "kcenter", "k-center greedy on embeddings")
    kc.add_argument("--budget", type=int, required=True, help="number of records to select")
    kc.add_argument("--input", type=Path, help="records (.jsonl, .jsonl.gz or .json); default: bundled Dolly 15k")
    kc.add_argument("--embeddings", type=Path, help="(N, d) .npy embeddings, row i for record i (default: MiniLM)")
    kc.add_argument("--output", type=Path, help="where to write the selected records (default: stdout)")
    kc.add_argument("--force", action="store_true", help="replace an existing --output")
    kc.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                   help="distance between embeddings")
    kc.add_argument("--seed-index", type=int, default=0, help="first pick")
    kc.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    _add_baseline_parsers(methods)
    _add_run_parsers(sub)
    return parser


def _common_select(p, *, embeddings=False, scores=None):
    p.add_argument("--budget", type=int, required=True, help="number of records to select")
    p.add_argument("--input", type=Path, help="records (.jsonl, .jsonl.gz or .json); default: bundled Dolly 15k")
    p.add_argument("--output", type=Path, help="where to write the selected records (default: stdout)")
    p.add_argument("--report", type=Path, help="JSON report (default: OUTPUT.report.json when --output is given)")
    p.add_argument("--force", action="store_true", help="replace an existing --output or --report")
    p.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    if embeddings:
        p.add_argument("--embeddings", type=Path, help="(N, d) .npy embeddings, row i for record i (default: MiniLM)")
        p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                   help="distance between embeddings")
    if scores:
        p.add_argument("--scores", type=Path, required=True, help=scores)


def _add_baseline_parsers(methods):
    p = _add(methods, "random", "uniform random subset")
    _common_select(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the draw")
    _common_select(_add(methods, "longest", "longest responses first"))
    _common_select(_add(methods, "knn", "largest distance to the nearest neighbour first"),
                   embeddings=True)
    p = _add(methods, "deita", "by quality, skipping near-duplicates (cosine >= threshold)")
    _common_select(p, embeddings=True, scores="(N,) .npy quality scores, higher is better")
    p.add_argument("--threshold", type=float, default=0.9, help="cosine similarity that makes a near-duplicate")
    _common_select(_add(methods, "ifd", "highest IFD below 1 first"),
                   scores="(N,) .npy IFD scores (NaN allowed, dropped)")


# What --budget and --rounds mean differs between the methods; each says it in its own help.
_RUN_METHODS = {
    "diverse-evol": (
        "DiverseEvol: fine-tune, embed, k-center, repeat",
        "records added per round; with the initial pool (--initial-size, default --budget) the "
        "run selects --initial-size + rounds x budget (--budget 100 --rounds 3: 400)",
        "rounds of fine-tune, embed and k-center after the initial pool"),
    "iterit": (
        "IterIT: IFD candidates, per-epoch IFD x coverage, train",
        "records selected and trained on in each epoch (M); the final selection is the last "
        "epoch's M records",
        "training epochs, each selecting its M records again with the current model"),
    "kmq": (
        "iterative kMQ: MiniLM k-means, draw, train, generate, score, re-weight",
        "records selected in total over all rounds (each round draws budget / rounds; the "
        "first also the remainder)",
        "draws (iterations): the first before any training, each later one after training, "
        "generating and re-weighting the clusters; 1 is plain kMQ"),
}


def _add_run_parsers(sub):
    run = _add(sub, "run", "run a model-in-the-loop method")
    methods = run.add_subparsers(dest="method", required=True, parser_class=_Parser)
    for name, (help_, budget_help, rounds_help) in _RUN_METHODS.items():
        p = _add(methods, name, help_)
        p.add_argument("--model", required=True,
                       help="causal LM directory or hub name; 'toy' builds a tiny local model")
        p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
        p.add_argument("--input", type=Path, help="records; default: bundled Dolly 15k")
        p.add_argument("--limit", type=int, help="use only the first N records (default: all)")
        p.add_argument("--budget", type=int, required=True, help=budget_help)
        p.add_argument("--rounds", type=int, default=2, help=rounds_help)
        p.add_argument("--seed", type=int, default=0, help="seed of the draws and the training")
        p.add_argument("--lr", type=float, default=2e-5, help="learning rate of the fine-tuning")
        p.add_argument("--max-length", type=int, help="longest training/scoring sequence in tokens (default: the model's limit)")
        p.add_argument("--batch-tokens", type=int, default=4096, help="tokens per training batch")
        p.add_argument("--resume", action="store_true", help="continue a crashed run")
        p.add_argument("--output", type=Path, help="final selection as JSONL (default: RUN_DIR/selection.jsonl)")
        p.add_argument("--force", action="store_true", help="replace an existing --output")
        p.add_argument("--no-progress", action="store_true", help="hide every progress bar")
        if name == "diverse-evol":
            p.add_argument("--initial-size", type=int, help="random initial pool (default: --budget)")
        elif name == "kmq":
            p.add_argument("--clusters", type=int, default=16, help="k-means clusters")
            p.add_argument("--embeddings", type=Path,
                           help="(N, d) .npy embeddings for clustering (default: MiniLM)")
            p.add_argument("--max-new-tokens", type=int, default=32, help="generated answer length in tokens")
        else:
            p.add_argument("--candidate-factor", type=float, default=3.0,
                           help="candidates kept after scoring: factor x --budget")
            p.add_argument("--decay", type=float, default=0.1,
                           help="coverage decay of a picked record's n-grams")
    p = _add(methods, "insbank", "InsBank/PIBE: evolve a bank as datasets arrive")
    p.add_argument("--input", type=Path, action="append", required=True,
                   help="an arriving dataset (records with a quality field); repeat, in order")
    p.add_argument("--embeddings", type=Path, action="append",
                   help="(N, d) .npy embeddings of the --input of the same position; repeat once "
                        "per --input (default: MiniLM)")
    p.add_argument("--bank-size", type=int, required=True, help="records kept in the bank")
    p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
    p.add_argument("--quality-field", default="quality", help="the records' quality field")
    p.add_argument("--combine", choices=("multiply", "add"), default="multiply",
                   help="how representation and quality combine")
    p.add_argument("--gamma", type=float, default=1.0, help="weight of the quality")
    p.add_argument("--no-history", action="store_true", help="no responsibility history")
    p.add_argument("--history-weight", type=float, default=0.3, help="weight of the history")
    p.add_argument("--history-decay", type=float, default=0.9, help="decay of the history per arrival")
    p.add_argument("--resume", action="store_true", help="continue a crashed run")
    p.add_argument("--output", type=Path, help="final bank as JSONL (default: RUN_DIR/selection.jsonl)")
    p.add_argument("--force", action="store_true", help="replace an existing --output")
    p.add_argument("--no-progress", action="store_true", help="hide every progress bar")


_PARAM_ERROR = re.compile(r"The '(?P<name>[^']+)' parameter of (?P<func>\S+) must be (?P<expected>.*?)\. "
                          r"Got (?P<got>.*?) instead\.(?P<rest>.*)", re.S)


def _about_file(exc: Exception, path, names=("X", "embeddings", "X_or_S")) -> str:
    """A library error about the embeddings array, said about the file they came from."""
    found = _PARAM_ERROR.match(str(exc))
    if path is None or found is None or found["name"] not in names:
        return str(exc)
    return (f"{path}: the embeddings must be {found['expected']}; got "
            f"{found['got'].strip(chr(39))}.{found['rest']}")


def _load_embeddings(path: Path) -> np.ndarray:
    from ._arrays import as_matrix

    if not path.exists():
        raise CliError(f"{path}: no such file")
    try:
        emb = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise CliError(f"{path}: cannot be read as a .npy array ({exc})") from None
    if emb.ndim != 2:
        raise CliError(f"{path}: embeddings must be 2-D (rows x dimensions), got shape {emb.shape}")
    try:  # float and finite, checked here so that the message names the file
        as_matrix(emb, "embeddings", "iterselect")
    except (ValueError, TypeError) as exc:
        raise CliError(_about_file(exc, path)) from None
    return emb


def _check_outputs(inputs: dict, outputs: dict, *, force: bool, own: dict | None = None) -> None:
    """Refuse, before any work, an output that is an input (or another output), and an existing
    --output without --force; ``own`` are files a run directory holds and rewrites itself."""
    from .outputs import OutputError, check_outputs

    try:
        check_outputs(inputs, outputs, force=force)
        if own:
            check_outputs(inputs, own, force=True)
    except OutputError as exc:
        raise CliError(str(exc)) from None


def _write_records(lines, output) -> None:
    """The selected records' JSON lines to ``output``, or to standard output when None."""
    from .io import write_jsonl

    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    try:
        write_jsonl(lines, output)
    except OSError as exc:
        raise CliError(f"{output}: cannot be written ({exc.strerror or exc})") from None


def _select_kcenter(args) -> int:
    from . import datasets
    from .kcenter import kcenter_greedy

    _check_outputs({"--input": args.input, "--embeddings": args.embeddings},
                   {"--output": args.output}, force=args.force)
    progress = not args.no_progress
    records = _records(args)
    n = len(records)
    _check_budget(args.budget, n)
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
        raise CliError(_about_file(exc, args.embeddings)) from None
    _write_records([records.raw[i] for i in result.indices.tolist()], args.output)
    where = f" -> {args.output}" if args.output else ""
    print(f"selected {args.budget} of {n} records{where}; covering radius "
          f"{float(result.radii[-1]):.6f} ({args.metric})", file=sys.stderr)
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
    from .methods import baselines
    from .runs import atomic_write_json

    report_path = args.report or (args.output.with_name(args.output.name + ".report.json")
                                  if args.output else None)
    _check_outputs({"--input": args.input, "--embeddings": getattr(args, "embeddings", None),
                    "--scores": getattr(args, "scores", None)},
                   {"--output": args.output, "--report": report_path}, force=args.force)
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
        else:
            result = baselines.ifd_topk(_vector(args.scores, n, "--scores"), args.budget)
    except (ValueError, TypeError) as exc:
        raise CliError(_about_file(exc, getattr(args, "embeddings", None))) from None
    idx = result.indices.tolist()
    report = {"method": result.method, "budget": args.budget, "n_records": n,
              "selected": len(idx), "n_dropped": result.n_dropped, "indices": idx,
              "scores": result.scores.tolist()}
    _write_records([records.raw[i] for i in idx], args.output)
    if report_path:
        try:
            atomic_write_json(report, report_path)
        except OSError as exc:
            raise CliError(f"{report_path}: cannot be written ({exc.strerror or exc})") from None
    where = f" -> {args.output}" if args.output else ""
    print(f"selected {len(idx)} of {n} records ({result.method}){where}"
          + (f"; report {report_path}" if report_path else ""), file=sys.stderr)
    return 0


def _fingerprints(args, model) -> dict:
    """What a resumed run must read again: every input file (the bundled Dolly when no --input)
    and the model."""
    from ._fingerprint import file_fingerprint, model_fingerprint
    from .datasets import dolly_path

    found = {}
    for flag in ("input", "embeddings"):
        value = getattr(args, flag, None)
        if flag == "input" and value is None:
            value = dolly_path()
        paths = value if isinstance(value, list) else [value]
        for k, path in enumerate(paths):
            if path is not None:
                found[f"--{flag}" if len(paths) == 1 else f"--{flag} #{k + 1}"] = file_fingerprint(path)
    if model is not None:
        found["--model"] = model_fingerprint(model)
    return found


def _claim(args, method_name: str, model=None):
    """Lock the run directory and check it before the expensive work (embedding, training)."""
    from .runs import RunError, claim_run

    try:
        return claim_run(args.run_dir, method=method_name, resume=args.resume,
                         inputs=_fingerprints(args, model), how_to_resume=RESUME_HINT)
    except RunError as exc:
        raise CliError(str(exc)) from None


def _run_outputs(args, inputs: dict) -> Path:
    """Check a run's outputs against its inputs; returns the selection's path."""
    own = [args.run_dir / "report.json", args.run_dir / "plot.png"]
    if args.output is None:
        own.append(args.run_dir / "selection.jsonl")
    _check_outputs(inputs, {"--output": args.output}, force=args.force, own={"--run-dir": own})
    return args.output or args.run_dir / "selection.jsonl"


def _finish_run(args, method_name: str, n: int, result, output, extra=None) -> None:
    """The selection, report.json (configuration, versions, timings, model) and plot.png."""
    from .plots import plot_rounds
    from .runs import atomic_write_json, environment, round_seconds

    reports = list(result.reports)
    seconds = round_seconds(args.run_dir)
    report = {"method": method_name, "n_records": n, "selected": result.selected,
              "configuration": {k: str(v) if isinstance(v, Path) else
                                [str(x) for x in v] if isinstance(v, list) else v
                                for k, v in sorted(vars(args).items())},
              "environment": environment(), "seconds_per_round": seconds,
              "model": getattr(args, "model", None), "model_path": result.model_path,
              **(extra or {}), "rounds": reports}
    try:
        atomic_write_json(report, args.run_dir / "report.json")
        plot_rounds(reports, args.run_dir / "plot.png", title=method_name)
    except OSError as exc:
        raise CliError(f"{exc.filename}: cannot be written ({exc.strerror or exc})") from None


def _round_printer(word: str):
    """``on_round_end`` for the methods: one line a round on standard error, and a warning
    when more than a tenth of a round's generated answers could not be scored."""

    started = [time.monotonic()]

    def report(t, rep) -> None:
        seconds, started[0] = time.monotonic() - started[0], time.monotonic()
        parts = []
        for key in ("objective", "diversity"):
            value = rep.get(key)
            shown = f"{value:.6g}" if isinstance(value, (int, float)) else "-"
            parts.append(f"{rep.get(f'{key}_name', key)} {shown}")
        line = f"{word} {t}: " + "; ".join(parts) + f" ({seconds:.1f} s)"
        unscored = int(rep.get("n_unscored") or 0)
        total = unscored + int(rep.get("n_scored") or 0)
        if unscored:
            line += f"; {unscored} of {total} generated answers unscored"
        print(line, file=sys.stderr, flush=True)
        if unscored and unscored * 10 > total:
            print(f"iterselect: warning: {word} {t}: {unscored} of {total} generated answers were "
                  f"empty or whitespace only and could not be scored, so the objective averages "
                  f"the other {total - unscored}; a model that small or that briefly trained "
                  "answers that way (see --max-new-tokens, --lr, or a larger model)",
                  file=sys.stderr, flush=True)

    return report


def _run_insbank(args) -> int:
    from .io import DataError, read_records
    from .methods.insbank import InsBank
    from .runs import RunError

    if args.embeddings and len(args.embeddings) != len(args.input):
        raise CliError(f"--embeddings must be given once per --input ({len(args.input)}), got "
                       f"{len(args.embeddings)}")
    output = _run_outputs(args, {"--input": args.input, "--embeddings": args.embeddings})
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
        method = InsBank(args.bank_size, combine=args.combine, gamma=args.gamma,
                         use_history=not args.no_history, history_weight=args.history_weight,
                         history_decay=args.history_decay, progress=not args.no_progress)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    with _claim(args, method.name):
        try:
            result = method.run(sets, args.run_dir, quality_field=args.quality_field,
                                resume=args.resume, on_round_end=_round_printer("arrival"))
        except (RunError, ValueError, TypeError, OSError) as exc:
            raise CliError(str(exc)) from None
        _write_records([raws[i] for i in result.selected.tolist()], output)
        _finish_run(args, method.name, len(raws), result, output,
                    {"inputs": [str(p) for p in args.input]})
    print(f"bank of {result.selected.size} of {len(raws)} records -> {output}; report "
          f"{args.run_dir / 'report.json'}, plot {args.run_dir / 'plot.png'}", file=sys.stderr)
    return 0


def _clustering_embeddings(args, records, progress: bool, given=None) -> np.ndarray:
    """kMQ's fixed embeddings: ``given`` (read from --embeddings), else MiniLM (the cached Dolly
    set when it is the bundled data and cached or complete, else computed for just these
    records)."""
    from . import datasets

    n = len(records)
    if given is not None:
        emb = given
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
    from .methods import DiverseEvol, IterativeKMQ, IterIT, TrainConfig
    from .runs import RunError

    model_dir = args.model if args.model != "toy" and Path(args.model).exists() else None
    output = _run_outputs(args, {"--input": args.input, "--embeddings": getattr(args, "embeddings", None),
                                 "--model": model_dir})
    records = _records(args)
    if args.limit is not None:
        if args.limit < 1:
            raise CliError(f"--limit must be at least 1, got {args.limit}")
        records = type(records)(records.records[:args.limit], records.raw[:args.limit])
    n = len(records)
    _check_budget(args.budget, n)
    if args.method == "kmq" and not 1 <= args.clusters <= n:
        raise CliError(f"--clusters must be between 1 and the number of records ({n}), got {args.clusters}")
    progress = not args.no_progress
    tokenizer = None
    model = args.model
    if args.model == "toy":  # its tokenizer learns the data's words, so its answers are not blank
        from .scoring.toy import toy_for_records

        model, tokenizer = toy_for_records(records.records)
    elif model_dir is None and "/" not in args.model:
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
                            decay=args.decay, seed=args.seed, train=train, progress=progress)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    # a bad --embeddings file is refused before the run directory is made
    given = _load_embeddings(args.embeddings) if getattr(args, "embeddings", None) else None
    with _claim(args, method.name, model):
        try:
            if tokenizer is None:
                from .scoring import load_tokenizer

                tokenizer = load_tokenizer(args.model)
            if args.method == "kmq":
                result = method.run(model, tokenizer, records.records, _clustering_embeddings(args, records, progress, given),
                                    args.run_dir, resume=args.resume, on_round_end=_round_printer("round"))
            else:
                result = method.run(model, tokenizer, records.records, args.run_dir, resume=args.resume,
                                    on_round_end=_round_printer("round"))
        except (RunError, ValueError, TypeError, OSError) as exc:
            raise CliError(_about_file(exc, getattr(args, "embeddings", None))) from None
        _write_records([records.raw[i] for i in result.selected.tolist()], output)
        _finish_run(args, method.name, n, result, output)
    print(f"selected {result.selected.size} of {n} records -> {output}; report "
          f"{args.run_dir / 'report.json'}, plot {args.run_dir / 'plot.png'}", file=sys.stderr)
    return 0


def _usage(parser) -> str:
    return (parser.format_usage() + "\nCommands:\n  select   select a subset with a static selector\n"
            "  run      run a model-in-the-loop method\n\n"
            "Run 'iterselect --help', or 'iterselect COMMAND --help', for the options.\n")


def main(argv=None) -> int:
    from ._extras import missing_dependency

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        sys.stderr.write(_usage(parser))
        return EXIT_USAGE
    try:
        args = parser.parse_args(argv)
        if getattr(args, "no_progress", False):
            from ._progress import silence_library_bars

            silence_library_bars()
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
    except ImportError as exc:
        print(f"iterselect: error: {missing_dependency(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("iterselect: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
