"""A run's objective and diversity by round, as a PNG (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

from ._files import atomic_file


def plot_rounds(reports, path, *, title=None) -> Path:
    """Plot ``objective`` and ``diversity`` of each round report (rounds where a value is None
    are left out) on two stacked axes and save a PNG atomically.

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

    path = Path(path)
    fig, axes = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    for ax, key in zip(axes, ("objective", "diversity")):
        pts = [(r["round"], r[key]) for r in reports if r.get(key) is not None]
        label = next((r.get(f"{key}_name") for r in reports if r.get(f"{key}_name")), key)
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o")
        ax.set_ylabel(label)
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
