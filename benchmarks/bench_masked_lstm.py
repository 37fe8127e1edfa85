"""Benchmark exact masking against plain nn.LSTM, pack_padded_sequence and a step loop.

Run with ``make bench`` (or ``python benchmarks/bench_masked_lstm.py --help``). Every method
is checked against the per-sequence oracle before it is timed; the timings are interleaved
in one process and reported as ratios to plain ``nn.LSTM`` on the same padded batch.
Writes ``results/bench_masked_lstm.json`` and ``results/bench_masked_lstm.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import pandas as pd
import torch

from lstm_zero_lib.book.benchmark import LENGTH_SWEEP, TARGET_CONFIGS, BenchConfig, run_suite
from lstm_zero_lib.book.plotting import plot_speed_ratios, set_theme

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per method")
    parser.add_argument("--quick", action="store_true", help="5 repeats, target shapes only")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output folder")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    configs: list[BenchConfig] = list(TARGET_CONFIGS)
    if not args.quick:
        configs += [c for c in LENGTH_SWEEP if c not in configs]
        configs.append(BenchConfig(steps=200, mask="gaps"))
    repeats = 5 if args.quick else args.repeats
    rows = run_suite(configs, repeats=repeats, device=args.device)
    device_name = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else platform.processor() or "cpu"
    )
    for row in rows:
        row["device"] = args.device
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "device": args.device,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }
    (args.out / "bench_masked_lstm.json").write_text(
        json.dumps({"meta": meta, "results": rows}, indent=2)
    )
    set_theme()
    fig = plot_speed_ratios(rows)
    fig.suptitle(f"Exact masking vs plain nn.LSTM ({device_name}, torch {torch.__version__})")
    fig.savefig(args.out / "bench_masked_lstm.png", bbox_inches="tight")
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(
        index=["label", "mode"], columns="method", values="ratio_median", sort=False
    )
    print(table.round(2).to_string())
    print(f"wrote {args.out / 'bench_masked_lstm.json'} and .png")


if __name__ == "__main__":
    main()
