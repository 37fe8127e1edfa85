"""One look for every figure of the book, and the figures chapters share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

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


def plot_speed_ratios(
    rows: Sequence[Mapping[str, object]],
    methods: Sequence[str] = ("MaskedLSTM", "pack_padded_sequence", "step loop"),
    *,
    goals: bool = False,
    title: str | None = None,
    baseline: str = "nn.LSTM",
) -> Figure:
    """Benchmark figure: time relative to plain ``nn.LSTM`` per mask, shape, method and mode.

    ``rows`` are :func:`lstm_zero_lib.book.benchmark.time_config` results (keys ``mask``,
    ``label``, ``mode``, ``method``, ``ratio_median``, ``ratio_min``, ``ratio_max`` and,
    with ``goals=True``, ``goal``). One panel per mode (forward, forward+backward) on a log
    scale: a point per measured (method, mask, shape) at its median ratio, with a bar over
    its min-max range; the line at 1 is plain ``nn.LSTM``. A method has no point where it
    was not measured (``pack_padded_sequence`` cannot express gaps). ``goals=True`` marks
    MaskedLSTM's target with a black tick. ``baseline`` names the plain module in the axis
    label (``"nn.GRU / nn.RNN"`` for those rows).

    Examples
    --------
    >>> rows = [
    ...     {"mask": "right", "label": "B32 T10", "mode": m, "method": k,
    ...      "ratio_median": r, "ratio_min": r * 0.9, "ratio_max": r * 1.1}
    ...     for m in ("forward", "forward+backward")
    ...     for k, r in (("nn.LSTM", 1.0), ("MaskedLSTM", 1.2))
    ... ]
    >>> fig = plot_speed_ratios(rows, ["MaskedLSTM"])
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['time / plain nn.LSTM time (log scale)', 'time / plain nn.LSTM time (log scale)']
    >>> plt.close(fig)
    """
    labels = list(dict.fromkeys(f"{r['mask']}: {r['label']}" for r in rows))
    fig, axes = new_figure(2, width=11.0, height=0.32 * len(labels) + 1.5)
    for ax, mode in zip(axes, ("forward", "forward+backward"), strict=True):
        for k, method in enumerate(methods):
            picked = [r for r in rows if r["mode"] == mode and r["method"] == method]
            ys = [labels.index(f"{r['mask']}: {r['label']}") + 0.2 * (k - 1) for r in picked]
            med = [_number(r, "ratio_median") for r in picked]
            low = [m - _number(r, "ratio_min") for m, r in zip(med, picked, strict=True)]
            high = [_number(r, "ratio_max") - m for m, r in zip(med, picked, strict=True)]
            ax.errorbar(
                med, ys, xerr=[low, high], fmt="o", color=PALETTE[k], label=method, capsize=2
            )
        if goals:
            targets = [r for r in rows if r["mode"] == mode and r["method"] == "MaskedLSTM"]
            ax.scatter(
                [_number(r, "goal") for r in targets],
                [labels.index(f"{r['mask']}: {r['label']}") for r in targets],
                marker="|",
                s=150,
                color="black",
                label="goal",
            )
        ax.axvline(1.0, color="black", lw=1)
        ax.set_xscale("log")
        # Plain numbers on the log axis (1, 2, 5, ...), no overlapping minor labels.
        low_x, high_x = ax.get_xlim()
        ax.set_xticks([t for t in (1, 1.5, 2, 3, 5, 10, 20, 50, 100) if low_x <= t <= high_x])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()  # first shape on top
        xlabel = f"time / plain {baseline} time (log scale)"
        finish(ax, xlabel=xlabel, ylabel="mask: shape", title=mode)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(handles), frameon=False)
    if title:
        fig.suptitle(title)
    return fig
