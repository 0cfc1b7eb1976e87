"""The benchmark's PNG plots (matplotlib, Agg): time and peak memory against N on log-log axes
for ours and each reference (hollow markers and dashed lines: extrapolated), and the quality
table as one bar chart a measure."""
from __future__ import annotations

import math
from pathlib import Path

from .._files import atomic_file
from .report import QUALITY_COLUMNS, TITLES

PLOTS = ("time_vs_n.png", "memory_vs_n.png", "quality.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    plt = _pyplot()
    try:
        fig.tight_layout()
        with atomic_file(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)


def _grid(count: int):
    plt = _pyplot()
    cols = min(4, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _series(ax, rows, who: str, key: str, scale: float, color: str, label: str) -> bool:
    pts = [(r["n"], r[who][key] / scale, bool(r[who].get("extrapolated"))) for r in rows
           if r[who].get(key) is not None and r[who][key] > 0]
    if not pts:
        return False
    xs, ys, est = zip(*pts)
    ax.plot(xs, ys, color=color, linestyle="-", alpha=0.35)
    for x, y, e in pts:
        ax.plot([x], [y], marker="o", color=color, markerfacecolor="none" if e else color, linestyle="none")
    ax.plot([], [], marker="o", color=color, label=label)
    return True


def _versus_n(rows: list[dict], key: str, scale: float, ylabel: str, path: Path) -> Path | None:
    kernels = list(dict.fromkeys(r["kernel"] for r in rows))
    if not kernels:
        return None
    fig, axes = _grid(len(kernels))
    for ax, kernel in zip(axes, kernels):
        mine = sorted((r for r in rows if r["kernel"] == kernel), key=lambda r: r["n"])
        _series(ax, mine, "ours", key, scale, "tab:blue", "iterselect")
        _series(ax, mine, "reference", key, scale, "tab:orange", mine[0]["reference"]["name"][:40])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(TITLES.get(kernel, kernel), fontsize=10)
        ax.set_xlabel("N")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("hollow markers: extrapolated", fontsize=8)
    _save(fig, path)
    return path


def quality_chart(quality: dict, path: Path) -> Path | None:
    rows = [r for r in quality.get("rows", []) if r.get("measures")]
    if not rows:
        return None
    pool = quality.get("pool") or {}
    cols = [c for c in QUALITY_COLUMNS if any(r["measures"].get(c[0]) is not None for r in rows)]
    fig, axes = _grid(len(cols))
    names = [r["selector"] for r in rows]
    for ax, (key, title, _) in zip(axes, cols):
        values = [r["measures"].get(key) or 0.0 for r in rows]
        ax.barh(range(len(rows)), values, color="tab:blue")
        whole = (pool.get("measures") or {}).get(key)
        if whole is not None:
            ax.axvline(whole, color="tab:gray", linestyle="--", linewidth=1, label="whole pool")
            ax.legend(fontsize=7)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    if pool:
        fig.suptitle(f"{pool.get('pool', '')}: k = {pool.get('k')} of N = {pool.get('n')}", fontsize=9)
    _save(fig, path)
    return path


def make_plots(results: dict, out: Path) -> list[str]:
    """Write the plots that the results have data for; returns their file names."""
    made = []
    speed = results.get("speed", [])
    for name, key, scale, ylabel in (("time_vs_n.png", "seconds", 1.0, "seconds"),
                                     ("memory_vs_n.png", "peak_bytes", 2**20, "peak memory rise (MiB)")):
        if _versus_n(speed, key, scale, ylabel, out / name):
            made.append(name)
    if quality_chart(results.get("quality", {}), out / "quality.png"):
        made.append("quality.png")
    return made
