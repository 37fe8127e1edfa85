"""The benchmark harness: correctness gate and result rows (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import readme_bench  # tools/ (pyproject: pythonpath)
import torch

from lstm_zero_lib.book.benchmark import (
    METHODS,
    BenchConfig,
    check_methods,
    make_batch,
    packed_lstm,
    step_loop_lstm,
    time_config,
)
from lstm_zero_lib.book.provenance import measured_code
from lstm_zero_lib.diagnostics import reference_forward

SMALL = {"batch": 4, "steps": 7, "features": 3, "hidden": 5}


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mask", ["right", "gaps"])
def test_check_methods_passes_for_exact_methods(layers: int, bidirectional: bool, mask: str):
    config = BenchConfig(**SMALL, layers=layers, bidirectional=bidirectional, mask=mask)
    errors = check_methods(config)
    expected = {"MaskedLSTM", "step loop"} | (
        {"pack_padded_sequence", "MaskedLSTM lengths="} if mask == "right" else set()
    )
    assert set(errors) == expected
    assert max(errors.values()) < 1e-5


def test_check_methods_rejects_an_inexact_method(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(METHODS, "MaskedLSTM", METHODS["nn.LSTM"])  # plain run: wrong h_n
    with pytest.raises(AssertionError, match="MaskedLSTM differs from the oracle"):
        check_methods(BenchConfig(**SMALL))


def test_step_loop_matches_oracle_with_gaps():
    lstm, x, mask = make_batch(BenchConfig(**SMALL, layers=2, bidirectional=True, mask="gaps"))
    out, (h_n, c_n) = step_loop_lstm(lstm, x, mask)
    ref, (h_ref, c_ref) = reference_forward(lstm, x, mask)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_n, c_ref, atol=1e-6, rtol=0)


def test_packed_lstm_is_wrong_on_left_padding():
    lstm, x, mask = make_batch(BenchConfig(**SMALL, mask="right"))
    left = mask.flip(1)
    out, _ = packed_lstm(lstm, x, left)
    ref, _ = reference_forward(lstm, x, left)
    assert (out - ref).abs().max() > 1e-3  # the trap the chapters warn about


def test_make_batch_is_seeded_and_validates_mask_kind():
    a = make_batch(BenchConfig(**SMALL), seed=3)
    b = make_batch(BenchConfig(**SMALL), seed=3)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    with pytest.raises(ValueError, match="config.mask"):
        make_batch(BenchConfig(**SMALL, mask="middle"))


@pytest.mark.parametrize("backward", [False, True])
def test_time_config_rows(backward: bool):
    rows = time_config(BenchConfig(**SMALL, mask="gaps"), backward=backward, repeats=2, warmup=0)
    methods = [r["method"] for r in rows]
    assert methods[0] == "nn.LSTM" and "pack_padded_sequence" not in methods
    plain = rows[0]
    assert plain["ratio_median"] == plain["ratio_min"] == plain["ratio_max"] == 1.0
    for row in rows:
        assert row["mode"] == ("forward+backward" if backward else "forward")
        assert row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"]
        assert row["ms_median"] > 0


def test_suite_covers_the_issue_grid():
    from lstm_zero_lib.book.benchmark import SUITE

    for mask in ("right", "gaps"):
        shapes = [c for c in SUITE if c.mask == mask]
        assert {c.steps for c in shapes} == {10, 30, 100, 200, 1000}
        assert {c.layers for c in shapes} == {1, 2}
        assert {c.bidirectional for c in shapes} == {False, True}


def test_step_loop_is_skipped_only_on_long_sequences():
    rows = time_config(BenchConfig(**{**SMALL, "steps": 201}), backward=False, repeats=1, warmup=0)
    assert "step loop" not in {r["method"] for r in rows}


def test_every_batch_has_a_full_length_row():
    for mask in ("right", "gaps"):
        _, _, m = make_batch(BenchConfig(**SMALL, mask=mask))
        assert bool(m[0].all())


def test_markdown_table_from_rows():
    from lstm_zero_lib.book.benchmark import goal, markdown_table

    config = BenchConfig(**SMALL)
    rows = time_config(config, backward=False, repeats=2, warmup=0)
    rows += time_config(config, backward=True, repeats=2, warmup=0)
    for row in rows:
        row["goal"] = goal(config)
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 3 and lines[2].startswith("| right | B4 T7 H5 F3 |")
    assert lines[2].count("|") == lines[0].count("|")


@pytest.mark.parametrize("cell", ["gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mask", ["right", "gaps"])
def test_gru_and_rnn_configs_check_and_time_against_their_plain_module(
    cell: str, bidirectional: bool, mask: str
):
    from lstm_zero_lib.book.benchmark import goal, markdown_table

    config = BenchConfig(**SMALL, layers=2, bidirectional=bidirectional, mask=mask, cell=cell)
    ours = f"Masked{cell.upper()}"
    errors = check_methods(config)
    right = {"pack_padded_sequence", f"{ours} lengths="} if mask == "right" else set()
    assert set(errors) == {ours} | right and max(errors.values()) < 1e-5
    module, _, _ = make_batch(config)
    assert type(module).__name__ == cell.upper() and cell.upper() in config.label

    rows = time_config(config, backward=True, repeats=2, warmup=0)
    assert rows[0]["method"] == f"nn.{cell.upper()}" and rows[0]["ratio_median"] == 1.0
    assert {r["method"] for r in rows} == {f"nn.{cell.upper()}", ours} | right
    for row in rows:
        row["goal"] = goal(config)
    lines = markdown_table(rows, ours=ours).splitlines()
    assert len(lines) == 3 and ours in lines[0] and lines[2].startswith(f"| {mask} | B4 T7")
    assert len(markdown_table(rows).splitlines()) == 2, "an LSTM table leaves GRU/RNN rows out"


def _committed(name: str) -> Path:
    """The committed result ``name``; the CUDA one may be absent (no GPU run yet)."""
    path = readme_bench.RESULTS / name
    if not path.exists():
        assert name.endswith("_cuda.json"), f"no committed {name}"
        pytest.skip("no CUDA result is committed")
    return path


@pytest.mark.parametrize("name", readme_bench.NAMES)
def test_readme_holds_the_printed_bench_result(name):
    # The README's bench figures and tables must be what `--markdown` prints from the
    # committed JSON (the speed appendix reads the CPU one): a new `make bench` without
    # `tools/readme_bench.py` fails here.
    _committed(name)
    printed = readme_bench.printed(name)
    assert printed.count("\n| right |") >= 9 and "In the committed run" in printed
    readme = (readme_bench.ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_bench.readme_block(readme, name) == printed


@pytest.mark.parametrize("name", readme_bench.NAMES)
def test_committed_bench_result_measured_this_code(name):
    # The README and the speed appendix report these results: the library and harness
    # code that ran then must be the code here, up to comments and docstrings. A change
    # to what runs needs a new `make bench` (and, for the CUDA result, a GPU run).
    root = readme_bench.ROOT
    meta = json.loads(_committed(name).read_text())["meta"]
    assert meta["commit"] != "unknown", "the result names no commit"
    assert not str(meta["commit"]).endswith("+dirty"), f"measured uncommitted code: {meta}"
    then, now = meta["code"], measured_code(root)
    assert then.keys() == now.keys(), sorted(then.keys() ^ now.keys())
    changed = [path for path in now if then[path] != now[path]]
    assert not changed, f"code changed since the bench ran at {meta['commit'][:12]}: {changed}"


def test_code_fingerprints_agree_across_python_versions():
    # A result measured on another machine (the GPU machine runs Python 3.12) is checked
    # here on 3.11: the fingerprints must not depend on the version. provenance.py needs
    # only the standard library, so it runs as a file under any installed Python >= 3.10.
    root = readme_bench.ROOT
    found = sorted(Path.home().glob(".pyenv/versions/3.1[0-9]*/bin/python3"))
    others = [p for p in found if p.resolve() != Path(sys.executable).resolve()]
    if not others:
        pytest.skip("no other Python 3.10+ installed (pyenv)")
    script = (
        "import importlib.util, json, pathlib, sys\n"
        "spec = importlib.util.spec_from_file_location('p', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(json.dumps(module.measured_code(pathlib.Path(sys.argv[2]))))\n"
    )
    here = measured_code(root)
    for python in others:
        printed = subprocess.run(
            [str(python), "-c", script, str(root / "lstm_zero_lib/book/provenance.py"), str(root)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(printed) == here, python


def test_only_a_full_one_thread_run_gets_a_committed_name(capsys):
    # `--quick` (5 repeats, a few shapes) used to overwrite the committed full result,
    # which the README block and the code-fingerprint test then no longer matched; a run
    # on more threads would have broken the appendix (it reads a one-thread result).
    path = readme_bench.ROOT / "benchmarks" / "bench_masked_lstm.py"
    spec = importlib.util.spec_from_file_location("bench_script", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def name(*argv: str) -> str:
        return f"{script.result_stem(script.parse_args(list(argv)))}.json"

    committed = set(readme_bench.NAMES)
    full = {name(), name("--repeats", "21"), name("--device", "cuda"), name("--device", "cuda:1")}
    assert full == committed
    others = [
        name("--quick"),
        name("--threads", "2"),
        name("--quick", "--device", "cuda"),
        name("--threads", "4", "--device", "cuda"),
    ]
    assert len(set(others)) == 4 and not set(others) & committed
    # Too few repeats for the summary's intervals: refused, with the flag named.
    with pytest.raises(SystemExit):
        script.parse_args(["--repeats", "5"])
    assert "--repeats: expected at least 6, got 5" in capsys.readouterr().err
