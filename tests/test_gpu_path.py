"""The GPU path (``make test-gpu``) can only run a chapter on CUDA if the chapter asks.

``make test-gpu`` re-runs every chapter with ``LSTM_ZERO_DEVICE=cuda``; that reaches a
chapter only through ``lstm_zero_lib.book.train.get_device()``. This test (CPU, fast)
reads the notebooks: every chapter that trains (an optimiser or ``fit(``) calls
``get_device()`` and prints the device exactly once, as ``device: <device>`` (the line
tests/nbval_sanitize.cfg masks), so a reader sees where it ran. A gradient check
(``.backward()`` with no optimiser) is not training: the speed appendix runs one on the
CPU on purpose, beside its CPU timings; CUDA exactness is tests/test_cuda.py's job.
The deployment appendix trains one step on two CPU processes (DDP's gloo backend), in a
subprocess, to compare them with one process: the CPU is its subject, not a default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
TRAINS = re.compile(r"torch\.optim\.|\bfit\(")
DEVICE_PRINT = 'print(f"device: {device}")'
#: Chapters whose training runs on the CPU by design (see the module docstring).
CPU_BY_DESIGN = {"deploying_and_scaling"}


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_training_chapter_picks_and_prints_its_device(notebook: Path) -> None:
    if notebook.stem in CPU_BY_DESIGN:
        pytest.skip(f"{notebook.name} trains on CPU processes by design")
    code = _code(notebook)
    if not TRAINS.search(code):
        pytest.skip(f"{notebook.name} trains nothing")
    assert re.search(r"\bdevice\s*=\s*get_device\(\)", code), "device = get_device() missing"
    assert code.count(DEVICE_PRINT) == 1, f"print the device once: {DEVICE_PRINT}"


def test_the_device_line_is_sanitized_for_nbval() -> None:
    config = (ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    patterns = [ln.split(":", 1)[1].strip() for ln in config.splitlines() if ln.startswith("regex")]
    assert any(re.search(p, "device: cuda:0") for p in patterns)
    assert any(re.search(p, "device: cpu") for p in patterns)
