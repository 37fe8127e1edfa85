"""Write a committed bench result's printed figures and tables into README.md.

After ``make bench``: ``.venv/bin/python tools/readme_bench.py`` runs
``benchmarks/bench_masked_lstm.py --markdown`` on each committed result and replaces what
README.md holds between that result's two marker comments with the output.
``tests/test_benchmark.py`` checks, with :func:`readme_block` and :func:`printed`, that the
two are the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: The committed results (the CUDA one only after a GPU run).
NAMES = ("bench_masked_lstm.json", "bench_masked_lstm_cuda.json")


def markers(name: str) -> tuple[str, str]:
    """The comment lines around the printed output of ``benchmarks/results/<name>``."""
    return (
        f"<!-- begin: printed by `bench_masked_lstm.py --markdown` from {name}; "
        "tools/readme_bench.py writes it -->",
        f"<!-- end of the output printed from {name} -->",
    )


def printed(name: str) -> str:
    """What ``bench_masked_lstm.py --markdown`` prints for the committed result ``name``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_masked_lstm.py"), "--markdown"]
        + [str(RESULTS / name)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _span(text: str, name: str) -> tuple[int, int]:
    begin, end = markers(name)
    if begin not in text or end not in text:
        raise SystemExit(f"README.md: no block for {name}: add the lines\n{begin}\n{end}")
    start = text.index(begin) + len(begin)
    return start, text.index(end, start)


def readme_block(text: str, name: str) -> str:
    """What ``text`` (the README) holds between the markers of ``name``."""
    start, stop = _span(text, name)
    return text[start:stop].strip()


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name in NAMES:
        if (RESULTS / name).exists():
            start, stop = _span(text, name)
            text = text[:start] + "\n" + printed(name) + "\n" + text[stop:]
            print(f"README.md: wrote the output for {name}")
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
