"""The ``iterselect`` command.

    iterselect select {random,longest,knn,deita,ifd,kmclosest,kmrandom,kmq,qdit} --budget N
                      [--input FILE] [--output FILE] [--report FILE.json]
                      [--embeddings FILE.npy] [--scores FILE.npy | --quality-field NAME]
    iterselect select {least-confidence,margin} --model PATH|toy --budget N ...
    iterselect run {diverse-evol,iterit,kmq} --model PATH|toy --run-dir DIR [--budget N]
                   [--rounds R] [--input FILE] [--limit N] [--resume]
                   [--epochs E] [--lr LR] [--batch-size B] [--warmup-steps W] [--scheduler S] ...
    iterselect run insbank --input A.jsonl --input B.jsonl ... --bank-size M --run-dir DIR
                   [--embeddings A.npy --embeddings B.npy ...] [--quality-field quality]
                   [--combine multiply|add] [--gamma G] [--no-history] [--resume]

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

from .training.recipe import SCHEDULERS

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


def _add_quality(p, required=False):
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--scores", "--quality-scores", dest="scores", type=Path,
                   help="(N,) .npy quality scores, higher is better")
    g.add_argument("--quality-field", help="the records' numeric quality field")


def _add_clusters(p):
    p.add_argument("--clusters", default="auto",
                   help="k-means clusters, or 'auto': k of the best silhouette (default auto)")
    p.add_argument("--seed", type=int, default=42, help="k-means and sampling seed (default 42, "
                   "the kMQ paper's Appendix A)")


def _add_baseline_parsers(methods):
    p = methods.add_parser("random", help="uniform random subset")
    _common_select(p)
    p.add_argument("--seed", type=int, default=0)
    _common_select(methods.add_parser("longest", help="longest responses first"))
    _common_select(methods.add_parser("knn", help="largest distance to the nearest neighbour first"),
                   embeddings=True)
    p = methods.add_parser("deita", help="by quality, skipping near-duplicates (cosine >= threshold)")
    _common_select(p, embeddings=True)
    _add_quality(p, required=True)
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--distance", choices=("cosine", "sqeuclidean"), default="cosine",
                   help="cosine similarity (DEITA) or squared L2 distance (the kMQ paper's "
                        "published code)")
    _common_select(methods.add_parser("ifd", help="highest IFD below 1 first"),
                   scores="(N,) .npy IFD scores (NaN allowed, dropped)")
    p = methods.add_parser("kmclosest", help="kM-Closest: k-means, per-cluster budgets, closest "
                           "to each centroid")
    _common_select(p, embeddings=True)
    _add_clusters(p)
    p = methods.add_parser("kmrandom", help="kM-Random: k-means, per-cluster budgets, random "
                           "inside each cluster")
    _common_select(p, embeddings=True)
    _add_clusters(p)
    p = methods.add_parser("kmq", help="kMQ: k-means, per-cluster budgets, quality-weighted draws")
    _common_select(p, embeddings=True)
    _add_clusters(p)
    _add_quality(p, required=True)
    p.add_argument("--within", choices=("multinomial", "softmax"), default="multinomial",
                   help="draw probability proportional to quality (paper) or exp(quality)")
    p.add_argument("--replace", action="store_true", help="draw with replacement (Eq. 3 as written)")
    p = methods.add_parser("qdit", help="QDIT: greedy facility location plus quality")
    _common_select(p, embeddings=True)
    _add_quality(p, required=True)
    p.add_argument("--quality-weight", type=float, default=0.5, help="alpha (default 0.5)")
    p.add_argument("--n-neighbors", type=int, default=100)
    for name, help_ in (("least-confidence", "DiverseEvol's Least-Confidence: lowest mean "
                         "max-logit under a model first"),
                        ("margin", "DiverseEvol's Margin-Sampling: smallest mean top-2 logit "
                         "margin under a model first")):
        p = methods.add_parser(name, help=help_)
        _common_select(p)
        p.add_argument("--model", required=True,
                       help="causal LM directory or hub name; 'toy' builds a tiny local model")
        p.add_argument("--max-length", type=int, help="longest scored sequence in tokens")
        p.add_argument("--positions", choices=("all", "response"), default="all",
                       help="average over every position (paper, published code) or the "
                            "response's")


_RUN_HELP = {
    "diverse-evol": "DiverseEvol: fine-tune, embed, k-center, repeat",
    "iterit": "IterIT: IFD candidates, per-epoch IFD x coverage, one continuous training run",
    "kmq": "iterative kMQ (kM-Random without quality): k-means, draw, fine-tune, generate, "
           "score, re-weight",
}


def _method_class(name):
    from .methods import DiverseEvol, IterativeKMQ, IterIT

    return {"diverse-evol": DiverseEvol, "iterit": IterIT, "kmq": IterativeKMQ}[name]


def _add_recipe(p, name):
    recipe = _method_class(name).PAPER_RECIPE
    p.add_argument("--epochs", type=int, help=f"training epochs (paper: {recipe.epochs})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (paper: {recipe.lr:g})")
    p.add_argument("--batch-size", type=int,
                   help=f"sequences per optimizer step (paper: {recipe.batch_size})")
    p.add_argument("--batch-tokens", type=int,
                   help=f"token budget of a micro-batch (default {recipe.batch_tokens})")
    warm = (f"{recipe.warmup_steps} steps" if recipe.warmup_steps is not None
            else f"ratio {recipe.warmup_ratio:g}")
    p.add_argument("--warmup-steps", type=int, help=f"linear warm-up steps (paper: {warm})")
    p.add_argument("--warmup-ratio", type=float, help="warm-up as a fraction of all steps")
    p.add_argument("--scheduler", choices=SCHEDULERS,
                   help=f"learning-rate schedule after the warm-up (paper: {recipe.scheduler})")
    p.add_argument("--max-length", type=int, help="longest training/scoring sequence in tokens")


def _recipe(args, cls):
    from dataclasses import replace

    recipe = cls.PAPER_RECIPE
    if args.warmup_ratio is not None and args.warmup_steps is None:
        recipe = replace(recipe, warmup_steps=None)
    return recipe.with_(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                        batch_tokens=args.batch_tokens, warmup_steps=args.warmup_steps,
                        warmup_ratio=args.warmup_ratio, scheduler=args.scheduler,
                        max_length=args.max_length)


def _add_run_parsers(sub):
    run = sub.add_parser("run", help="run a model-in-the-loop method")
    methods = run.add_subparsers(dest="method", required=True, parser_class=_Parser)
    for name, help_ in _RUN_HELP.items():
        cls = _method_class(name)
        p = methods.add_parser(name, help=help_,
                               description=f"{help_}. The paper's training recipe: "
                                           f"{cls.PAPER_RECIPE.describe()} ({cls.RECIPE_SOURCE}).")
        p.add_argument("--model", required=True,
                       help="causal LM directory or hub name; 'toy' builds a tiny local model")
        p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
        p.add_argument("--input", type=Path, help="records; default: bundled Dolly 15k")
        p.add_argument("--limit", type=int, help="use only the first N records")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--resume", action="store_true", help="continue a crashed run")
        p.add_argument("--output", type=Path, help="final selection as JSONL (default: RUN_DIR/selection.jsonl)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        _add_recipe(p, name)
        if name == "diverse-evol":
            p.add_argument("--budget", type=int, default=100,
                           help="records added per round, k (paper: 100)")
            p.add_argument("--rounds", type=int, default=10, help="rounds T (paper: 10)")
            p.add_argument("--initial-size", type=int, help="random initial pool (default: --budget)")
            p.add_argument("--strategy", choices=("kcenter", "random", "least-confidence", "margin"),
                           default="kcenter", help="k-center (DiverseEvol) or a baseline of §4.1")
            p.add_argument("--embedding-text", choices=("alpaca", "published", "plain"),
                           default="alpaca", help="text embedded per record (paper: alpaca)")
        elif name == "kmq":
            p.add_argument("--budget", type=int, required=True, help="records selected in all, b")
            p.add_argument("--rounds", type=int, default=3, help="iterations N (paper: 3)")
            p.add_argument("--clusters", default="auto",
                           help="k-means clusters, or 'auto': k of the best silhouette (default)")
            p.add_argument("--embeddings", type=Path,
                           help="(N, d) .npy embeddings for clustering (default: MiniLM)")
            p.add_argument("--max-new-tokens", type=int, default=512,
                           help="generated answer length (default 512, the published code's)")
            g = p.add_mutually_exclusive_group()
            g.add_argument("--quality-field", help="the records' numeric quality field (kMQ)")
            g.add_argument("--quality-scores", type=Path, help="(N,) .npy quality scores (kMQ)")
            g.add_argument("--quality-model", help="a reward or regression model (sequence "
                           "classification) that scores every record in its own chat template")
            p.add_argument("--within", choices=("multinomial", "softmax"), default="multinomial",
                           help="draws inside a cluster proportional to quality (paper) or to "
                                "exp(quality) (needed for negative scores)")
            p.add_argument("--reward-model", help="the scorer of Eq. 4 (sequence classification "
                           "model directory); default: perplexity, Eq. 7")
            p.add_argument("--perplexity", choices=("sequence", "response"), default="sequence",
                           help="Eq. 7 on the whole x+y text (paper) or the response given x")
            p.add_argument("--weight-rule", choices=("exp", "published", "shift", "ratio"),
                           default="exp", help="Eq. 5-6 with negative scores (default exp)")
            p.add_argument("--allocation", choices=("proportional", "equal", "multinomial"),
                           default="proportional")
            p.add_argument("--train-from", choices=("base", "previous"), default="base",
                           help="fine-tune the base model each iteration (paper) or continue")
        else:
            p.add_argument("--budget", type=int, required=True,
                           help="records trained on per epoch, M")
            p.add_argument("--rounds", type=int, help="epochs T (same as --epochs; paper: 3)")
            p.add_argument("--candidate-factor", type=float, default=3.0)
            p.add_argument("--decay", type=float, default=0.1)
    p = methods.add_parser("insbank", help="InsBank/PIBE: evolve a bank as datasets arrive")
    p.add_argument("--input", type=Path, action="append", required=True,
                   help="an arriving dataset (records with a quality field); repeat, in order")
    p.add_argument("--embeddings", type=Path, action="append",
                   help="(N, d) .npy embeddings of the --input of the same position; repeat once "
                        "per --input (default: MiniLM)")
    p.add_argument("--bank-size", type=int, required=True, help="records kept in the bank")
    p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
    p.add_argument("--quality-field", default="quality", help="the records' quality field")
    p.add_argument("--combine", choices=("multiply", "add"), default="multiply")
    p.add_argument("--gamma", type=float, default=1.0, help="weight of the quality")
    p.add_argument("--no-history", action="store_true", help="no responsibility history")
    p.add_argument("--history-weight", type=float, default=0.3)
    p.add_argument("--history-decay", type=float, default=0.9)
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


def _clusters(value):
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise CliError(f"--clusters must be an int or 'auto', got {value!r}") from None


def _quality(args, records, n):
    """Quality scores from --quality-field or --scores/--quality-scores (None when neither)."""
    field = getattr(args, "quality_field", None)
    if field:
        values = []
        for i, r in enumerate(records.records):
            v = r.get(field) if isinstance(r, dict) else None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise CliError(f"{args.input or 'the records'}: record {i + 1}: {field!r} must "
                               f"be a finite number, got {v!r}")
            values.append(float(v))
        return np.asarray(values)
    path = getattr(args, "scores", None) or getattr(args, "quality_scores", None)
    return None if path is None else _vector(path, n, "--quality-scores")


def _causal_lm(name):
    """(model, tokenizer) of --model: 'toy' or a directory / hub name."""
    if name == "toy":
        from .scoring.toy import toy_model_and_tokenizer

        return toy_model_and_tokenizer()
    if not Path(name).exists() and "/" not in name:
        raise CliError(f"--model {name}: no such directory (give a model directory, a hub "
                       "name such as 'org/name', or 'toy')")
    from .scoring import load_model, load_tokenizer

    return load_model(name), load_tokenizer(name)


def _baseline_result(args, records, emb, n, progress):
    from .methods import baselines, cluster_baselines, uncertainty

    k = args.budget
    if args.method == "random":
        return baselines.random_select(n, k, seed=args.seed)
    if args.method == "longest":
        return baselines.longest_response(records.records, k)
    if args.method == "knn":
        return baselines.knn_distance(emb, k, metric=args.metric)
    if args.method == "deita":
        return baselines.deita_select(emb, _quality(args, records, n), k,
                                      threshold=args.threshold, metric=args.distance)
    if args.method == "ifd":
        return baselines.ifd_topk(_vector(args.scores, n, "--scores"), k)
    if args.method == "kmclosest":
        return cluster_baselines.kmeans_closest_select(emb, k, n_clusters=_clusters(args.clusters),
                                                       seed=args.seed)
    if args.method == "kmrandom":
        return cluster_baselines.kmeans_random_select(emb, k, n_clusters=_clusters(args.clusters),
                                                      seed=args.seed)
    if args.method == "kmq":
        return cluster_baselines.kmq_select(emb, k, quality=_quality(args, records, n),
                                            n_clusters=_clusters(args.clusters), seed=args.seed,
                                            within=args.within, replace=args.replace)
    if args.method == "qdit":
        return cluster_baselines.qdit_select(emb, k, quality=_quality(args, records, n),
                                             quality_weight=args.quality_weight,
                                             n_neighbors=args.n_neighbors, progress=progress)
    model, tokenizer = _causal_lm(args.model)
    pick = (uncertainty.least_confidence_select if args.method == "least-confidence"
            else uncertainty.margin_select)
    return pick(records.records, k, model=model, tokenizer=tokenizer, positions=args.positions,
                max_length=args.max_length, progress=progress)


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
        result = _baseline_result(args, records, emb, n, progress)
    except (ValueError, TypeError, ImportError, OSError) as exc:
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
        method = InsBank(args.bank_size, combine=args.combine, gamma=args.gamma,
                         use_history=not args.no_history, history_weight=args.history_weight,
                         history_decay=args.history_decay, progress=not args.no_progress)

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


def _kmq_quality(args, records, n, progress):
    """kMQ's quality: a field, a .npy file, or a reward/regression model's score of each record
    in the model's own chat template (None: the run is kM-Random)."""
    if not args.quality_model:
        return _quality(args, records, n)
    from .scoring import load_model, load_tokenizer
    from .scoring.reward import quality_scores

    qm = load_model(args.quality_model, task="sequence-classification")
    return quality_scores(qm, load_tokenizer(args.quality_model), records.records,
                          progress=progress)


def _run_method(args) -> int:
    from .io import write_jsonl
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
    cls = _method_class(args.method)
    try:
        train = _recipe(args, cls)
        if args.method == "diverse-evol":
            method = cls(args.initial_size or args.budget, args.budget, args.rounds,
                         strategy=args.strategy, embedding_text=args.embedding_text,
                         seed=args.seed, train=train, progress=progress)
        elif args.method == "kmq":
            method = cls(args.budget, args.rounds, _clusters(args.clusters),
                         max_new_tokens=args.max_new_tokens, within=args.within,
                         weight_rule=args.weight_rule, perplexity_of=args.perplexity,
                         allocation=args.allocation, train_from=args.train_from,
                         seed=args.seed, train=train, progress=progress)
        else:
            epochs = args.epochs or args.rounds or cls.PAPER_RECIPE.epochs
            method = cls(args.budget, epochs, candidate_factor=args.candidate_factor,
                         decay=args.decay, seed=args.seed, train=train, progress=progress)
        model, tokenizer = _causal_lm(args.model)
        title = method.name

        def report_round(t, rep):
            print(f"{title}: round {t}: objective {rep.get('objective')} diversity "
                  f"{rep.get('diversity')}", file=sys.stderr)

        if args.method == "kmq":
            quality = _kmq_quality(args, records, n, progress)
            title = f"iterative {method.variant(quality)}"
            if quality is None:
                print(f"{title}: no quality scores, so the draws inside each cluster are uniform "
                      "(the paper's kM-Random); pass --quality-field, --quality-scores or "
                      "--quality-model for kMQ", file=sys.stderr)
            reward, rtok = None, None
            if args.reward_model:
                from .scoring import load_model, load_tokenizer

                reward = load_model(args.reward_model, task="sequence-classification")
                rtok = load_tokenizer(args.reward_model)
            result = method.run(model, tokenizer, records.records,
                                _clustering_embeddings(args, records, progress), args.run_dir,
                                quality=quality, reward_model=reward, reward_tokenizer=rtok,
                                resume=args.resume, on_round_end=report_round)
        else:
            result = method.run(model, tokenizer, records.records, args.run_dir,
                                resume=args.resume, on_round_end=report_round)
    except (RunError, ValueError, TypeError, OSError) as exc:
        raise CliError(str(exc)) from None
    output = args.output or args.run_dir / "selection.jsonl"
    write_jsonl([records.raw[i] for i in result.selected.tolist()], output)
    reports = list(result.reports)
    atomic_write_json({"method": method.name, "variant": result.variant, "title": title,
                       "n_records": n, "selected": result.selected,
                       "model_path": result.model_path, "rounds": reports},
                      args.run_dir / "report.json")
    plot_rounds(reports, args.run_dir / "plot.png", title=title)
    print(f"{title}: selected {result.selected.size} of {n} records -> {output}; report "
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
