"""The plots of a classification run: loss and accuracy against epochs (bottom axis) and examples seen (top axis),
and the confusion matrix. Drawn on matplotlib Figures without pyplot: no display needed, no backend switched."""

from __future__ import annotations

import os

from matplotlib.figure import Figure  # no pyplot: drawing here leaves the caller's backend alone
import numpy as np  # noqa: E402


def plot_curves(curves: dict[str, tuple[list[float], list[float]]], ylabel: str, train_size: int, path) -> None:
    """One line per name in `curves` ({name: (epochs, values)}), with examples seen = epochs * train_size on top."""
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    for name, (epochs, values) in curves.items():
        axis.plot(epochs, values, marker="o" if len(epochs) < 30 else None, markersize=3, label=name)
    axis.set_xlabel("epochs")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
    top = axis.secondary_xaxis("top", functions=(lambda e: e * train_size, lambda n: n / train_size))
    top.set_xlabel("examples seen")
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=120)


def plot_confusion_matrix(matrix, label_names: list[str], path, title: str = "confusion matrix") -> None:
    """Counts of true (rows) against predicted (columns) labels, each cell annotated with its count."""
    matrix = np.asarray(matrix)
    size = max(3.5, 0.8 * len(label_names) + 2)
    figure = Figure(figsize=(size, size))
    axis = figure.subplots()
    axis.imshow(matrix, cmap="Blues")
    ticks = range(len(label_names))
    axis.set_xticks(ticks, label_names, rotation=45 if len(label_names) > 3 else 0)
    axis.set_yticks(ticks, label_names)
    axis.set_xlabel("predicted label")
    axis.set_ylabel("true label")
    axis.set_title(title)
    dark = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center", color="white" if count > dark else "black")
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=120)
