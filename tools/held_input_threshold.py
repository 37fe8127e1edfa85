"""Where the CPU should switch from a ``masked_fill`` pass to the row fill (``rnn._held_input``).

``MaskedLSTM`` zeroes the features of held steps in one of two ways: below
``rnn._ROW_FILL_FROM`` elements of ``x`` (and off the CPU) by one ``masked_fill`` and a
``cat``, above it on the CPU by a ``cat`` and a fill of the held rows found by ``nonzero``.
This script times a forward call of the right-padding path both ways on the benchmark's
batch (``make_batch``: B = 32, F = 32, H = 64, lengths T/2..T with one full-length row) at
several lengths, single-threaded, by thread CPU time, interleaved with a plain ``nn.LSTM``
call (so that each timed call starts, as in a model, after another kernel), and prints
the median of the paired per-repeat ratio row fill / masked_fill with the
distribution-free interval of that median (``median_interval``; its level depends on the
number of repeats). Below 1 the row fill is faster.

Run: ``.venv/bin/python tools/held_input_threshold.py >
benchmarks/results/held_input_threshold.txt`` (the committed result). Not part of
``make bench``: it measures one constant's choice, not the library against ``nn.LSTM``.
"""

from __future__ import annotations

import argparse
import random
import time
from unittest import mock

import torch

from lstm_zero_lib import masked_lstm
from lstm_zero_lib import rnn as rnn_module
from lstm_zero_lib.book.benchmark import BenchConfig, make_batch
from lstm_zero_lib.book.stats import median_interval


def paired_ratios(steps: int, repeats: int) -> list[float]:
    """Per repeat: time with the row fill / time with ``masked_fill`` (same batch)."""
    lstm, x, mask = make_batch(BenchConfig(steps=steps))
    fill_from = {"row fill": 0, "masked_fill": 2**62}

    def call(way: str) -> float:
        with mock.patch.object(rnn_module, "_ROW_FILL_FROM", fill_from[way]):
            start = time.thread_time()
            masked_lstm(lstm, x, mask)
            return time.thread_time() - start

    times: dict[str, list[float]] = {way: [] for way in fill_from}
    order = random.Random(steps)
    with torch.no_grad():
        for rep in range(repeats + 5):
            ways = list(fill_from)
            order.shuffle(ways)
            for way in ways:
                lstm(x)  # another kernel first, as in a model
                elapsed = call(way)
                if rep >= 5:
                    times[way].append(elapsed)
    return [r / m for r, m in zip(times["row fill"], times["masked_fill"], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=201)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 16, 20, 30, 50, 100])
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = BenchConfig()
    per_step = config.batch * config.features
    print(
        f"B{config.batch} F{config.features} H{config.hidden}, one thread, "
        f"{args.repeats} paired repeats, forward calls, torch {torch.__version__}; "
        f"threshold now {rnn_module._ROW_FILL_FROM} elements "
        f"(T = {rnn_module._ROW_FILL_FROM / per_step:g} at this shape)"
    )
    for steps in args.steps:
        ratios = paired_ratios(steps, args.repeats)
        iv = median_interval(ratios)
        print(
            f"T = {steps:4d} ({per_step * steps:6d} elements): row fill / masked_fill "
            f"{iv.median:.3f} ({iv.level:.1%} interval {iv.low:.3f}-{iv.high:.3f})"
        )


if __name__ == "__main__":
    main()
