"""results.md: the speed tables (one a kernel) and the quality table, from the results dict."""
from __future__ import annotations

TITLES = {"kcenter": "k-center greedy", "tfidf": "TF-IDF (word 1-3-grams)",
          "coverage": "weighted coverage greedy (IterIT)", "affinity": "affinity propagation",
          "facility": "facility location", "kmeans": "k-means (faiss)",
          "silhouette": "silhouette (exact, blocked)", "vendi": "Vendi score",
          "ifd": "IFD (instruction-following difficulty)"}
QUALITY_COLUMNS = (("vendi", "Vendi score (higher: more diverse)", "{:.1f}"),
                   ("covering_radius", "covering radius (lower: covers better)", "{:.4f}"),
                   ("ngram_coverage", "n-gram coverage", "{:.1%}"),
                   ("cluster_entropy", "cluster entropy", "{:.3f}"),
                   ("mean_quality", "mean quality", "{:.4g}"),
                   ("mean_length", "mean response length", "{:.0f}"))


def seconds(s: float | None) -> str:
    """Human-readable seconds.

    Examples
    --------
    >>> from iterselect.bench.report import seconds
    >>> seconds(0.0123), seconds(4.567), seconds(456.7), seconds(45_670.0)
    ('12.3 ms', '4.57 s', '457 s', '12.7 h')
    """
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 3600:
        return f"{s:.3g} s" if s < 100 else f"{s:.0f} s"
    return f"{s / 3600:.3g} h"


def size(b: int | None) -> str:
    """Human-readable bytes (powers of 1024).

    Examples
    --------
    >>> from iterselect.bench.report import size
    >>> size(0), size(5_000_000), size(500 * 2**20), size(3 * 2**30)
    ('0.0 MiB', '4.8 MiB', '500 MiB', '3.0 GiB')
    """
    if b is None:
        return "-"
    if b >= 2**30:
        return f"{b / 2**30:,.1f} GiB"
    mib = b / 2**20
    return f"{mib:.1f} MiB" if mib < 10 else f"{mib:.0f} MiB"


def _timed(m: dict) -> str:
    if m.get("seconds") is None:
        return m.get("status", "-")
    return ("~" if m.get("extrapolated") else "") + seconds(m["seconds"])


def _memory(m: dict) -> str:
    if m.get("peak_bytes") is None:
        return "-"
    return ("~" if (m.get("extra") or {}).get("memory_extrapolated") else "") + size(m["peak_bytes"])


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def _ratio(r: dict) -> str:
    if r.get("ratio") is None:
        return "-"
    v = r["ratio"]
    text = f"{v:.0f}x" if v >= 100 else f"{v:.2g}x" if v < 10 else f"{v:.1f}x"
    return ("~" if r.get("ratio_extrapolated") else "") + text


def _path(p: dict | None) -> str:
    if not p:
        return "not reported"
    if p.get("path") == "not reported":
        return f"not reported ({p.get('why', '')})"
    flags = p.get("flags")
    return f"{p['path']}" + (f" ({flags})" if flags else "")


def speed_tables(rows: list[dict]) -> list[str]:
    """One markdown table per kernel, in the order the kernels first appear."""
    lines = []
    order = list(dict.fromkeys(r["kernel"] for r in rows))
    for kernel in order:
        mine = sorted((r for r in rows if r["kernel"] == kernel), key=lambda r: r["n"])
        first = mine[0]
        path = f"; vector path: {_path(first['instruction_path'])}" if first.get("instruction_path") else ""
        lines += [f"### {TITLES.get(kernel, kernel)}", "",
                  f"ours: {first['config']}{path}. Reference: {first['reference']['name']}.", "",
                  "| N | k | ours | reference | ratio | agreement | peak memory, ours | peak memory, reference |",
                  "|---:|---:|---:|---:|---:|---|---:|---:|"]
        notes = []
        for r in mine:
            k = "-" if r.get("k") is None else f"{r['k']:,}"
            lines.append(f"| {r['n']:,} | {k} | {_timed(r['ours'])} | {_timed(r['reference'])} | {_ratio(r)} | "
                         f"{_cell(r['agreement'].get('summary', '-'))} | {_memory(r['ours'])} | "
                         f"{_memory(r['reference'])} |")
            for who in ("ours", "reference"):
                if r[who].get("extrapolated"):
                    notes.append(f"~ N = {r['n']:,}, {who}: {r[who]['how']}")
            if r.get("notes"):
                notes.append(f"N = {r['n']:,}: {r['notes']}")
            if r.get("config") != first["config"]:
                notes.append(f"N = {r['n']:,}: ours is {r['config']}")
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    return lines


def quality_table(quality: dict) -> list[str]:
    pool = quality.get("pool")
    rows = quality.get("rows", [])
    if not pool and not rows:
        return []
    lines = []
    if pool:
        lines += [f"Pool: {pool['pool']} (N = {pool['n']:,}); budget k = {pool['k']:,}; cluster entropy over "
                  f"{pool['clusters']} k-means clusters of the pool.", ""]
    cols = [c for c in QUALITY_COLUMNS if c[0] != "mean_quality" or (pool or {}).get("has_quality")]
    lines += ["| selector | time | " + " | ".join(c[1] for c in cols) + " |",
              "|---|---:|" + "---:|" * len(cols)]

    def cells(m):
        return " | ".join("-" if m.get(key) is None else fmt.format(m[key]) for key, _, fmt in cols)

    if pool:
        lines.append(f"| the whole pool ({pool['n']:,}) | - | {cells(pool['measures'])} |")
    for r in rows:
        if r.get("measures") is None:
            lines.append(f"| {r['selector']} | failed: {_cell(r.get('error'))} |" + " |" * len(cols))
            continue
        lines.append(f"| {r['selector']} | {seconds(r['seconds'])} | {cells(r['measures'])} |")
    lines += ["", "Selectors: " + "; ".join(f"**{r['selector']}**: {r['what']}" for r in rows) + "."]
    return lines


def _load(m: dict) -> str:
    start, end = m.get("load_average_at_start"), m.get("load_average_at_end")
    text = "-" if start is None else f"{start:.1f} at the start"
    return text + ("" if end is None else f", {end:.1f} at the end")


def markdown(results: dict) -> str:
    """The whole results.md."""
    m = results["machine"]
    cfg = results["config"]
    flags = ", ".join(m.get("cpu_flags") or []) or "not reported"
    lines = ["# iterselect bench", "",
             f"`{results['command']}` — {results['status']}, {results.get('started', '')}, "
             f"{seconds(results.get('wall_seconds'))} in all.", "",
             f"Machine: {m['cpu']}, {m['threads'].get('usable_cpus', m['threads']['cpu_count'])} usable CPUs, "
             f"{size(m.get('memory_bytes'))}; CPU flags: {flags}; load average {_load(m)}; "
             f"iterselect {m['versions']['iterselect']}"
             + (f" (git {m['git_revision']})" if m.get("git_revision") else "") + ".",
             "", f"Data: embeddings {cfg['data']['embeddings']}; records {cfg['data']['records']}.",
             "", f"Time box of a reference: {cfg['box']:g} s. Peak memory: {m['memory_method']}. "
             "`~` marks an extrapolated number (how is listed under its table).", ""]
    if results.get("speed"):
        lines += ["## Speed", ""] + speed_tables(results["speed"])
    q = quality_table(results.get("quality", {}))
    if q:
        lines += ["## Quality", ""] + q + [""]
    if results.get("errors"):
        lines += ["## Errors", ""]
        lines += [f"- {e['job']} N = {e.get('n', '-')}: {e['error']}" for e in results["errors"]] + [""]
    return "\n".join(lines).rstrip() + "\n"
