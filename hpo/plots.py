"""Matplotlib pictures of one trial: its confusion matrix and its learning curves.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so
drawing leaves no global state behind and works in worker processes without a display.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["confusion_figure", "learning_curves_figure", "png_bytes", "save_png"]


def confusion_figure(
    matrix: Sequence[Sequence[float]], class_names: Sequence[str], *, title: str = ""
) -> Figure:
    """Row-normalised confusion matrix: colour is the share of each true class, text the count.

    Args:
        matrix: ``(C, C)`` counts, rows = true class, columns = predicted class.
        class_names: ``C`` names, index = class id.
        title: Figure title.
    """
    counts = np.asarray(matrix, dtype=float)
    n = counts.shape[0]
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = max(4.0, 0.42 * n + 2.5)
    fig = Figure(figsize=(size + 1.0, size), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of the true class")
    fontsize = 7 if n > 10 else 9
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if shares[i, j] > 0.5 else "black",
                )
    labels = [f"{k} {name}" for k, name in enumerate(class_names)]
    ax.set_xticks(range(n), [str(k) for k in range(n)], fontsize=fontsize)
    ax.set_yticks(range(n), labels, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    return fig


def learning_curves_figure(
    history: Sequence[Sequence[Mapping[str, Any]]],
    *,
    pruned: bool = False,
    title: str = "",
) -> Figure:
    """Training loss and validation macro-F1 per epoch, one line per fold.

    Args:
        history: Per fold, each epoch's ``EpochResult.to_dict()``.
        pruned: The trial was pruned: its last epoch is marked with a red cross.
        title: Figure title.
    """
    fig = Figure(figsize=(9.0, 3.6), dpi=100, layout="constrained")
    loss_ax, f1_ax = fig.subplots(1, 2)
    last: tuple[int, float] | None = None
    for fold, epochs in enumerate(history):
        if not epochs:
            continue
        x = [int(e["epoch"]) for e in epochs]
        loss = [_num(e.get("train_loss")) for e in epochs]
        f1 = [_num(e.get("macro_f1")) for e in epochs]
        (line,) = loss_ax.plot(x, loss, marker="o", markersize=3, label=f"fold {fold}")
        f1_ax.plot(x, f1, marker="o", markersize=3, color=line.get_color(), label=f"fold {fold}")
        last = (x[-1], f1[-1])
    if pruned and last is not None:
        f1_ax.plot(*last, marker="X", markersize=12, color="red", linestyle="none", label="pruned")
        f1_ax.annotate("pruned", last, textcoords="offset points", xytext=(6, 6), color="red")
    loss_ax.set_title("training loss")
    f1_ax.set_title("validation macro-F1")
    for ax in (loss_ax, f1_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if history and any(history):
            ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG file."""
    FigureCanvasAgg(fig).print_png(str(path))
    return path


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (for embedding in a report)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()
