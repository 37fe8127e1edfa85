"""The figures a ``make bench`` result is read by, and the README's sentences stating them.

:func:`summarize` computes them from the result rows (those of
:func:`~lstm_zero_lib.book.benchmark.run_suite`); the speed appendix glues them and
:func:`summary_text` writes them into sentences that ``bench_masked_lstm.py --markdown``
prints, so the README's prose is printed from the committed result like its tables (a test
checks that the README holds the printed output).

Every median comes with the distribution-free interval of
:func:`~lstm_zero_lib.book.stats.median_interval` over its repeats: a goal counts as
clearly met or missed only where that interval lies on one side of it, and one method is
called faster than another only where the interval of the median of their paired
per-repeat differences excludes zero (the two ratios of one repeat share its baseline
timing).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from .stats import median_interval

__all__ = ["LEVEL", "MIN_REPEATS", "summarize", "summary_text"]

Row = Mapping[str, Any]
MODES = ("forward", "forward+backward")
#: The least confidence level of the intervals (their exact level depends on the repeats).
LEVEL = 0.95
#: The fewest repeats that give an interval of the median at :data:`LEVEL`.
MIN_REPEATS = 6


def _ours(rows: Iterable[Row], cell: str) -> list[Row]:
    name = "Masked" + cell.upper()
    return [r for r in rows if r.get("cell", "lstm") == cell and r["method"] == name]


def _ratios(row: Row) -> list[float]:
    if "ratios" not in row:
        raise ValueError(
            f"{row['method']} {row['label']} {row['mode']}: the result has no per-repeat "
            "ratios (saved before they were recorded): run make bench again"
        )
    return [float(r) for r in row["ratios"]]


def _against_packing(ours: list[Row], rows: list[Row], cell: str) -> dict[str, Any]:
    """Per mode, over the right-padded shapes: where ours is clearly faster or slower than
    packing (paired interval of the median difference), and packing's own range."""
    pack = {
        (r["label"], r["mode"]): r
        for r in rows
        if r.get("cell", "lstm") == cell and r["method"] == "pack_padded_sequence"
    }
    out: dict[str, Any] = {"pack_shapes": len({label for label, _ in pack})}
    for mode in MODES:
        faster, slower, tied = 0, [], 0
        for row in ours:
            other = pack.get((row["label"], row["mode"]))
            if row["mode"] != mode or other is None:
                continue
            diffs = [a - b for a, b in zip(_ratios(row), _ratios(other), strict=True)]
            interval = median_interval(diffs, LEVEL)
            if interval.high < 0:
                faster += 1
            elif interval.low > 0:
                slower.append(interval.median)
            else:
                tied += 1
        out[f"{mode}_faster_than_pack"] = faster
        out[f"{mode}_slower_than_pack"] = len(slower)
        out[f"{mode}_slower_by"] = (min(slower), max(slower)) if slower else None
        out[f"{mode}_tied_with_pack"] = tied
        values = [float(r["ratio_median"]) for (_, m), r in pack.items() if m == mode]
        out[f"{mode}_pack_range"] = (min(values), max(values)) if values else None
    return out


def summarize(rows: Iterable[Row], cell: str = "lstm") -> dict[str, Any]:
    """The figures of one cell's rows (``"lstm"``, ``"gru"`` or ``"rnn"``) of a bench result.

    Keys: ``shapes``, ``medians``, ``repeats`` and ``level`` (the exact level of the
    intervals); ``met_both`` (shapes whose medians meet the goal in both modes) with their
    ``met_labels`` and ``met_margin`` (lowest and highest of each met shape's smaller
    distance inside its goal; None if none is met); ``met_by_mode`` (medians at or below
    their goal, per mode); ``met_both_by_mask`` (mask -> (met, shapes)); ``unclear``
    (medians whose interval contains their goal), ``clearly_met`` (shapes with both
    intervals below the goal) and ``clearly_missed`` (shapes with an interval above it);
    ``range`` ((mask, mode) -> lowest and highest median) and ``highest_at`` ((mask, mode)
    -> T of the highest median); and per mode, over the right-padded shapes, how many are
    clearly faster / slower than ``pack_padded_sequence`` or not clearly different, the
    medians of the paired differences where slower, and packing's own range.

    Examples
    --------
    >>> def row(method, steps, mode, ratios):
    ...     return {"method": method, "mask": "right", "label": f"T{steps}", "steps": steps,
    ...             "mode": mode, "goal": 1.25, "ratios": ratios,
    ...             "ratio_median": sorted(ratios)[len(ratios) // 2]}
    >>> rows = [
    ...     row(method, steps, mode, [base + 0.01 * i for i in range(15)])
    ...     for steps, ours in ((10, 1.5), (30, 1.1))
    ...     for mode in ("forward", "forward+backward")
    ...     for method, base in (("MaskedLSTM", ours), ("pack_padded_sequence", 1.3))
    ... ]
    >>> s = summarize(rows)
    >>> s["met_both"], s["met_labels"], s["clearly_met"], s["unclear"]
    (1, ['T30'], 1, 0)
    >>> s["range"]["right", "forward"], s["highest_at"]["right", "forward"]
    ((1.17, 1.57), 10)
    >>> s["forward_faster_than_pack"], s["forward_slower_than_pack"], s["pack_shapes"]
    (1, 1, 2)
    """
    rows = list(rows)
    ours = _ours(rows, cell)
    shapes: dict[tuple[str, str], dict[str, Row]] = {}
    for row in ours:
        shapes.setdefault((row["mask"], row["label"]), {})[row["mode"]] = row
    intervals = {id(r): median_interval(_ratios(r), LEVEL) for r in ours}
    inside = {
        key: min(float(r["goal"]) - float(r["ratio_median"]) for r in by.values())
        for key, by in shapes.items()
    }
    met = [key for key, margin in inside.items() if margin >= 0]
    masks = list(dict.fromkeys(key[0] for key in shapes))
    figures: dict[str, Any] = {
        "shapes": len(shapes),
        "medians": len(ours),
        "repeats": len(_ratios(ours[0])) if ours else 0,
        "level": intervals[id(ours[0])].level if ours else LEVEL,
        "met_both": len(met),
        "met_labels": [label for _, label in met],
        "met_margin": (min(inside[k] for k in met), max(inside[k] for k in met)) if met else None,
        "met_by_mode": {
            mode: sum(
                float(r["ratio_median"]) <= float(r["goal"]) for r in ours if r["mode"] == mode
            )
            for mode in MODES
        },
        "met_both_by_mask": {
            mask: (sum(k[0] == mask for k in met), sum(k[0] == mask for k in shapes))
            for mask in masks
        },
        "unclear": sum(
            intervals[id(r)].low <= float(r["goal"]) <= intervals[id(r)].high for r in ours
        ),
        "clearly_met": sum(
            all(intervals[id(r)].high < float(r["goal"]) for r in by.values())
            for by in shapes.values()
        ),
        "clearly_missed": sum(
            any(intervals[id(r)].low > float(r["goal"]) for r in by.values())
            for by in shapes.values()
        ),
        "range": {},
        "highest_at": {},
    }
    for mask in masks:
        for mode in MODES:
            part = [r for r in ours if r["mask"] == mask and r["mode"] == mode]
            if part:
                medians = [float(r["ratio_median"]) for r in part]
                figures["range"][mask, mode] = (min(medians), max(medians))
                top = max(part, key=lambda r: float(r["ratio_median"]))
                figures["highest_at"][mask, mode] = int(top["steps"])
    figures.update(_against_packing(ours, rows, cell))
    return figures


def _span(pair: tuple[float, float], digits: int = 2) -> str:
    return f"{pair[0]:.{digits}f}-{pair[1]:.{digits}f}"


_MASK_WORDS = {"right": "right padding", "gaps": "gaps", "left": "left padding"}
_SHAPE_WORDS = {"right": "right-padded", "gaps": "gap", "left": "left-padded"}


def _ranges(s: dict[str, Any]) -> str:
    """'A forward and B forward+backward for right padding, and ... for gaps'."""
    parts = [
        f"{_span(s['range'][mask, 'forward'])} forward and "
        f"{_span(s['range'][mask, 'forward+backward'])} forward+backward for "
        f"{_MASK_WORDS.get(mask, mask)}"
        for mask in s["met_both_by_mask"]
    ]
    return ", and ".join(parts)


def _noise(s: dict[str, Any]) -> str:
    """The sentences on which goal verdicts the intervals support, in this run."""
    interval = (
        f"the {s['level']:.1%} interval of the median (order statistics of the "
        f"{s['repeats']} repeats, assuming only that they are independent and alike)"
    )
    if s["unclear"]:
        text = (
            f"Those counts are partly inside the noise: for {s['unclear']} of the "
            f"{s['medians']} medians {interval} contains the goal. "
        )
    else:
        text = f"For none of the {s['medians']} medians does {interval} contain the goal. "
    open_shapes = s["shapes"] - s["clearly_met"] - s["clearly_missed"]
    return text + (
        f"In this run {s['clearly_met']} of the {s['shapes']} shapes meet the goal in both "
        f"modes with both intervals below it, {s['clearly_missed']} miss it with an interval "
        f"above it in at least one mode, and for {open_shapes} the run cannot tell. The "
        "intervals cover the spread between the repeats of one run; they do not bound the "
        "variation between runs (another load, another warm-up)."
    )


def _packing(s: dict[str, Any], ours: str) -> str:
    """The comparison with pack_padded_sequence, per mode; empty without packing rows."""
    if not s["pack_shapes"]:
        return ""
    parts = []
    for mode in MODES:
        text = (
            f"{mode} {ours} is faster at {s[f'{mode}_faster_than_pack']}, slower at "
            f"{s[f'{mode}_slower_than_pack']}"
        )
        if s[f"{mode}_slower_by"]:
            text += f" (median per-repeat difference {_span(s[f'{mode}_slower_by'], 3)})"
        parts.append(text + f" and not clearly different at {s[f'{mode}_tied_with_pack']}")
    ranges = ", ".join(
        f"{_span(s[f'{mode}_pack_range'])} {mode}" for mode in MODES if s[f"{mode}_pack_range"]
    )
    return (
        f" Against `pack_padded_sequence` ({s['pack_shapes']} right-padded shapes; faster or "
        f"slower where the {s['level']:.1%} interval of the median of the paired per-repeat "
        f"differences excludes zero, in this run): {'; '.join(parts)} (packing: {ranges})."
    )


def _lstm_text(s: dict[str, Any], commit: str) -> str:
    highest = set(s["highest_at"].values())
    where = (
        f"; each range has its highest median at T = {highest.pop()}"
        if len(highest) == 1 and len(s["highest_at"]) > 1
        else ""
    )
    label = commit[:7] + ("+dirty" if commit.endswith("+dirty") else "")
    text = (
        f"In the committed run (code at {label}), "
        f"MaskedLSTM's median ratio to plain `nn.LSTM` is {_ranges(s)}{where}. "
        f"Issue 13's goals are met in both modes at {s['met_both']} of {s['shapes']} shapes"
    )
    if s["met_both"]:
        low, high = s["met_margin"]
        text += f" ({', '.join(s['met_labels'])}), by {low:.3f} to {high:.3f},"
    text += (
        f" and in forward+backward (whatever forward does) at "
        f"{s['met_by_mode']['forward+backward']}. " + _noise(s)
    )
    return text + _packing(s, "MaskedLSTM")


def _cell_text(s: dict[str, Any], cell: str) -> str:
    ours, plain = f"Masked{cell.upper()}", f"`nn.{cell.upper()}`"
    by_mask = s["met_both_by_mask"]
    met = " and ".join(
        f"{n} of {total} {_SHAPE_WORDS.get(mask, mask)} shapes"
        for mask, (n, total) in by_mask.items()
    )
    text = (
        f"{ours}'s median ratio to plain {plain} is {_ranges(s)}. Goals met in both modes at "
        f"{met}, forward at {s['met_by_mode']['forward']} of {s['shapes']} shapes and "
        f"forward+backward at {s['met_by_mode']['forward+backward']}; for {s['unclear']} of "
        f"the {s['medians']} medians the {s['level']:.1%} interval contains the goal."
    )
    return text + _packing(s, ours)


def summary_text(rows: Iterable[Row], commit: str, width: int = 92) -> str:
    """The README's paragraphs stating a bench result's figures, wrapped at ``width``.

    One paragraph for MaskedLSTM, then one per other cell the result holds.
    """
    rows = list(rows)
    repeats = min((len(_ratios(r)) for r in rows), default=0)
    if repeats < MIN_REPEATS:
        return (
            f"Too few repeats ({repeats}) for the {LEVEL:.0%} intervals the figures rest on "
            f"(at least {MIN_REPEATS}); the tables below give the medians."
        )
    parts = []
    if _ours(rows, "lstm"):
        parts.append(_lstm_text(summarize(rows), commit))
    for cell in ("gru", "rnn"):
        if _ours(rows, cell):
            parts.append(_cell_text(summarize(rows, cell), cell))
    wrap = textwrap.TextWrapper(width=width, break_on_hyphens=False, break_long_words=False)
    return "\n\n".join(wrap.fill(part) for part in parts)
