"""The figures a ``make bench`` result is read by, and the README's sentences stating them.

:func:`summarize` computes them from the result rows (those of
:func:`~lstm_zero_lib.book.benchmark.run_suite`); the speed appendix glues them and
:func:`summary_text` writes them into sentences that ``bench_masked_lstm.py --markdown``
prints, so the README's prose is printed from the committed result like its tables (a test
checks that the README holds every printed line).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["median_standard_error", "summarize", "summary_text"]

Row = Mapping[str, Any]
MODES = ("forward", "forward+backward")


def median_standard_error(row: Row) -> float:
    """Standard error of a row's median ratio: ``1.2533 sigma / sqrt(n)``, with sigma
    estimated from the quartiles (``IQR / 1.349``, as for a normal distribution).

    Examples
    --------
    >>> round(median_standard_error({"ratio_q1": 1.0, "ratio_q3": 1.1349, "repeats": 16}), 4)
    0.0313
    """
    sigma = (float(row["ratio_q3"]) - float(row["ratio_q1"])) / 1.349
    return 1.2533 * sigma / math.sqrt(int(row["repeats"]))


def _ours(rows: Iterable[Row], cell: str) -> list[Row]:
    name = "Masked" + cell.upper()
    return [r for r in rows if r.get("cell", "lstm") == cell and r["method"] == name]


def _shapes(rows: list[Row]) -> dict[tuple[str, str], dict[str, Row]]:
    """(mask, label) -> mode -> row, in the run's order."""
    shapes: dict[tuple[str, str], dict[str, Row]] = {}
    for row in rows:
        shapes.setdefault((row["mask"], row["label"]), {})[row["mode"]] = row
    return shapes


def _against_packing(ours: list[Row], rows: list[Row], cell: str) -> dict[str, Any]:
    """Per mode: right-padded shapes where ours is faster / slower than packing (medians)."""
    pack = {
        (r["label"], r["mode"]): float(r["ratio_median"])
        for r in rows
        if r.get("cell", "lstm") == cell and r["method"] == "pack_padded_sequence"
    }
    out: dict[str, Any] = {"pack_shapes": len({label for label, _ in pack})}
    for mode in MODES:
        diffs = [
            float(r["ratio_median"]) - pack[r["label"], mode]
            for r in ours
            if r["mask"] == "right" and r["mode"] == mode
        ]
        slower = [d for d in diffs if d > 0]
        out[f"{mode}_below_pack"] = sum(d < 0 for d in diffs)
        out[f"{mode}_slower_than_pack"] = len(slower)
        out[f"{mode}_slower_by"] = (min(slower), max(slower)) if slower else None
        values = [v for (_, m), v in pack.items() if m == mode]
        out[f"{mode}_pack_range"] = (min(values), max(values)) if values else None
    return out


def summarize(rows: Iterable[Row], cell: str = "lstm") -> dict[str, Any]:
    """The figures of one cell's rows (``"lstm"``, ``"gru"`` or ``"rnn"``) of a bench result.

    Keys: ``shapes``, ``medians``, ``repeats``; ``met_both`` (shapes whose medians meet
    the goal in both modes) with their ``met_labels`` and ``met_margin`` (lowest and highest
    of each met shape's smaller distance inside its goal); ``met_by_mode`` (medians at or
    below their goal, per mode); ``met_both_by_mask`` (mask -> (met, shapes));
    ``close`` (medians within 0.02 of their goal) and ``close_2se`` (of those, within two
    standard errors); ``range`` ((mask, mode) -> (lowest, highest median)) and
    ``highest_at`` ((mask, mode) -> T of the highest median); and, for right padding,
    per mode, how many shapes are below / slower than ``pack_padded_sequence`` (medians),
    by how much, and packing's own range.

    Examples
    --------
    >>> rows = [
    ...     {"mask": "right", "label": f"T{t}", "steps": t, "mode": m, "method": k,
    ...      "ratio_median": r, "ratio_q1": r, "ratio_q3": r, "repeats": 15, "goal": 1.25}
    ...     for t in (10, 30)
    ...     for m in ("forward", "forward+backward")
    ...     for k, r in (("MaskedLSTM", 1.5 - t / 100), ("pack_padded_sequence", 2.0))
    ... ]
    >>> s = summarize(rows)
    >>> s["met_both"], s["met_labels"], s["range"]["right", "forward"]
    (1, ['T30'], (1.2, 1.4))
    >>> s["highest_at"]["right", "forward"]
    10
    >>> s["forward_below_pack"], s["pack_shapes"]
    (2, 2)
    """
    rows = list(rows)
    ours = _ours(rows, cell)
    shapes = _shapes(ours)
    inside = {
        key: min(float(r["goal"]) - float(r["ratio_median"]) for r in by.values())
        for key, by in shapes.items()
    }
    met = [key for key, margin in inside.items() if margin >= 0]
    close = [r for r in ours if abs(float(r["ratio_median"]) - float(r["goal"])) <= 0.02]
    figures: dict[str, Any] = {
        "shapes": len(shapes),
        "medians": len(ours),
        "repeats": int(ours[0]["repeats"]) if ours else 0,
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
            mask: (sum(k in met for k in shapes if k[0] == mask), sum(k[0] == mask for k in shapes))
            for mask in dict.fromkeys(k[0] for k in shapes)
        },
        "close": len(close),
        "close_2se": sum(
            abs(float(r["ratio_median"]) - float(r["goal"])) < 2 * median_standard_error(r)
            for r in close
        ),
        "range": {},
        "highest_at": {},
    }
    for mask in figures["met_both_by_mask"]:
        for mode in MODES:
            part = [r for r in ours if r["mask"] == mask and r["mode"] == mode]
            medians = [float(r["ratio_median"]) for r in part]
            figures["range"][mask, mode] = (min(medians), max(medians))
            figures["highest_at"][mask, mode] = int(
                max(part, key=lambda r: r["ratio_median"])["steps"]
            )
    figures.update(_against_packing(ours, rows, cell))
    return figures


def _span(pair: tuple[float, float], digits: int = 2) -> str:
    return f"{pair[0]:.{digits}f}-{pair[1]:.{digits}f}"


def _lstm_text(s: dict[str, Any], commit: str) -> str:
    r = s["range"]
    highest = set(s["highest_at"].values())
    where = f", highest at T = {highest.pop()}" if len(highest) == 1 else ""
    text = (
        f"In the committed run (code at {commit[:7]}), MaskedLSTM's median ratio to plain "
        f"`nn.LSTM` is {_span(r['right', 'forward'])} forward and "
        f"{_span(r['right', 'forward+backward'])} forward+backward for right padding, and "
        f"{_span(r['gaps', 'forward'])} forward and {_span(r['gaps', 'forward+backward'])} "
        f"forward+backward for gaps{where}. "
        f"Issue 13's goals are met in both modes at {s['met_both']} of {s['shapes']} shapes"
    )
    if s["met_both"]:
        low, high = s["met_margin"]
        text += f" ({', '.join(s['met_labels'])}), by {low:.3f} to {high:.3f},"
    text += (
        f" and in forward+backward (whatever forward does) at "
        f"{s['met_by_mode']['forward+backward']}. Those counts are partly inside the noise: "
        f"{s['close']} of the {s['medians']} medians lie within 0.02 of their goal, "
        f"{s['close_2se']} of them within two standard errors of it (the standard error of a "
        f"median of {s['repeats']} repeats, estimated from their quartiles)"
    )
    text += ", so another run moves some shapes across the line. " if s["close_2se"] else ". "
    n = s["pack_shapes"]
    text += (
        f"MaskedLSTM's median is below `pack_padded_sequence`'s at "
        f"{s['forward_below_pack']} of {n} right-padded shapes forward and at "
        f"{s['forward+backward_below_pack']} of {n} forward+backward (packing: "
        f"{_span(s['forward_pack_range'])} forward, "
        f"{_span(s['forward+backward_pack_range'])} forward+backward)."
    )
    return text


def _cell_text(s: dict[str, Any], cell: str) -> str:
    ours, plain = f"Masked{cell.upper()}", f"`nn.{cell.upper()}`"
    r = s["range"]
    fwd = (
        min(r[m, "forward"][0] for m in ("right", "gaps")),
        max(r[m, "forward"][1] for m in ("right", "gaps")),
    )
    both = tuple(r[m, "forward+backward"] for m in ("right", "gaps"))
    fb = (min(p[0] for p in both), max(p[1] for p in both))
    met = s["met_both_by_mask"]
    text = (
        f"{ours}'s median ratio to plain {plain} is {_span(fwd)} forward and {_span(fb)} "
        f"forward+backward; goals met in both modes at {met['right'][0]} of {met['right'][1]} "
        f"right-padded and {met['gaps'][0]} of {met['gaps'][1]} gap shapes, forward at "
        f"{s['met_by_mode']['forward']} of {s['shapes']} shapes and forward+backward at "
        f"{s['met_by_mode']['forward+backward']}. Against `pack_padded_sequence` "
        f"(right padding, {s['pack_shapes']} shapes), {ours} is slower forward at "
        f"{s['forward_slower_than_pack']}"
    )
    if s["forward_slower_by"]:
        text += f" (by {_span(s['forward_slower_by'], 3)} in the ratio)"
    text += f" and forward+backward at {s['forward+backward_slower_than_pack']}"
    if s["forward+backward_slower_by"]:
        text += f" (by {_span(s['forward+backward_slower_by'], 3)})"
    return text + (
        f" (packing: {_span(s['forward_pack_range'])} forward, "
        f"{_span(s['forward+backward_pack_range'])} forward+backward)."
    )


def summary_text(rows: Iterable[Row], commit: str, width: int = 92) -> str:
    """The README's paragraphs stating a bench result's figures, wrapped at ``width``.

    One paragraph for MaskedLSTM, then one per other cell the result holds.
    """
    rows = list(rows)
    parts = [_lstm_text(summarize(rows), commit)]
    for cell in ("gru", "rnn"):
        if _ours(rows, cell):
            parts.append(_cell_text(summarize(rows, cell), cell))
    wrap = textwrap.TextWrapper(width=width, break_on_hyphens=False, break_long_words=False)
    return "\n\n".join(wrap.fill(part) for part in parts)
