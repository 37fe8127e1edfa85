"""Benchmark exact masking against plain nn.LSTM, pack_padded_sequence and a step loop.

MaskedGRU and MaskedRNN are timed the same way against plain nn.GRU / nn.RNN (their own
tables and figure).

Run with ``make bench`` (or ``python benchmarks/bench_masked_lstm.py --help``). Every method
is checked against the per-sequence oracle before it is timed; the timings are interleaved
in one process (single-threaded on the CPU unless ``--threads``) and reported as ratios to
plain ``nn.LSTM`` on the same padded batch, one ratio per repeat.
Writes ``results/bench_masked_lstm[_cuda].json`` and ``.png`` (plus ``_gru_rnn.png``;
``--quick`` or ``--threads N``: a suffix, not committed);
``--markdown FILE.json`` prints the README's figures and tables from a saved run without
timing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import lstm_zero_lib
from lstm_zero_lib.book.bench_summary import MIN_REPEATS, summary_text
from lstm_zero_lib.book.benchmark import (
    SUITE,
    TARGET_CONFIGS,
    BenchConfig,
    markdown_table,
    run_suite,
)
from lstm_zero_lib.book.plotting import plot_speed_ratios, set_theme
from lstm_zero_lib.book.provenance import code_version, measured_code

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument(
        "--repeats", type=int, default=15, help=f"timed repeats per method (>= {MIN_REPEATS})"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="5 repeats, three LSTM and two GRU shapes only (files get a _quick suffix)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output folder")
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print the table of a saved run; no timing"
    )
    args = parser.parse_args(argv)
    if args.repeats < MIN_REPEATS and not args.quick:
        # Fewer give no 95 % interval of a median, which the summary and the appendix read.
        parser.error(
            f"--repeats: expected at least {MIN_REPEATS}, got {args.repeats} (--quick "
            "is the short smoke run)"
        )
    return args


def conditions(meta: dict[str, object], rows: list[dict[str, object]]) -> str:
    """One line saying how the numbers were measured."""
    loads = [float(r["load_average_1min"]) for r in rows if r.get("load_average_1min") is not None]  # type: ignore[arg-type]
    load = (
        f", 1-minute load average {min(loads):.2f}-{max(loads):.2f} (mean "
        f"{sum(loads) / len(loads):.2f}) on {meta['cpu_count']} cores"
        if loads
        else ""
    )
    took = f", {meta['minutes']} min in all" if "minutes" in meta else ""
    return (
        f"{meta['device_name']} ({meta['device']}), torch {meta['torch']}, "
        f"{meta['threads']} thread(s), {meta['repeats']} interleaved repeats per method, "
        f"timed by {meta.get('clock', 'wall clock')}{load}{took}, "
        f"code at {meta.get('commit', 'unknown')}; "
        "each cell: median time / plain module's time (nn.LSTM, nn.GRU or nn.RNN), "
        "(min-max over repeats)"
    )


def tables(rows: list[dict[str, object]]) -> str:
    """The LSTM table, then one per other cell that was measured."""
    parts = [markdown_table(rows)]
    for ours in ("MaskedGRU", "MaskedRNN"):
        cell = ours.removeprefix("Masked").lower()
        if any(row.get("cell") == cell for row in rows):
            parts.append(f"{ours} (ratios to plain nn.{cell.upper()}):\n\n")
            parts[-1] += markdown_table(rows, ours=ours)
    return "\n\n".join(parts)


#: ``--quick``: the LSTM's target shapes and two GRU shapes.
QUICK = (
    *TARGET_CONFIGS,
    BenchConfig(steps=200, cell="gru"),
    BenchConfig(steps=100, bidirectional=True, mask="gaps", cell="gru"),
)


def result_stem(args: argparse.Namespace) -> str:
    """The name of a run's files. Only a full one-thread run gets a committed name
    (``bench_masked_lstm``, ``_cuda`` on a GPU): the tests compare those files with the
    code, and the speed appendix reads the CPU one. ``--quick`` runs and runs on more
    threads get a suffix (git-ignored, like every other file in ``results/``).

    Examples
    --------
    >>> result_stem(parse_args([])), result_stem(parse_args(["--device", "cuda:1"]))
    ('bench_masked_lstm', 'bench_masked_lstm_cuda')
    >>> result_stem(parse_args(["--quick", "--threads", "2"]))
    'bench_masked_lstm_threads2_quick'
    """
    stem = "bench_masked_lstm"
    if args.device != "cpu":
        stem += "_" + args.device.split(":")[0]
    if args.threads != 1:
        stem += f"_threads{args.threads}"
    return stem + "_quick" if args.quick else stem


def main() -> None:
    args = parse_args()
    if args.markdown:
        saved = json.loads(args.markdown.read_text())
        print(summary_text(saved["results"], str(saved["meta"]["commit"])) + "\n")
        print(f"Measured on {conditions(saved['meta'], saved['results'])}.\n")
        print(tables(saved["results"]))
        return
    # What is measured is read before the run: files edited while it runs did not run.
    # And it must be this checkout's library that is imported and timed.
    imported = Path(lstm_zero_lib.__file__).resolve().parent
    if imported != HERE.parent / "lstm_zero_lib":
        raise SystemExit(f"timing lstm_zero_lib from {imported}, not from {HERE.parent}")
    commit, code = code_version(HERE.parent), measured_code(HERE.parent)
    torch.set_num_threads(args.threads)
    configs = list(QUICK) if args.quick else list(SUITE)
    repeats = 5 if args.quick else args.repeats
    start = time.monotonic()
    rows = run_suite(configs, repeats=repeats, device=args.device)
    elapsed = time.monotonic() - start
    device_name = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine() or "cpu"
    )
    meta = {
        "torch": torch.__version__,
        "device": args.device,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "cpu_count": os.cpu_count(),
        "clock": rows[0]["clock"] if rows else "wall clock",
        "commit": commit,
        "code": code,
        "minutes": round(elapsed / 60, 1),
    }
    for row in rows:
        row["device"] = args.device
    args.out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(args)
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    set_theme()
    fig = plot_speed_ratios(
        rows,
        ["MaskedLSTM", "pack_padded_sequence"],
        goals=True,
        title=f"Exact masking vs plain nn.LSTM ({device_name}, torch {torch.__version__})",
    )
    fig.savefig(args.out / f"{stem}.png", bbox_inches="tight")
    others = [row for row in rows if row.get("cell", "lstm") != "lstm"]
    if others:
        fig = plot_speed_ratios(
            others,
            ["MaskedGRU", "MaskedRNN", "pack_padded_sequence"],
            title=f"Exact masking vs plain nn.GRU / nn.RNN ({device_name})",
            baseline="nn.GRU / nn.RNN",
        )
        fig.savefig(args.out / f"{stem}_gru_rnn.png", bbox_inches="tight")
    print(summary_text(rows, str(meta["commit"])) + "\n")
    print(f"Measured on {conditions(meta, rows)}.\n")
    print(tables(rows))
    print(f"\nwrote {args.out / stem}.json and .png")


if __name__ == "__main__":
    main()
