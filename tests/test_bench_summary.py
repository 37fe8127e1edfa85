"""lstm_zero_lib.book.bench_summary: the figures and sentences printed from a bench result."""

from __future__ import annotations

import json

import pytest
import readme_bench  # tools/ (pyproject: pythonpath)

from lstm_zero_lib.book.bench_summary import summarize, summary_text
from lstm_zero_lib.book.stats import median_interval


def _row(method, mask, steps, mode, ratios, goal=1.25, cell="lstm"):
    return {
        "method": method,
        "cell": cell,
        "mask": mask,
        "label": f"T{steps} {mask}",
        "steps": steps,
        "mode": mode,
        "goal": goal,
        "ratios": ratios,
        "ratio_median": sorted(ratios)[len(ratios) // 2],
    }


def _spread(center, width=0.1, n=15):
    return [center - width / 2 + width * i / (n - 1) for i in range(n)]


def test_goal_verdicts_follow_the_intervals():
    modes = ("forward", "forward+backward")
    rows = [_row("MaskedLSTM", "right", 10, m, _spread(1.0)) for m in modes]  # clearly met
    rows += [_row("MaskedLSTM", "right", 30, m, _spread(1.26)) for m in modes]  # unclear
    rows += [_row("MaskedLSTM", "right", 100, m, _spread(2.0)) for m in modes]  # clearly missed
    s = summarize(rows)
    assert (s["met_both"], s["clearly_met"], s["clearly_missed"], s["unclear"]) == (1, 1, 1, 2)
    assert s["range"] == {
        ("right", "forward"): (1.0, 2.0),
        ("right", "forward+backward"): (1.0, 2.0),
    }
    assert s["highest_at"]["right", "forward"] == 100
    # A right-padded-only run, no packing rows: no gaps range, no packing sentence.
    text = summary_text(rows, "0123456789abcdef")
    assert "for gaps" not in text and "pack_padded_sequence" not in text
    assert "code at 0123456" in text and "met in both modes at 1 of 3 shapes" in text


def test_packing_comparison_is_paired_and_needs_a_clear_difference():
    ours = _spread(1.5, width=1.0)  # wide spread: medians alone would say "faster"
    noisy_pack = [r + 0.01 * (-1) ** i for i, r in enumerate(ours)]  # same per repeat +-0.01
    rows = [
        _row("MaskedLSTM", "right", 10, "forward", ours),
        _row("pack_padded_sequence", "right", 10, "forward", noisy_pack),
        _row("MaskedLSTM", "right", 10, "forward+backward", ours),
        _row("pack_padded_sequence", "right", 10, "forward+backward", [r + 0.5 for r in ours]),
    ]
    s = summarize(rows)
    assert s["forward_tied_with_pack"] == 1 and s["forward_faster_than_pack"] == 0
    assert s["forward+backward_faster_than_pack"] == 1  # paired: 0.5 faster in every repeat


def test_zero_goals_met_reads_without_margins():
    rows = [
        _row("MaskedLSTM", "gaps", 10, m, _spread(3.0)) for m in ("forward", "forward+backward")
    ]
    s = summarize(rows)
    assert s["met_both"] == 0 and s["met_margin"] is None
    text = summary_text(rows, "abc")
    assert "at 0 of 1 shapes and in forward+backward" in text
    assert "For none of the 2 medians does the" in text


def test_a_result_without_per_repeat_ratios_is_refused():
    row = _row("MaskedLSTM", "right", 10, "forward", _spread(1.0))
    del row["ratios"]
    with pytest.raises(ValueError, match="run make bench again"):
        summarize([row])


def test_committed_result_figures_recomputed_independently():
    saved = json.loads((readme_bench.RESULTS / "bench_masked_lstm.json").read_text())
    rows = saved["results"]
    s = summarize(rows)
    ours = [r for r in rows if r["cell"] == "lstm" and r["method"] == "MaskedLSTM"]
    for mask in ("right", "gaps"):
        for mode in ("forward", "forward+backward"):
            part = [r["ratio_median"] for r in ours if r["mask"] == mask and r["mode"] == mode]
            assert s["range"][mask, mode] == (min(part), max(part))
    labels = {(r["mask"], r["label"]) for r in ours}
    met = {
        k
        for k in labels
        if all(r["ratio_median"] <= r["goal"] for r in ours if (r["mask"], r["label"]) == k)
    }
    assert s["met_both"] == len(met) and s["shapes"] == len(labels) == 18
    unclear = 0
    for r in ours:
        iv = median_interval(r["ratios"])
        assert iv.median == pytest.approx(r["ratio_median"])  # 15 repeats: the middle one
        unclear += iv.low <= r["goal"] < iv.high
    assert s["unclear"] == unclear
