"""One look for every figure of the book, and the figures chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["set_theme", "PALETTE", "new_figure", "finish"]

#: Colour-blind-safe palette used across chapters, in a fixed order.
PALETTE = sns.color_palette("colorblind")


def set_theme() -> None:
    """Apply the book's seaborn theme (call once at the top of a chapter).

    Examples
    --------
    >>> set_theme()
    >>> plt.rcParams["figure.dpi"]
    100.0
    """
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (7.0, 3.6),
            "axes.titleweight": "bold",
            "svg.hashsalt": "lstm-zero",  # stable SVG ids across runs
        }
    )


def new_figure(
    ncols: int = 1, *, width: float = 7.0, height: float = 3.6
) -> tuple[Figure, list[Axes]]:
    """A figure with ``ncols`` side-by-side axes, always returned as a list.

    Examples
    --------
    >>> fig, axes = new_figure(2)
    >>> len(axes)
    2
    >>> plt.close(fig)
    """
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False, layout="constrained")
    return fig, list(axes[0])


def finish(ax: Axes, *, xlabel: str, ylabel: str, title: str | None = None) -> Axes:
    """Label an axes; every figure in the book goes through this so none lacks labels.

    Examples
    --------
    >>> fig, (ax,) = new_figure()
    >>> finish(ax, xlabel="pad steps", ylabel="max abs error").get_xlabel()
    'pad steps'
    >>> plt.close(fig)
    """
    if not xlabel or not ylabel:
        raise ValueError("xlabel, ylabel: every figure needs both axis labels")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax
