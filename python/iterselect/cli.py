"""The ``iterselect`` command.

    iterselect select {random,longest,knn,deita,ifd,graphfilter,kmclosest,kmrandom,kmq,qdit}
                      --budget N [--input FILE] [--output FILE] [--report FILE.json]
                      [--embeddings FILE.npy] [--scores FILE.npy | --quality-field NAME]
    iterselect select {least-confidence,margin} --model PATH|toy --budget N ...
    iterselect run {diverse-evol,iterit,kmq} --model PATH|toy --run-dir DIR [--budget N]
                   [--rounds R] [--input FILE] [--limit N] [--resume]
                   [--epochs E] [--lr LR] [--batch-size B] [--warmup-steps W] [--scheduler S] ...
    iterselect run insbank --input A.jsonl --input B.jsonl ... --bank-size M --run-dir DIR
                   [--embeddings A.npy --embeddings B.npy ...] [--quality-field quality]
                   [--combine multiply|add] [--gamma G] [--no-history] [--resume]
                   [--history-convention paper|published] [--normalize paper|published]
                   [--preference 0|median] [--batch-size B] [--mode auto|dense|sparse]

    iterselect select kcenter --budget N [--input FILE] [--embeddings FILE.npy]
                              [--output FILE] [--metric euclidean|cosine] [--seed-index I]
    iterselect embed --input FILE --output EMB.npy [--model minilm|PATH] [--dtype float16]
                     [--batch-size N] [--resume] [--force]
    iterselect score {ifd,perplexity,embed,reward} --model PATH --input FILE --output DIR
                     [--ray [ADDRESS]] [--actors N] [--gpus-per-actor G] [--resume] [--force]
    iterselect bench [--suite speed|quality|all] [--n 10000,100000,1000000] [--k 1000]
                     [--embeddings FILE.npy] [--input FILE] [--out DIR] [--quick] [--force]

    iterselect --version | --help | COMMAND --help

An input is JSON Lines (.jsonl, .jsonl.gz), a JSON array (.json), Parquet (.parquet) or a
Hugging Face datasets folder; --instruction-field, --input-field, --response-field and
--conversations-field map other schemas onto Alpaca's and ShareGPT's. With no --input a command
uses the bundled Dolly 15k set (its MiniLM embeddings are computed once and cached). The
selected records are written unchanged, in selection order, in the input's format unless
--output's extension names another (JSON Lines to standard output without --output). Embeddings
(.npy) are memory-mapped. Steps expected to take over a minute or a quarter of the free memory
print their estimate first; --dry-run prints the plan and exits, and a plan that does not fit
stops before it allocates. Summaries go to standard error. No command writes over one of its
inputs, an existing --output needs --force, and one process at a time works in a run directory
(--resume refuses inputs or a model that changed). Any error is one line on standard error and
exit code 2, a missing optional dependency included (the line names the extra to install).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .exceptions import RunError
from .runs import atomic_write_json
from .training.recipe import SCHEDULERS

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


COMMANDS = {"select": "select a subset with a static selector",
            "run": "run a model-in-the-loop method",
            "embed": "embed records into a memory-mapped .npy (resumable)",
            "bench": "benchmark the kernels against their references (speed) and the selectors "
                     "(quality)"}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="iterselect", description="Fast, exact training-subset selection.",
                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"iterselect {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="{" + ",".join(COMMANDS) + "}")
    select = _add(sub, "select", COMMANDS["select"])
    methods = select.add_subparsers(dest="method", required=True, parser_class=_Parser)
    kc = _add(methods, "kcenter", "k-center greedy on embeddings")
    kc.add_argument("--budget", type=int, required=True, help="number of records to select")
    kc.add_argument("--input", type=Path, help=INPUT_HELP)
    kc.add_argument("--embeddings", type=Path, help="(N, d) .npy embeddings, row i for record i (default: MiniLM)")
    kc.add_argument("--output", type=Path, help=OUTPUT_HELP)
    kc.add_argument("--force", action="store_true", help="replace an existing --output")
    kc.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                    help="distance between embeddings")
    kc.add_argument("--seed-index", type=int, default=0, help="first pick")
    kc.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    _add_ray_address(kc, "run on a Ray cluster, the rows sharded over its nodes (same selection)")
    _add_data_flags(kc)
    _add_baseline_parsers(methods)
    _add_run_parsers(sub)
    _add_embed_parser(sub)
    _add_score_parser(sub)
    _add_bench_parser(sub)
    return parser


def _add_bench_parser(sub):
    from .bench.command import add_arguments

    p = _add(sub, "bench", COMMANDS["bench"])
    add_arguments(p)
    _add_data_flags(p)


INPUT_HELP = ("records: .jsonl, .jsonl.gz, .json, .parquet or a datasets folder; default: "
              "bundled Dolly 15k")
OUTPUT_HELP = ("where to write the selected records, in the input's format unless the extension "
               "(.jsonl, .jsonl.gz, .json, .parquet) names another (default: JSON Lines to stdout)")


def _add_data_flags(p):
    """The field mapping (Alpaca's and ShareGPT's names by default), the split of a datasets
    folder, and --dry-run."""
    p.add_argument("--instruction-field", default="instruction", help="field of the instruction")
    p.add_argument("--input-field", default="input", help="field of the optional input")
    p.add_argument("--response-field", default="output", help="field of the response")
    p.add_argument("--conversations-field", default="conversations",
                   help="field of ShareGPT turns (a record with it is a conversation)")
    p.add_argument("--split", help="split of a saved DatasetDict (default: train, or its only split)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and its time and memory estimates, then exit")


def _fields(args):
    from .io import FieldMap

    try:
        return FieldMap(instruction=args.instruction_field, input=args.input_field,
                        response=args.response_field, conversations=args.conversations_field)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _add_embed_parser(sub):
    p = _add(sub, "embed", COMMANDS["embed"])
    p.add_argument("--input", type=Path, required=True, help=INPUT_HELP.split(";")[0])
    p.add_argument("--output", type=Path, required=True, help="the .npy to write (N x d)")
    p.add_argument("--model", default="minilm",
                   help="'minilm' (the bundled all-MiniLM-L6-v2) or a sentence-transformers directory")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="storage type")
    p.add_argument("--batch-size", type=int, default=64, help="the model's batch size")
    p.add_argument("--chunk-size", type=int, default=1024,
                   help="records written and recorded at a time (a kill loses at most one chunk)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    _add_data_flags(p)


def _add_ray_address(p, what: str):
    """--ray [ADDRESS], the same in every command: no ADDRESS means "auto"."""
    p.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                   help=f"{what}; no ADDRESS or 'auto': $RAY_ADDRESS, else the cluster 'ray start' "
                        "runs here, else a new local one")


def _add_ray_flags(p, *, default_actors):
    _add_ray_address(p, "score and embed on a Ray actor pool (training stays here)")
    p.add_argument("--actors", type=int, default=default_actors,
                   help=f"Ray actors, one model replica each (default {default_actors})")
    p.add_argument("--gpus-per-actor", type=float,
                   help="GPUs per actor (default: 1 when the cluster has GPUs, else CPU actors)")


def _add_score_parser(sub):
    p = sub.add_parser("score", help="score or embed records on a Ray actor pool (Parquet out, "
                       "resumable)")
    p.add_argument("what", choices=("ifd", "perplexity", "embed", "reward"))
    p.add_argument("--model", required=True,
                   help="model directory or hub name (a reward model for 'reward'); for 'embed', "
                        "'minilm' or a sentence-transformers directory embeds sentences")
    p.add_argument("--tokenizer", help="tokenizer directory (default: the model's)")
    p.add_argument("--input", type=Path, help=INPUT_HELP)
    p.add_argument("--output", type=Path, required=True,
                   help="folder of Parquet parts (one per block) and its manifest")
    _add_ray_flags(p, default_actors=1)
    p.add_argument("--block-size", type=int, default=1024,
                   help="records a block: an actor's unit of work, a Parquet part, a resume step")
    p.add_argument("--id-field", help="a field of every record written as the id column")
    p.add_argument("--template", choices=("alpaca", "chat"), help="prompt format (default alpaca)")
    p.add_argument("--max-length", type=int, help="longest sequence in tokens")
    p.add_argument("--batch-tokens", type=int, help="token budget of a padded batch")
    p.add_argument("--pooling", choices=("mean", "last"), help="embed with a language model")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_data_flags(p)


def _common_select(p, *, embeddings=False, scores=None):
    p.add_argument("--budget", type=int, required=True, help="number of records to select")
    p.add_argument("--input", type=Path, help=INPUT_HELP)
    p.add_argument("--output", type=Path, help=OUTPUT_HELP)
    p.add_argument("--report", type=Path, help="JSON report (default: OUTPUT.report.json when --output is given)")
    p.add_argument("--force", action="store_true", help="replace an existing --output or --report")
    p.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    _add_data_flags(p)
    if embeddings:
        p.add_argument("--embeddings", type=Path, help="(N, d) .npy embeddings, row i for record i (default: MiniLM)")
        p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                       help="distance between embeddings")
    if scores:
        p.add_argument("--scores", type=Path, required=True, help=scores)


def _add_quality(p, required=False):
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--scores", "--quality-scores", dest="scores", type=Path,
                   help="(N,) .npy quality scores, higher is better")
    g.add_argument("--quality-field", help="the records' numeric quality field")


def _add_clusters(p):
    p.add_argument("--clusters", default="auto",
                   help="k-means clusters, or 'auto': k of the best silhouette")
    p.add_argument("--seed", type=int, default=42, help="k-means and sampling seed (42 is the kMQ "
                   "paper's, Appendix A)")


def _add_baseline_parsers(methods):
    p = _add(methods, "random", "uniform random subset")
    _common_select(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the draw")
    _common_select(_add(methods, "longest", "longest responses first"))
    _common_select(_add(methods, "knn", "largest distance to the nearest neighbour first"),
                   embeddings=True)
    p = _add(methods, "deita", "by quality, skipping near-duplicates (cosine >= threshold)")
    _common_select(p, embeddings=True)
    _add_quality(p, required=True)
    p.add_argument("--threshold", type=float, default=0.9,
                   help="cosine similarity (or, with --distance sqeuclidean, the squared L2 "
                        "distance) that makes a near-duplicate")
    p.add_argument("--distance", choices=("cosine", "sqeuclidean"), default="cosine",
                   help="cosine similarity (DEITA) or squared L2 distance (the kMQ paper's "
                        "published code)")
    _common_select(_add(methods, "ifd", "highest IFD below 1 first"),
                   scores="(N,) .npy IFD scores (NaN allowed, dropped)")
    p = _add(methods, "graphfilter", "GraphFilter: IFD x TF-IDF of the instructions, "
                           "greedy, covered n-grams removed")
    _common_select(p, scores="(N,) .npy IFD scores (NaN allowed, dropped)")
    p.add_argument("--weighting", choices=("sklearn", "paper"), default="sklearn",
                   help="TF-IDF weighting of the instructions")
    p = _add(methods, "kmclosest", "kM-Closest: k-means, per-cluster budgets, closest "
                           "to each centroid")
    _common_select(p, embeddings=True)
    _add_clusters(p)
    p = _add(methods, "kmrandom", "kM-Random: k-means, per-cluster budgets, random "
                           "inside each cluster")
    _common_select(p, embeddings=True)
    _add_clusters(p)
    p = _add(methods, "kmq", "kMQ: k-means, per-cluster budgets, quality-weighted draws")
    _common_select(p, embeddings=True)
    _add_clusters(p)
    _add_quality(p, required=True)
    p.add_argument("--within", choices=("multinomial", "softmax"), default="multinomial",
                   help="draw probability proportional to quality (paper) or exp(quality)")
    p.add_argument("--replace", action="store_true", help="draw with replacement (Eq. 3 as written)")
    p = _add(methods, "qdit", "QDIT: greedy facility location plus quality")
    _common_select(p, embeddings=True)
    _add_quality(p, required=True)
    p.add_argument("--quality-weight", type=float, default=0.5, help="alpha, the weight of quality")
    p.add_argument("--n-neighbors", type=int, default=100,
                   help="neighbours per record in the facility-location graph")
    for name, help_ in (("least-confidence", "DiverseEvol's Least-Confidence: lowest mean "
                         "max-logit under a model first"),
                        ("margin", "DiverseEvol's Margin-Sampling: smallest mean top-2 logit "
                         "margin under a model first")):
        p = _add(methods, name, help_)
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
    recipe = cls.PAPER_RECIPE
    if args.warmup_ratio is not None and args.warmup_steps is None:
        recipe = replace(recipe, warmup_steps=None)
    return recipe.with_(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                        batch_tokens=args.batch_tokens, warmup_steps=args.warmup_steps,
                        warmup_ratio=args.warmup_ratio, scheduler=args.scheduler,
                        max_length=args.max_length)


# What --budget and --rounds mean differs between the methods; each says it in its own help.
_RUN_METHODS = {
    "diverse-evol": (
        "records added per round, k (paper: 100); with the initial pool (--initial-size, default "
        "--budget) the run selects --initial-size + rounds x budget (--budget 100 --rounds 3: 400)",
        "rounds T of fine-tune, embed and k-center after the initial pool (paper: 10)"),
    "iterit": (
        "records selected and trained on in each epoch, M; the final selection is the last "
        "epoch's M records",
        "epochs T, each selecting its M records again with the current model (same as --epochs; "
        "paper: 3)"),
    "kmq": (
        "records selected in total over all rounds, b (each iteration draws budget / rounds; "
        "the first also the remainder)",
        "iterations N (paper: 3), each a draw with the current cluster weights followed by "
        "fine-tuning, generating, scoring and re-weighting"),
}


def _add_run_parsers(sub):
    run = _add(sub, "run", COMMANDS["run"])
    methods = run.add_subparsers(dest="method", required=True, parser_class=_Parser)
    for name, help_ in _RUN_HELP.items():
        cls = _method_class(name)
        budget_help, rounds_help = _RUN_METHODS[name]
        p = methods.add_parser(name, help=help_, formatter_class=_HelpFormatter,
                               description=f"{help_}. The paper's training recipe: "
                                           f"{cls.PAPER_RECIPE.describe()} ({cls.RECIPE_SOURCE}).")
        p.add_argument("--model", required=True,
                       help="causal LM directory or hub name; 'toy' builds a tiny local model")
        p.add_argument("--run-dir", type=Path, required=True, help="where state, reports and plot go")
        p.add_argument("--input", type=Path, help="records; default: bundled Dolly 15k")
        p.add_argument("--limit", type=int, help="use only the first N records (default: all)")
        p.add_argument("--seed", type=int, default=0, help="seed of the draws and the training")
        p.add_argument("--resume", action="store_true", help="continue a crashed run")
        p.add_argument("--output", type=Path, help="final selection, in the input's format unless "
                       "the extension names another (default: RUN_DIR/selection.jsonl)")
        p.add_argument("--force", action="store_true", help="replace an existing --output")
        p.add_argument("--no-progress", action="store_true", help="hide every progress bar")
        _add_ray_flags(p, default_actors=2)
        _add_data_flags(p)
        _add_recipe(p, name)
        if name == "diverse-evol":
            p.add_argument("--budget", type=int, default=100, help=budget_help)
            p.add_argument("--rounds", type=int, default=10, help=rounds_help)
            p.add_argument("--initial-size", type=int, help="random initial pool (default: --budget)")
            p.add_argument("--strategy", choices=("kcenter", "random", "least-confidence", "margin"),
                           default="kcenter", help="k-center (DiverseEvol) or a baseline of §4.1")
            p.add_argument("--embedding-text", choices=("alpaca", "published", "plain"),
                           default="alpaca", help="text embedded per record (paper: alpaca)")
        elif name == "kmq":
            p.add_argument("--budget", type=int, required=True, help=budget_help)
            p.add_argument("--rounds", type=int, default=3, help=rounds_help)
            p.add_argument("--clusters", default="auto",
                           help="k-means clusters, or 'auto': k of the best silhouette")
            p.add_argument("--embeddings", type=Path,
                           help="(N, d) .npy embeddings for clustering (default: MiniLM)")
            p.add_argument("--max-new-tokens", type=int, default=512,
                           help="generated answer length in tokens (512 is the published code's)")
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
                           default="exp", help="Eq. 5-6 with negative scores")
            p.add_argument("--allocation", choices=("proportional", "equal", "multinomial"),
                           default="proportional", help="how the budget is split over the clusters")
            p.add_argument("--train-from", choices=("base", "previous"), default="base",
                           help="fine-tune the base model each iteration (paper) or continue")
        else:
            p.add_argument("--budget", type=int, required=True, help=budget_help)
            p.add_argument("--rounds", type=int, help=rounds_help)
            p.add_argument("--candidate-factor", type=float, default=3.0,
                           help="a: the pool holds a x M records")
            p.add_argument("--decay", type=float, default=0.1,
                           help="b of Eq. 7: coverage decay of a picked record's n-grams")
            p.add_argument("--weighting", choices=("paper", "sklearn"), default="paper",
                           help="TF-IDF of Eq. 5, or the published code's scikit-learn weighting")
            p.add_argument("--pool", choices=("paper", "published"), default="paper",
                           help="top a x M then IFD < 1 (Alg. 1), or the published code's order")
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
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="affinity propagation's messages (float32 halves their memory)")
    p.add_argument("--output", type=Path, help="final bank, in the first input's format unless "
                   "the extension names another (default: RUN_DIR/selection.jsonl)")
    p.add_argument("--force", action="store_true", help="replace an existing --output")
    p.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    _add_data_flags(p)


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise CliError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise CliError(f"{path}: cannot be read as a .npy array ({exc})") from None


_PARAM_ERROR = re.compile(r"The '(?P<name>[^']+)' parameter of (?P<func>\S+) must be (?P<expected>.*?)\. "
                          r"Got (?P<got>.*?) instead\.(?P<rest>.*)", re.S)


def _about_file(exc: Exception, path, names=("X", "embeddings", "X_or_S")) -> str:
    """A library error about the embeddings array, said about the file they came from."""
    found = _PARAM_ERROR.match(str(exc))
    if path is None or found is None or found["name"] not in names:
        return str(exc)
    return (f"{path}: the embeddings must be {found['expected']}; got "
            f"{found['got'].strip(chr(39))}.{found['rest']}")


def _source(args, path, *, required=(), numeric=(), limit=None):
    """The records of ``path`` (None: the bundled Dolly 15k), through the field mapping."""
    from .jobs import JobError, open_input

    try:
        return open_input(path, fields=_fields(args), split=args.split, required=required,
                          numeric=numeric, limit=limit)
    except JobError as exc:
        raise CliError(str(exc)) from None


def _embeddings(args, source, plan, path, *, more_rows=False, text=None):
    from .jobs import JobError, plan_embeddings

    try:
        return plan_embeddings(source, path, bundled=args.input is None, plan=plan,
                               progress=not args.no_progress, more_rows=more_rows, text=text)
    except JobError as exc:
        raise CliError(str(exc)) from None


def _gate(plan, args) -> bool:
    """Print the plan (all of it with --dry-run, else the steps over a minute or a quarter of
    the free memory) and stop before a step that does not fit. True on a dry run."""
    for line in plan.lines(everything=args.dry_run):
        print(line, file=sys.stderr)
    problem = plan.problem()
    if problem:
        raise CliError(problem)
    if args.dry_run:
        print("dry run: nothing was computed or written", file=sys.stderr)
    return args.dry_run


def _check_outputs(inputs: dict, outputs: dict, *, force: bool, own: dict | None = None) -> None:
    """Refuse, before any work, an output that is an input (or another output), and an existing
    output without --force; ``own`` are files a run directory holds and rewrites itself."""
    from .outputs import OutputError, check_outputs

    try:
        check_outputs(inputs, outputs, force=force)
        if own:
            check_outputs(inputs, own, force=True)
    except OutputError as exc:
        raise CliError(str(exc)) from None


def _write_selection(source, indices, output) -> None:
    """The selected records, as read, to ``output`` (its format: the input's unless the
    extension names another) or as JSON Lines to standard output."""
    with _writing(output):
        if output is None:
            for line in source.take(indices).lines():
                sys.stdout.write(line + "\n")
        else:
            source.write(indices, output)


def _select_kcenter(args) -> int:
    from .estimates import Plan, kcenter_step
    from .kcenter import kcenter_greedy

    _check_outputs({"--input": args.input, "--embeddings": args.embeddings},
                   {"--output": args.output}, force=args.force)
    progress = not args.no_progress
    source = _source(args, args.input)
    n = len(source)
    _check_budget(args.budget, n)
    if not 0 <= args.seed_index < n:
        raise CliError(f"--seed-index must be between 0 and {n - 1}, got {args.seed_index}")
    plan = Plan()
    emb = _embeddings(args, source, plan, args.embeddings)
    try:
        plan.add(kcenter_step(n, emb.dim, args.budget, dtype=emb.dtype, metric=args.metric,
                              rows=None if emb.step else emb.get()))
    except (ValueError, TypeError) as exc:  # the calibration checks the first rows
        raise CliError(_about_file(exc, args.embeddings)) from None
    if _gate(plan, args):
        return 0
    select = kcenter_greedy
    if args.ray is not None:  # the same selection, the rows sharded over the cluster's nodes
        from .distributed import kcenter_greedy as sharded

        select = functools.partial(sharded, address=args.ray)
    try:
        result = select(emb.get(), args.budget, metric=args.metric, seed_index=args.seed_index,
                        progress=progress, min_distances=False)
    except (ValueError, TypeError) as exc:  # ImportError: main() names the extra
        raise CliError(_about_file(exc, args.embeddings)) from None
    _write_selection(source, result.indices, args.output)
    where = f" -> {args.output}" if args.output else ""
    print(f"selected {args.budget} of {n} records{where}; covering radius "
          f"{float(result.radii[-1]):.6f} ({args.metric})", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _writing(output=None):
    """Every command's outputs: a file that cannot be written is one error line, exit 2 (and,
    given the output's path, so is a selection its format cannot hold)."""
    try:
        yield
    except OSError as exc:
        raise CliError(f"{exc.filename or output}: cannot be written ({exc.strerror or exc})") from None
    except ValueError as exc:
        if output is None:
            raise
        raise CliError(f"{output}: {exc}") from None


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"{flag} must be a number or 'median', got {text!r}") from None


def _round_sizes(n: int, batch_size) -> list:
    """The rounds an arrival of ``n`` records makes: one, or batches of ``batch_size``."""
    if batch_size is None:
        return [n]
    return [min(batch_size, n - s) for s in range(0, n, batch_size)]


def _check_budget(budget, n):
    if not 1 <= budget <= n:
        raise CliError(f"--budget must be between 1 and the number of records ({n}), got {budget}")


def _vector(path: Path, n: int, flag: str) -> np.ndarray:
    v = _load_npy(path)
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


def _quality_checks(args) -> dict:
    """What ``_source`` must check of the records for --quality-field: present and a number."""
    field = getattr(args, "quality_field", None)
    return {"required": (field,), "numeric": (field,)} if field else {}


def _quality(args, source, n):
    """Quality scores from --quality-field (checked by ``_source``) or --scores /
    --quality-scores (None when neither)."""
    field = getattr(args, "quality_field", None)
    if field:
        return np.fromiter((float(r[field]) for r in source), dtype=np.float64, count=n)
    if getattr(args, "scores", None):
        return _vector(args.scores, n, "--scores")
    path = getattr(args, "quality_scores", None)
    return None if path is None else _vector(path, n, "--quality-scores")


def _causal_lm(name, records, *, load=True):
    """(model, tokenizer) of --model: the toy built for ``records`` (its tokenizer learns the
    data's words, so its answers are not blank), or a directory / hub name (loaded, or with
    ``load=False`` the name and None, for the methods to load)."""
    if name == "toy":
        from .scoring.toy import toy_for_records

        return toy_for_records(records)
    if not Path(name).exists() and "/" not in name:
        raise CliError(f"--model {name}: no such directory (give a model directory, a hub "
                       "name such as 'org/name', or 'toy')")
    if not load:
        return name, None
    from .scoring import load_model, load_tokenizer

    return load_model(name), load_tokenizer(name)


def _baseline_result(args, source, emb, scores, n, progress):
    from .methods import baselines, cluster_baselines, uncertainty

    k = args.budget
    if args.method == "random":
        return baselines.random_select(n, k, seed=args.seed)
    if args.method == "longest":  # only the responses are kept, not the records
        return baselines.longest_response([baselines.response_text(r) for r in source], k)
    if args.method == "knn":
        return baselines.knn_distance(emb.get(), k, metric=args.metric)
    if args.method == "deita":
        return baselines.deita_select(emb.get(), k, quality=scores, threshold=args.threshold,
                                      metric=args.distance)
    if args.method == "ifd":
        return baselines.ifd_topk(scores, k)
    if args.method == "graphfilter":
        return baselines.graphfilter_select(list(source), k, ifd=scores, weighting=args.weighting,
                                            progress=progress)
    if args.method == "kmclosest":
        return cluster_baselines.kmeans_closest_select(emb.get(), k,
                                                       n_clusters=_clusters(args.clusters),
                                                       seed=args.seed)
    if args.method == "kmrandom":
        return cluster_baselines.kmeans_random_select(emb.get(), k,
                                                      n_clusters=_clusters(args.clusters),
                                                      seed=args.seed)
    if args.method == "kmq":
        return cluster_baselines.kmq_select(emb.get(), k, quality=scores,
                                            n_clusters=_clusters(args.clusters), seed=args.seed,
                                            within=args.within, replace=args.replace)
    if args.method == "qdit":
        return cluster_baselines.qdit_select(emb.get(), k, quality=scores,
                                             quality_weight=args.quality_weight,
                                             n_neighbors=args.n_neighbors, progress=progress)
    model, tokenizer = _causal_lm(args.model, list(source))
    pick = (uncertainty.least_confidence_select if args.method == "least-confidence"
            else uncertainty.margin_select)
    return pick(list(source), k, model=model, tokenizer=tokenizer, positions=args.positions,
                max_length=args.max_length, progress=progress)


def _select_baseline(args) -> int:
    from .estimates import Plan, deita_step, knn_step

    report_path = args.report or (args.output.with_name(args.output.name + ".report.json")
                                  if args.output else None)
    model = getattr(args, "model", None)
    _check_outputs({"--input": args.input, "--embeddings": getattr(args, "embeddings", None),
                    "--scores": getattr(args, "scores", None),
                    "--model": Path(model) if model and Path(model).exists() else None},
                   {"--output": args.output, "--report": report_path}, force=args.force)
    source = _source(args, args.input, **_quality_checks(args))
    n = len(source)
    _check_budget(args.budget, n)
    progress = not args.no_progress
    plan = Plan()
    emb = _embeddings(args, source, plan, args.embeddings) if hasattr(args, "embeddings") else None
    scores = _quality(args, source, n)
    if args.method == "knn":
        plan.add(knn_step(n, emb.dim, dtype=emb.dtype, metric=args.metric))
    elif args.method == "deita":
        plan.add(deita_step(n, emb.dim, args.budget))
    if _gate(plan, args):
        return 0
    try:
        result = _baseline_result(args, source, emb, scores, n, progress)
    except (ValueError, TypeError, OSError) as exc:  # ImportError: main() names the extra
        raise CliError(_about_file(exc, getattr(args, "embeddings", None))) from None
    idx = result.indices.tolist()
    report = {"method": result.method, "budget": args.budget, "n_records": n,
              "selected": len(idx), "n_dropped": result.n_dropped, "indices": idx,
              "scores": result.scores.tolist()}
    _write_selection(source, idx, args.output)
    if report_path:
        with _writing(report_path):
            atomic_write_json(report, report_path)
    where = f" -> {args.output}" if args.output else ""
    print(f"selected {len(idx)} of {n} records ({result.method}){where}"
          + (f"; report {report_path}" if report_path else ""), file=sys.stderr)
    return 0


def _embed(args) -> int:
    from itertools import islice

    from .datasets import embedding_text
    from .estimates import Plan, calibrate_embedding, embedding_step
    from .jobs import CALIBRATION_RECORDS
    from .scoring.embed_file import embed_to_npy, resume_point
    from .scoring.embeddings import embedding_dimension, load_sentence_model

    model_dir = None if args.model == "minilm" else Path(args.model)
    # an interrupted run is continued in place: --resume lets the output be there
    _check_outputs({"--input": args.input, "--model": model_dir}, {"--output": args.output},
                   force=args.force or args.resume)
    for flag, value in (("--batch-size", args.batch_size), ("--chunk-size", args.chunk_size)):
        if value < 1:
            raise CliError(f"{flag} must be at least 1, got {value}")
    if model_dir is not None and not model_dir.is_dir():
        raise CliError(f"--model {args.model}: no such directory (give 'minilm' or a "
                       "sentence-transformers model directory)")
    model_name = "minilm" if model_dir is None else str(model_dir.resolve())
    source = _source(args, args.input)
    settings = dict(model_name=model_name, dtype=args.dtype, chunk_size=args.chunk_size,
                    batch_size=args.batch_size, resume=args.resume, overwrite=args.force)
    try:
        start = resume_point(source, args.output, **settings)  # refuses before loading the model
        model = load_sentence_model(None if model_dir is None else model_name)
    except (FileExistsError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except ImportError:
        raise
    except OSError as exc:
        raise CliError(f"--model {args.model}: cannot be loaded ({exc})") from None
    texts = [embedding_text(r) for r in islice(source, CALIBRATION_RECORDS)]
    plan = Plan()
    step = embedding_step(len(source) - start, calibrate_embedding(model, texts, batch_size=args.batch_size),
                          embedding_dimension(model), model=args.model, in_memory=False,
                          dtype=args.dtype, output=args.output, chunk_size=args.chunk_size,
                          calibrated_on=len(texts))
    plan.add(replace(step, name=f"{step.name} (from row {start:,})") if start else step)
    if _gate(plan, args):
        return 0
    try:
        result = embed_to_npy(source, args.output, model=model, progress=not args.no_progress,
                              **settings)
    except (FileExistsError, ValueError) as exc:
        raise CliError(str(exc)) from None
    resumed = f"; resumed at row {result.resumed_from:,}" if result.resumed_from else ""
    print(f"embedded {result.shape[0]:,} records -> {result.path} ({result.shape[0]} x "
          f"{result.shape[1]}, {result.dtype}){resumed}", file=sys.stderr)
    return 0


def _score(args) -> int:
    from .distributed.scoring import command_kind, score

    if args.dry_run:
        raise CliError("score has no --dry-run (its cost is the model's; see the progress bar)")
    inputs = args.input
    if inputs is None:
        from .datasets import dolly_path

        inputs = dolly_path()
    # an existing --output folder of Parquet parts is score()'s to resume (--resume) or replace
    # (--force), and it refuses otherwise; a new one must not be an input or hold one
    _check_outputs({"--input": inputs}, {"--output": None if args.output.is_dir() else args.output},
                   force=args.force or args.resume)
    for flag, value in (("--actors", args.actors), ("--block-size", args.block_size)):
        if value < 1:
            raise CliError(f"{flag} must be at least 1, got {value}")
    what, model = command_kind(args.what, args.model)
    given = {"template": args.template, "max_length": args.max_length,
             "batch_tokens": args.batch_tokens, "pooling": args.pooling}
    options = {k: v for k, v in given.items() if v is not None}
    try:
        run = score(str(inputs), what, model, tokenizer=args.tokenizer, output=args.output,
                    fields=_fields(args), id_field=args.id_field, split=args.split,
                    block_records=args.block_size, actors=args.actors,
                    gpus_per_actor=args.gpus_per_actor, address=args.ray,
                    resume=args.resume, overwrite=args.force, progress=not args.no_progress,
                    **options)
    except (FileExistsError, FileNotFoundError, ValueError, TypeError, OSError) as exc:
        raise CliError(str(exc)) from None
    resumed = (f"; {run.blocks_done_before} of {run.n_blocks} blocks were done already"
               if run.blocks_done_before else "")
    print(f"scored {run.n_records:,} records ({what}) -> {args.output} in {run.seconds:.1f} s "
          f"({run.records_per_second:.1f} records/s on {run.actors} actor(s)){resumed}",
          file=sys.stderr)
    return 0


def _ray_scorer(args):
    """The Ray scorer a method's scoring goes through with --ray, else None (this process)."""
    if args.ray is None:
        return None
    from .distributed import RayScorer

    if args.actors < 1:
        raise CliError(f"--actors must be at least 1, got {args.actors}")
    return RayScorer(args.ray, actors=args.actors, gpus_per_actor=args.gpus_per_actor)


def _bench(args) -> int:
    from .bench.command import BenchError, run

    try:
        return run(args, fields=_fields(args))
    except BenchError as exc:
        raise CliError(str(exc)) from None


def _fingerprints(args, model) -> dict:
    """What a resumed run must read again: every input (the bundled Dolly when no --input) and
    the model."""
    from ._fingerprint import model_fingerprint, path_fingerprint
    from .datasets import dolly_path

    found = {}
    for flag in ("input", "embeddings", "quality_scores"):
        value = getattr(args, flag, None)
        if flag == "input" and value is None:
            value = dolly_path()
        paths = value if isinstance(value, list) else [value]
        for k, path in enumerate(paths):
            if path is not None:
                found[f"--{flag.replace('_', '-')}" + ("" if len(paths) == 1 else f" #{k + 1}")] = path_fingerprint(path)
    if model is not None:
        found["--model"] = model_fingerprint(model)
    return found


def _claim(args, method_name: str, model=None):
    """Lock the run directory and check it before the expensive work (embedding, training); a
    dry run claims nothing."""
    from .runs import claim_run

    if args.dry_run:
        return contextlib.nullcontext()
    try:
        return claim_run(args.run_dir, method=method_name, resume=args.resume,
                         inputs=_fingerprints(args, model), how_to_resume=RESUME_HINT)
    except RunError as exc:
        raise CliError(str(exc)) from None


def _run_output(args, inputs: dict) -> Path:
    """Check a run's outputs against its inputs; returns the selection's path."""
    own = [args.run_dir / "report.json", args.run_dir / "plot.png"]
    if args.output is None:
        own.append(args.run_dir / "selection.jsonl")
    _check_outputs(inputs, {"--output": args.output}, force=args.force, own={"--run-dir": own})
    return args.output or args.run_dir / "selection.jsonl"


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
    from .estimates import (Plan, dense_ap_fits, dense_ap_memory, dense_ap_step,
                            sparse_ap_step)
    from .methods.insbank import InsBank, instruction_text
    from .methods.insbank._round import DENSE_SHARE

    if args.embeddings and len(args.embeddings) != len(args.input):
        raise CliError(f"--embeddings must be given once per --input ({len(args.input)}), got "
                       f"{len(args.embeddings)}")
    for flag, value in (("--batch-size", args.batch_size), ("--n-neighbors", args.n_neighbors)):
        if value is not None and value < 1:
            raise CliError(f"{flag} must be at least 1, got {value}")
    output = _run_output(args, {"--input": args.input, "--embeddings": args.embeddings})
    sources = [_source(args, path, required=(args.quality_field,), numeric=(args.quality_field,))
               for path in args.input]
    dtype = np.dtype(args.dtype)
    history = not args.no_history
    preference = args.preference if args.preference == "median" else _number(args.preference,
                                                                               "--preference")
    try:
        method = InsBank(args.bank_size, combine=args.combine, gamma=args.gamma,
                         use_history=history, history_weight=args.history_weight,
                         history_decay=args.history_decay,
                         history_convention=args.history_convention, preference=preference,
                         normalize=args.normalize, batch_size=args.batch_size, mode=args.mode,
                         n_neighbors=args.n_neighbors, dtype=dtype.type,
                         progress=not args.no_progress)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    n_total = sum(len(s) for s in sources)
    with _claim(args, method.name):
        plan = Plan()
        sets = [(source, _embeddings(args, source, plan,
                                     args.embeddings[k] if args.embeddings else None,
                                     text=instruction_text))  # the paper embeds the instructions
                for k, source in enumerate(sources)]
        largest, bank = 0, 0
        for source in sources:
            for size in _round_sizes(len(source), args.batch_size):
                largest, bank = max(largest, bank + size), min(args.bank_size, bank + size)
        what = "affinity propagation of the largest arrival with the bank"
        dense_fits = (dense_ap_memory(largest, dtype.itemsize, history)
                      <= DENSE_SHARE * plan.memory_available)
        if args.mode == "sparse" or (args.mode == "auto" and not dense_fits):
            plan.add(sparse_ap_step(largest, args.n_neighbors, dtype=dtype, history=history,
                                    what=what))
        else:
            step = dense_ap_step(largest, sets[0][1].dim, dtype=dtype, history=history, what=what)
            fits = dense_ap_fits(plan.memory_available, dtype.itemsize, history)
            options = ["--mode sparse (affinity propagation on a kNN graph)"]
            if dtype == np.float64:
                options.append("--dtype float32 (half the memory)")
            options.append(f"arrivals and --bank-size that add up to at most {fits:,} records")
            plan.add(replace(step, instead=", or ".join(options)))
        if _gate(plan, args):
            return 0
        try:
            data = [{"records": list(source), "embeddings": emb.get()} for source, emb in sets]
            result = method.run(data, args.run_dir, quality_field=args.quality_field,
                                resume=args.resume, on_round_end=_round_printer("arrival"))
        except (RunError, ValueError, TypeError, OSError) as exc:
            raise CliError(_about_file(exc, args.embeddings[0] if args.embeddings else None)) from None
        _write_run_outputs(args, method.name, sources, result, output,
                           {"inputs": [str(p) for p in args.input]})
    print(f"bank of {result.selected.size} of {n_total} records -> {output}; report "
          f"{args.run_dir / 'report.json'}, plot {args.run_dir / 'plot.png'}", file=sys.stderr)
    return 0


def _write_run_outputs(args, method_name: str, sources: list, result, output: Path,
                       extra: dict | None = None, title: str | None = None) -> None:
    """A finished run's selection (in the input's format unless --output's extension names
    another), report.json (configuration, versions, time per round, model) and plot.png
    (titled ``title``, default the method's name)."""
    from .io import output_format, write_rows
    from .jobs import take_across
    from .plots import plot_rounds
    from .runs import environment, round_seconds

    reports = list(result.reports)
    report = {"method": method_name, "n_records": sum(len(s) for s in sources),
              "selected": result.selected,
              "configuration": {k: str(v) if isinstance(v, Path) else
                                [str(x) for x in v] if isinstance(v, list) else v
                                for k, v in sorted(vars(args).items())},
              "environment": environment(), "seconds_per_round": round_seconds(args.run_dir),
              "model": getattr(args, "model", None),
              "model_path": getattr(result, "model_path", None),
              **(extra or {}), "rounds": reports}
    with _writing(output):
        write_rows(take_across(sources, result.selected), output,
                   output_format(output, sources[0].format))
        atomic_write_json(report, args.run_dir / "report.json")
        plot_rounds(reports, args.run_dir / "plot.png", title=title or method_name)


def _kmq_quality(args, records, n, progress):
    """kMQ's quality: a field, a .npy file, or a reward/regression model's score of each record
    in the model's own chat template (None: the run is kM-Random)."""
    if not args.quality_model:
        return _quality(args, records, n)
    from .scoring import load_model, load_tokenizer
    from .scoring.reward import quality_scores

    qm = load_model(args.quality_model, task="sequence-classification")
    return quality_scores(qm, load_tokenizer(args.quality_model), records, progress=progress)


def _run_method(args) -> int:
    from .estimates import Plan, Step

    def existing(name):
        return Path(name) if name and name != "toy" and Path(name).exists() else None

    model_dir = existing(args.model)
    output = _run_output(args, {"--input": args.input, "--embeddings": getattr(args, "embeddings", None),
                                "--quality-scores": getattr(args, "quality_scores", None),
                                "--quality-model": existing(getattr(args, "quality_model", None)),
                                "--reward-model": existing(getattr(args, "reward_model", None)),
                                "--model": model_dir})
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    source = _source(args, args.input, limit=args.limit, **_quality_checks(args))
    n = len(source)
    _check_budget(args.budget, n)
    if args.method == "kmq":
        clusters = _clusters(args.clusters)
        if clusters != "auto" and not 1 <= clusters <= n:
            raise CliError(f"--clusters must be between 1 and the number of records ({n}), got "
                           f"{clusters}")
    if args.model != "toy" and model_dir is None and "/" not in args.model:
        raise CliError(f"--model {args.model}: no such directory (give a model directory, a hub "
                       "name such as 'org/name', or 'toy')")
    progress = not args.no_progress
    cls = _method_class(args.method)
    rounds = (args.epochs or args.rounds or cls.PAPER_RECIPE.epochs if args.method == "iterit"
              else args.rounds)
    scorer = _ray_scorer(args)
    try:
        train = _recipe(args, cls)
        if args.method == "diverse-evol":
            method = cls(args.initial_size or args.budget, args.budget, rounds,
                         strategy=args.strategy, embedding_text=args.embedding_text,
                         seed=args.seed, train=train, scorer=scorer, progress=progress)
        elif args.method == "kmq":
            method = cls(args.budget, rounds, clusters,
                         max_new_tokens=args.max_new_tokens, within=args.within,
                         weight_rule=args.weight_rule, perplexity_of=args.perplexity,
                         allocation=args.allocation, train_from=args.train_from,
                         seed=args.seed, train=train, scorer=scorer, progress=progress)
        else:
            method = cls(args.budget, rounds, candidate_factor=args.candidate_factor,
                         decay=args.decay, weighting=args.weighting, pool=args.pool,
                         seed=args.seed, train=train, scorer=scorer, progress=progress)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    records = list(source)  # the methods train and score on every record
    model, tokenizer = _causal_lm(args.model, records, load=False)
    config = getattr(model, "config", None)  # a loaded model (the toy): its limit is known now
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if args.method == "kmq" and limit and args.max_new_tokens >= limit:
        raise CliError(f"--max-new-tokens must be less than the model's limit ({limit}), got "
                       f"{args.max_new_tokens}")
    title = method.name
    with _claim(args, method.name, model):
        plan = Plan()
        emb = (_embeddings(args, source, plan, args.embeddings, more_rows=args.limit is not None)
               if args.method == "kmq" else None)
        plan.add(Step(f"{args.method}: {rounds} round(s) on {n:,} records with {args.model}",
                      None, 0, basis="training, scoring and generation are not estimated"))
        if _gate(plan, args):
            return 0
        try:
            from .scoring import load_model, load_tokenizer

            if tokenizer is None:
                tokenizer = load_tokenizer(args.model)
            if args.method == "kmq":
                quality = _kmq_quality(args, records, n, progress)
                title = f"iterative {method.variant(quality)}"
                if quality is None:
                    print(f"{title}: no quality scores, so the draws inside each cluster are "
                          "uniform (the paper's kM-Random); pass --quality-field, "
                          "--quality-scores or --quality-model for kMQ", file=sys.stderr)
                reward, rtok = None, None
                if args.reward_model:
                    reward = load_model(args.reward_model, task="sequence-classification")
                    rtok = load_tokenizer(args.reward_model)
                result = method.run(model, tokenizer, records, emb.get(), args.run_dir,
                                    quality=quality, reward_model=reward, reward_tokenizer=rtok,
                                    resume=args.resume, on_round_end=_round_printer(f"{title}: round"))
            else:
                result = method.run(model, tokenizer, records, args.run_dir, resume=args.resume,
                                    on_round_end=_round_printer(f"{title}: round"))
        except (RunError, ValueError, TypeError, OSError) as exc:
            raise CliError(_about_file(exc, getattr(args, "embeddings", None))) from None
        _write_run_outputs(args, method.name, [source], result, output,
                           {"variant": result.variant, "title": title}, title=title)
    print(f"{title}: selected {result.selected.size} of {n} records -> {output}; report "
          f"{args.run_dir / 'report.json'}, plot {args.run_dir / 'plot.png'}", file=sys.stderr)
    return 0


def _usage(parser) -> str:
    width = max(len(name) for name in COMMANDS) + 3
    listed = "".join(f"  {name:<{width}}{text}\n" for name, text in COMMANDS.items())
    return (parser.format_usage() + "\nCommands:\n" + listed
            + "\nRun 'iterselect --help', or 'iterselect COMMAND --help', for the options.\n")


def main(argv=None) -> int:
    from ._extras import missing_dependency

    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
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
        if args.command == "embed":
            return _embed(args)
        if args.command == "score":
            return _score(args)
        if args.command == "bench":
            return _bench(args)
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
