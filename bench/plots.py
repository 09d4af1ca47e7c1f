"""PNG plots of the detection benchmark (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["ArlPoint", "DelayCurve", "plot_arl", "plot_delays"]


@dataclass(frozen=True)
class DelayCurve:
    """Mean delay of one detector per shift size (NaN: nothing detected)."""

    label: str
    shifts: Sequence[float]
    mean_delay: Sequence[float]
    missed: Sequence[float]


@dataclass(frozen=True)
class ArlPoint:
    label: str
    target: float
    measured: float
    lo: float
    hi: float


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def plot_delays(curves: Sequence[DelayCurve], title: str, path: Path) -> None:
    """Mean detection delay vs shift size, log y; open markers where >= 50 % were missed."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    markers = "os^vD<>ph*X"
    for i, c in enumerate(curves):
        xs = [s for s, d in zip(c.shifts, c.mean_delay, strict=True) if math.isfinite(d)]
        ys = [d for d in c.mean_delay if math.isfinite(d)]
        if not ys:
            continue
        (line,) = ax.plot(xs, ys, marker=markers[i % len(markers)], label=c.label)
        for s, d, m in zip(c.shifts, c.mean_delay, c.missed, strict=True):
            if math.isfinite(d) and m >= 0.5:
                ax.plot([s], [d], marker="o", ms=12, mfc="none", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("mean shift (σ of the pre-change stream)")
    ax.set_ylabel("mean detection delay (observations)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)


def plot_arl(points: Sequence[ArlPoint], title: str, path: Path) -> None:
    """Measured / target ARL0 with 95 % intervals; the ±20 % band shaded."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    labels = sorted({p.label for p in points})
    targets = sorted({p.target for p in points})
    width = 0.8 / max(1, len(labels))
    for i, lab in enumerate(labels):
        first = True
        for p in (q for q in points if q.label == lab):
            x = targets.index(p.target) + (i - (len(labels) - 1) / 2) * width
            r, lo, hi = p.measured / p.target, p.lo / p.target, p.hi / p.target
            ax.errorbar(
                [x],
                [r],
                yerr=[[r - lo], [max(0.0, hi - r)]],
                fmt="os"[i % 2],
                capsize=3,
                color=f"C{i}",
                label=lab if first else None,
            )
            first = False
    ax.axhspan(0.8, 1.2, color="green", alpha=0.1, label="target ±20 %")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(targets)), [f"{t:.0e}" for t in targets])
    ax.set_xlabel("target ARL0")
    ax.set_ylabel("measured / target")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    _save(fig, path)
