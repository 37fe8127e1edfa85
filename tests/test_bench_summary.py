"""lstm_zero_lib.book.bench_summary: the figures and sentences printed from a bench result."""

from __future__ import annotations

import json
import math

import pytest
import readme_bench  # tools/ (pyproject: pythonpath)

from lstm_zero_lib.book.bench_summary import summarize, summary_text


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


def _flat(text):
    return " ".join(text.split())  # unwrapped: a phrase may straddle a line break


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
    text = _flat(summary_text(rows, "0123456789abcdef"))
    assert "for gaps" not in text and "pack_padded_sequence" not in text
    assert "code at 0123456" in text and "met in both modes at 1 of 3 shapes" in text


def test_packing_comparison_is_paired_and_needs_a_clear_difference():
    ours = _spread(1.5, width=1.0)
    # Packing 0.01 faster in 8 repeats, 0.01 slower in 7: the median difference is +0.01
    # (ours "slower" by medians alone), but the sign interval holds zero: not clear.
    noisy_pack = [r - 0.01 * (-1) ** i for i, r in enumerate(ours)]
    rows = [
        _row("MaskedLSTM", "right", 10, "forward", ours),
        _row("pack_padded_sequence", "right", 10, "forward", noisy_pack),
        _row("MaskedLSTM", "right", 10, "forward+backward", ours),
        _row("pack_padded_sequence", "right", 10, "forward+backward", [r + 0.5 for r in ours]),
        _row("MaskedLSTM", "right", 30, "forward", ours),
        _row("pack_padded_sequence", "right", 30, "forward", [r - 0.2 for r in ours]),
    ]
    s = summarize(rows)
    assert sorted(a - b for a, b in zip(ours, noisy_pack, strict=True))[7] > 0
    assert (s["forward_faster_than_pack"], s["forward_slower_than_pack"]) == (0, 1)
    assert s["forward_tied_with_pack"] == 1
    assert s["forward_slower_by"] == pytest.approx((0.2, 0.2))
    assert s["forward+backward_faster_than_pack"] == 1  # paired: 0.5 faster in every repeat
    text = _flat(summary_text(rows, "abc"))
    assert "forward MaskedLSTM is faster at 0, slower at 1 (median per-repeat" in text
    assert "forward+backward MaskedLSTM is faster at 1, slower at 0" in text


def test_verdicts_need_both_modes_and_count_per_mask():
    rows = [
        _row("MaskedLSTM", "right", 10, "forward", _spread(1.0)),  # clearly met
        _row("MaskedLSTM", "right", 10, "forward+backward", _spread(1.24, width=0.2)),  # open
        _row("MaskedLSTM", "gaps", 10, "forward", _spread(1.0)),  # clearly met
        _row("MaskedLSTM", "gaps", 10, "forward+backward", _spread(1.5)),  # clearly missed
        _row("MaskedLSTM", "gaps", 30, "forward", _spread(1.0)),
        _row("MaskedLSTM", "gaps", 30, "forward+backward", _spread(1.1)),
    ]
    s = summarize(rows)
    assert (s["met_both"], s["clearly_met"], s["clearly_missed"], s["unclear"]) == (2, 1, 1, 1)
    assert s["met_both_by_mask"] == {"right": (1, 1), "gaps": (1, 2)}
    assert s["met_by_mode"] == {"forward": 3, "forward+backward": 2}
    assert "and for 1 the run cannot tell" in _flat(summary_text(rows, "abc"))


def test_few_repeats_one_mode_of_packing_and_no_lstm_rows_still_print():
    few = [_row("MaskedLSTM", "right", 10, m, _spread(1.0, n=5)) for m in ("forward",)]
    assert _flat(summary_text(few, "abc")).startswith("Too few repeats (5)")
    rows = [
        _row("MaskedGRU", "right", 10, m, _spread(1.0), cell="gru")
        for m in ("forward", "forward+backward")
    ]
    rows.append(_row("pack_padded_sequence", "right", 10, "forward", _spread(1.3), cell="gru"))
    text = _flat(summary_text(rows, "abc"))
    assert text.startswith("MaskedGRU's median ratio") and "MaskedLSTM" not in text
    assert "(packing: 1.30-1.30 forward)." in text


def test_zero_goals_met_reads_without_margins():
    rows = [
        _row("MaskedLSTM", "gaps", 10, m, _spread(3.0)) for m in ("forward", "forward+backward")
    ]
    s = summarize(rows)
    assert s["met_both"] == 0 and s["met_margin"] is None
    text = _flat(summary_text(rows, "abc"))
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
    # The intervals by hand, from the binomial tail (any number of repeats, as with
    # `make bench BENCH_ARGS="--repeats 21"`): the largest k with P(Bin(n, 1/2) < k) <=
    # 2.5 % gives the k-th smallest and the k-th largest repeat (n = 15: 4th and 12th).
    n = len(ours[0]["ratios"])
    assert all(len(r["ratios"]) == n for r in rows)
    k = max(k for k in range(1, n) if sum(math.comb(n, i) for i in range(k)) <= 0.025 * 2**n)
    lo, hi = k - 1, n - k
    assert n != 15 or (lo, hi) == (3, 11)
    low = {id(r): sorted(r["ratios"])[lo] for r in ours}
    high = {id(r): sorted(r["ratios"])[hi] for r in ours}
    assert s["unclear"] == sum(low[id(r)] <= r["goal"] <= high[id(r)] for r in ours)
    by_shape = {}
    for r in ours:
        by_shape.setdefault((r["mask"], r["label"]), []).append(r)
    clear_met = sum(all(high[id(r)] < r["goal"] for r in rs) for rs in by_shape.values())
    clear_missed = sum(any(low[id(r)] > r["goal"] for r in rs) for rs in by_shape.values())
    assert (s["clearly_met"], s["clearly_missed"]) == (clear_met, clear_missed)
    # Packing: paired per-repeat differences, the same ranks.
    pack = {(r["label"], r["mode"]): r for r in rows if r["method"] == "pack_padded_sequence"}
    for mode in ("forward", "forward+backward"):
        faster = slower = 0
        for r in ours:
            if r["mask"] == "right" and r["mode"] == mode and r["cell"] == "lstm":
                other = pack[r["label"], mode]["ratios"]
                diffs = sorted(a - b for a, b in zip(r["ratios"], other, strict=True))
                faster += diffs[hi] < 0
                slower += diffs[lo] > 0
        assert s[f"{mode}_faster_than_pack"] == faster
        assert s[f"{mode}_slower_than_pack"] == slower
