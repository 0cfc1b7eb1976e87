"""A run's objective and diversity by round, as a PNG (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

from ._files import atomic_file

# What each measure the methods report is counted in, and which way is better (None: neither,
# the measure is a signal the method acts on). Matched by the start of the report's name.
MEASURES = (
    ("covering radius", "distance in embedding space", "lower is better"),
    ("Vendi score", "effective number of records", "higher is better"),
    ("cluster entropy", "nats", "higher is more even over clusters"),
    ("mean score (gold vs generated)", "nats", None),
    ("mean IFD", "ratio", "higher is harder"),
    ("coverage gain", "IFD x TF-IDF", "higher is better"),
    ("mean score of the bank", "score", "higher is better"),
)
MIN_SPAN = 0.1  # the y-axis spans at least this fraction of the values' magnitude


def axis_label(name: str) -> str:
    """A measure's name with its unit and which way is better, for an axis.

    Examples
    --------
    >>> print(axis_label("covering radius"))
    covering radius
    (distance in embedding space; lower is better)
    """
    for start, unit, better in MEASURES:
        if name.startswith(start):
            return f"{name}\n({unit}{'; ' + better if better else ''})"
    return name


def y_limits(values) -> tuple[float, float]:
    """Limits that show every value, spanning at least a tenth of their magnitude, so that a
    change in the fourth digit does not look like a cliff.

    Examples
    --------
    >>> lo, hi = y_limits([1.357, 1.354])
    >>> round(hi - lo, 3) >= 0.135
    True
    """
    lo, hi = min(values), max(values)
    span = max(hi - lo, MIN_SPAN * max(abs(lo), abs(hi)), 1e-12)
    mid = (hi + lo) / 2
    return mid - 0.6 * span, mid + 0.6 * span


def plot_rounds(reports, path, *, title=None) -> Path:
    """Plot ``objective`` and ``diversity`` of each round report (rounds where a value is None
    are left out) on two stacked axes with integer round ticks, and save a PNG atomically.

    Examples
    --------
    >>> import os, tempfile
    >>> p = plot_rounds([{"round": 0, "objective": None, "diversity": None},
    ...                  {"round": 1, "objective": 2.0, "diversity": 1.5},
    ...                  {"round": 2, "objective": 1.0, "diversity": 1.7}],
    ...                 os.path.join(tempfile.mkdtemp(), "p.png"))
    >>> open(p, "rb").read(4)
    b'\\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fig, axes = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True)
    for ax, key in zip(axes, ("objective", "diversity")):
        pts = [(r["round"], r[key]) for r in reports if r.get(key) is not None]
        name = next((r.get(f"{key}_name") for r in reports if r.get(f"{key}_name")), key)
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o")
            ax.set_ylim(*y_limits(ys))
        ax.set_ylabel(axis_label(name), fontsize=8)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("round")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    try:
        with atomic_file(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
