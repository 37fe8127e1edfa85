"""One look for every figure of the book, and the figures chapters share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InputError

__all__ = ["set_theme", "PALETTE", "new_figure", "finish", "plot_speed_ratios"]

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
        raise InputError("xlabel, ylabel: every figure needs both axis labels")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def _number(row: Mapping[str, object], key: str, default: float | None = None) -> float:
    """``row[key]`` as a float (``default`` when absent); a clear error when it is not a number."""
    value = row.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"rows: expected a number under {key!r}, got {value!r}")
    return float(value)


def plot_speed_ratios(rows: Sequence[Mapping[str, object]]) -> Figure:
    """Benchmark figure: time relative to plain ``nn.LSTM`` per shape, method and mode.

    ``rows`` are :func:`lstm_zero_lib.book.benchmark.time_config` results. One panel per mode
    (forward, forward+backward); the black line is plain ``nn.LSTM`` (1x), the dashed line
    the 1.3x goal; whiskers span the middle half (quartiles) of the per-repeat ratios.

    Examples
    --------
    >>> rows = [
    ...     {"label": "B32 T10", "mode": m, "method": k, "ratio_median": r,
    ...      "ratio_q1": r, "ratio_q3": r}
    ...     for m in ("forward", "forward+backward")
    ...     for k, r in (("nn.LSTM", 1.0), ("MaskedLSTM", 1.2))
    ... ]
    >>> fig = plot_speed_ratios(rows)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['time / plain nn.LSTM time', 'time / plain nn.LSTM time']
    >>> plt.close(fig)
    """
    data = [r for r in rows if r["method"] != "nn.LSTM"]
    modes = list(dict.fromkeys(str(r["mode"]) for r in data))
    methods = list(dict.fromkeys(str(r["method"]) for r in data))
    labels = list(dict.fromkeys(str(r["label"]) for r in data))
    height = 0.8 / max(len(methods), 1)
    fig, axes = plt.subplots(
        1,
        len(modes),
        figsize=(5.0 * len(modes), 0.3 * len(labels) * len(methods) + 1.5),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, mode in zip(axes[0], modes, strict=True):
        for k, method in enumerate(methods):
            part = {r["label"]: r for r in data if r["mode"] == mode and r["method"] == method}
            ys = [i - 0.4 + height * (k + 0.5) for i, label in enumerate(labels) if label in part]
            picked = [part[label] for label in labels if label in part]
            med = [_number(r, "ratio_median") for r in picked]
            err = [
                [m - _number(r, "ratio_q1", m) for m, r in zip(med, picked, strict=True)],
                [_number(r, "ratio_q3", m) - m for m, r in zip(med, picked, strict=True)],
            ]
            ax.barh(
                ys,
                med,
                height=height,
                xerr=err,
                color=PALETTE[k],
                label=method,
                error_kw={"elinewidth": 1, "capsize": 2},
            )
        ax.axvline(1.0, color="black", lw=1)
        ax.axvline(1.3, color="grey", lw=1, ls="--")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlim(left=0)
        finish(
            ax,
            xlabel="time / plain nn.LSTM time",
            ylabel="shape" if ax is axes[0][0] else " ",
            title=mode,
        )
    axes[0][0].invert_yaxis()  # shared y axis: first shape and method on top
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(methods), frameon=False)
    return fig
