"""Scoring on Ray Data (``iterselect.distributed.score``) against the single-process engine.

Data: Dolly 15k (bundled, CC BY-SA 3.0; 15,015 records), cycled to ``--records`` (default
20,000: records 15,015 on repeat the first ones, each with its own id), written to a JSON Lines
file that each Ray run reads, streamed.

For each kind it measures, in one process and one run, on a local Ray cluster of this machine's
cores:

* ``embeddings``: the bundled MiniLM (sentence-transformers, batch 64) on each record's
  embedding text;
* ``ifd``: a randomly initialised Llama (``--ifd-hidden`` 64, 2 layers, a byte-level BPE of 4,096
  tokens trained on the records; the same model as ``benchmarks/scoring.py``), Alpaca template;

the single-process engine function (torch threads = 1), then ``score(..., actors=A)`` for each
``--actors`` (torch threads = 1 per actor, one CPU each), checks that the scores agree, and
reports throughput (records/s over the whole run, and after start-up), the speed-up of 2 actors
over 1, and Ray's overhead per block: ``(wall - start-up - engine seconds / actors) * actors /
blocks``, where start-up is the time to the first block less that block's engine time (the
actors start together), and engine seconds are summed over the blocks. The load average is recorded before and
after each measurement: the machine is shared, and a load above its core count slows the
runs with more actors most.

It ends with an estimate of GPU-hours for an IFD pass over 1M records with a 7B Llama: FLOPs
per record (two forward passes: prompt+response+EOS, and BOS+response+EOS; the LM head only at
response positions) from the records' token counts under the MiniLM WordPiece tokenizer (30,522
tokens, a stand-in for a Llama-2 tokenizer's 32,000, which is not on this machine), times the
padding overhead the engine's GPU batching (8,192 tokens a batch) actually plans on these
records, over a GPU's bf16 peak times an achieved fraction (MFU) range; Ray's measured overhead
per block is added per replica. No GPU is used: the GPU numbers are the stated assumptions.

Run: ``PYTHONPATH=python python benchmarks/distributed_scoring.py [--records 20000]
[--actors 1 2] [--what embeddings ifd] [--json PATH]``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import add_json_option, machine, print_table, write_json

LLAMA_7B = {"hidden": 4096, "layers": 32, "intermediate": 11008, "vocab": 32000}
GPUS = {"A100 (bf16 dense peak 312 TFLOP/s)": 312e12, "H100 SXM (bf16 dense peak 989 TFLOP/s)": 989e12}
MFU = (0.3, 0.6)


def dolly_cycled(n: int) -> list:
    from iterselect.datasets import load_dolly

    base = list(load_dolly())
    return [dict(base[i % len(base)], id=f"r{i}") for i in range(n)]


def load() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def ifd_model(records, hidden: int, folder: Path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from iterselect.scoring.toy import toy_tokenizer

    texts = [r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in records[:15015]]
    tok = toy_tokenizer(texts, vocab_size=4096)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=2, num_attention_heads=max(1, hidden // 32),
        num_key_value_heads=max(1, hidden // 64), max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id)).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


def single_process(what, records, model, tok):
    from iterselect.datasets import embedding_text
    from iterselect.scoring import embed_sentences, ifd_scores

    t0 = time.perf_counter()
    if what == "embeddings":
        out = embed_sentences(model, [embedding_text(r) for r in records], progress=False)
        values = out.embeddings
    else:
        out = ifd_scores(model, tok, records, max_length=1024, progress=False)
        values = out.ifd
    return values, time.perf_counter() - t0


def on_ray(what, path, model_dir, actors, block, out):
    from iterselect.distributed import score

    kind = "sentence-embeddings" if what == "embeddings" else "ifd"
    opts = {} if what == "embeddings" else {"max_length": 1024}
    run = score(path, kind, model_dir, output=out, actors=actors, block_records=block,
                overwrite=True, progress=False, **opts)
    result = run.result
    values = result.embeddings if what == "embeddings" else result.ifd
    return run, values


def agreement(what, got, ref) -> float:
    if what == "embeddings":  # relative to each vector's largest component
        return float((np.abs(got - ref).max(1) / np.abs(ref).max(1)).max())
    return float(np.nanmax(np.abs(got - ref) / np.abs(ref)))


def ray_row(what, actors, run, ref_values, values, n, before):
    blocks = run.n_blocks
    engine = run.block_seconds
    startup = run.first_result_seconds - engine[0]
    # What the actors spent beyond the engine, once started: reading, handing out blocks,
    # pickling, writing the Parquet part, and waiting for work.
    overhead = (run.seconds - startup - engine.sum() / actors) * actors / blocks
    return {"what": what, "how": f"Ray, {actors} actor(s)", "actors": actors,
            "seconds": round(run.seconds, 2), "records_per_s": round(n / run.seconds, 1),
            "records_per_s_after_startup": round(n / (run.seconds - startup), 1),
            "startup_s": round(startup, 2), "blocks": blocks,
            "engine_s_per_block": round(float(engine.mean()), 3),
            "ray_overhead_s_per_block": round(overhead, 3),
            "max_rel_diff": agreement(what, values, ref_values),
            "load_before": before, "load_after": load()}


def gpu_hours_estimate(records, ray_overhead_per_block: float, block: int) -> dict:
    """GPU-hours for IFD over 1M records with a 7B Llama (see the module docstring)."""
    from iterselect.scoring import format_examples, load_tokenizer
    from iterselect.scoring.batching import GPU_BATCH_TOKENS, plan_batches
    from iterselect.scoring.embeddings import default_sentence_model_path
    from iterselect.scoring.tokenization import encode_examples

    tok = load_tokenizer(default_sentence_model_path())
    tok.bos_token, tok.eos_token = tok.cls_token, tok.sep_token
    sample = records[:15015]
    examples = format_examples(sample)
    cond, prior = [], []
    for enc in encode_examples(tok, examples):
        cond.append(min(len(enc.ids), 4096))
        prior.append(int(enc.response.sum()) + 1)
    cond, prior = np.array(cond), np.array(prior)
    scored = prior - 1
    lengths = np.concatenate([cond, prior])
    batches = plan_batches(lengths, GPU_BATCH_TOKENS)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    pad_factor = padded / lengths.sum()

    d, L, inter, V = (LLAMA_7B[k] for k in ("hidden", "layers", "intermediate", "vocab"))
    per_token_layers = 2 * L * (4 * d * d + 3 * d * inter)  # attention projections + SwiGLU MLP
    def attention(t):  # QK^T and AV over a causal sequence of t tokens
        return 2 * L * d * t * t  # 2 matmuls x (t^2/2 pairs) x 2 FLOPs x d
    flops = (per_token_layers * lengths.sum() * pad_factor
             + sum(attention(t) for t in lengths)
             + 2 * d * V * 2 * scored.sum()) / len(sample)  # LM head at scored tokens, both passes
    total = flops * 1e6
    est = {"tokens_per_record": {"conditioned": float(cond.mean()), "prior": float(prior.mean()),
                                 "scored": float(scored.mean())},
           "padding_factor_at_8192_tokens": round(float(pad_factor), 4),
           "tflops_per_record": flops / 1e12, "pflops_for_1M": total / 1e15, "gpu_hours": {}}
    blocks = 1e6 / block
    for gpu, peak in GPUS.items():
        hours = [total / (peak * m) / 3600 + blocks * ray_overhead_per_block / 3600
                 for m in MFU[::-1]]
        est["gpu_hours"][gpu] = {f"MFU {MFU[1]:.0%}": round(hours[0], 2),
                                 f"MFU {MFU[0]:.0%}": round(hours[1], 2)}
    return est


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--ifd-records", type=int, help="records for IFD (default: --records)")
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--what", nargs="+", default=["embeddings", "ifd"],
                    choices=["embeddings", "ifd"])
    ap.add_argument("--block-records", type=int, default=500)
    ap.add_argument("--ifd-hidden", type=int, default=64)
    add_json_option(ap)
    args = ap.parse_args()

    import ray
    import torch

    from iterselect.scoring.embeddings import default_sentence_model_path, load_sentence_model

    torch.set_num_threads(1)
    records = dolly_cycled(max(args.records, args.ifd_records or 0))
    cores = os.cpu_count()
    ray.init(num_cpus=max(cores, max(args.actors)), include_dashboard=False, log_to_driver=False)
    rows, results = [], {"machine": machine(), "cores": cores, "records": args.records,
                         "data": "Dolly 15k bundled, cycled (record i is Dolly record i mod 15015)",
                         "block_records": args.block_records}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for what in args.what:
            n = args.records if what == "embeddings" else (args.ifd_records or args.records)
            path = tmp / f"{what}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records[:n]))
            if what == "embeddings":
                model_dir, tok = default_sentence_model_path(), None
                model = load_sentence_model(model_dir, device="cpu")
            else:
                model_dir = tmp / "llama"
                model, tok = ifd_model(records, args.ifd_hidden, model_dir)
            before = load()
            ref, secs = single_process(what, records[:n], model, tok)
            rows.append({"what": what, "how": "single process", "actors": 0,
                         "seconds": round(secs, 2), "records_per_s": round(n / secs, 1),
                         "load_before": before, "load_after": load()})
            for actors in args.actors:
                before = load()
                run, values = on_ray(what, str(path), str(model_dir), actors, args.block_records,
                                     tmp / f"out-{what}-{actors}")
                rows.append(ray_row(what, actors, run, ref, values, n, before))
                print(json.dumps(rows[-1]), flush=True)
    ray.shutdown()
    for what in args.what:
        by = {r["actors"]: r for r in rows if r["what"] == what}
        if 1 in by and 2 in by:
            results[f"{what}_speedup_2_vs_1"] = round(by[2]["records_per_s"] / by[1]["records_per_s"], 3)
            results[f"{what}_speedup_2_vs_1_after_startup"] = round(
                by[2]["records_per_s_after_startup"] / by[1]["records_per_s_after_startup"], 3)
    ifd_rows = [r for r in rows if r["what"] == "ifd" and r["actors"]]
    overhead = max([r["ray_overhead_s_per_block"] for r in ifd_rows] or [0.0])
    results["gpu_estimate_7b_ifd_1M"] = gpu_hours_estimate(records, max(overhead, 0.0),
                                                           args.block_records)
    results["rows"] = rows
    print_table(rows, ["what", "how", "seconds", "records_per_s", "records_per_s_after_startup",
                       "startup_s", "engine_s_per_block", "ray_overhead_s_per_block",
                       "max_rel_diff", "load_before", "load_after"])
    for key in [k for k in results if "_vs_1" in k]:
        print(f"{key}: {results[key]}")
    print(json.dumps(results["gpu_estimate_7b_ifd_1M"], indent=1))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
