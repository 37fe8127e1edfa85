"""The package as a user installs it: a wheel whose core needs torch only.

``test_wheel_in_a_fresh_venv`` (slow, ~30 s) builds the wheel from a copy of the sources,
installs it with pip into a new virtual environment (``pip install -c constraints.txt``:
the wheel's own dependencies and nothing else, at the pinned versions), then, in that
environment and outside this checkout:

* ``import lstm_zero_lib`` works, comes from the installed wheel, and imports no book
  module (matplotlib, seaborn, pandas, tqdm, numpy, ``lstm_zero_lib.book``): none of them
  is even installed there, so an import of one would fail;
* a ``MaskedLSTM`` call equals ``nn.LSTM`` run on each sequence alone;
* the doctests of every core module pass (pytest is installed there to run them).

It also checks the wheel itself: the hard ``Requires-Dist`` is torch alone (the book's
packages sit behind the ``book`` extra), and the version is ``lstm_zero_lib.__version__``.

``test_core_import_adds_no_book_module`` (a fresh interpreter, no install) checks the
same import rule in this environment, where the book's packages are installed:
``import lstm_zero_lib`` may import only what ``import torch`` alone already imports
(torch 2.13 itself imports numpy, and tqdm when it is installed).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK_PACKAGES = ("matplotlib", "seaborn", "pandas", "tqdm", "numpy")
DOCTEST_FLAGS = "NORMALIZE_WHITESPACE ELLIPSIS NUMBER"


def _source_version() -> str:
    """``__version__`` as written in lstm_zero_lib/__init__.py (read, not imported)."""
    tree = ast.parse((ROOT / "lstm_zero_lib" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise AssertionError("lstm_zero_lib/__init__.py sets no __version__")


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# What a fresh interpreter imports: torch alone, then lstm_zero_lib on top of it.
IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys
    import torch
    with_torch = set(sys.modules)
    import lstm_zero_lib
    added = sorted(set(sys.modules) - with_torch)
    # A package torch had already imported may grow submodules (torch's lazy imports,
    # e.g. numpy.fft under torch.compiler); only packages new to sys.modules count.
    new_packages = sorted({n.split(".")[0] for n in added} - {n.split(".")[0] for n in with_torch})
    print(json.dumps({"file": lstm_zero_lib.__file__, "version": lstm_zero_lib.__version__,
                      "new_packages": new_packages, "book": [n for n in added if ".book" in n],
                      "all": sorted(sys.modules)}))
    """
)


def _book_modules(names: list[str]) -> list[str]:
    return [
        n for n in names if n.split(".")[0] in BOOK_PACKAGES or n.startswith("lstm_zero_lib.book")
    ]


@pytest.mark.slow  # a fresh interpreter importing torch: 5-25 s on a busy 2-core machine
def test_core_import_adds_no_book_module():
    probe = json.loads(_run([sys.executable, "-c", IMPORT_PROBE], cwd=ROOT))
    assert probe["book"] == []
    assert _book_modules(probe["new_packages"]) == [], "imported by lstm_zero_lib, not torch"
    for name in ("matplotlib", "seaborn", "pandas"):
        assert name not in probe["all"], f"{name} imported by `import lstm_zero_lib`"


def test_version_is_single_sourced():
    import tomllib

    import lstm_zero_lib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert lstm_zero_lib.__version__ == _source_version()
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{lstm_zero_lib.__version__}] - " in changelog, "CHANGELOG.md lacks this version"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built without build isolation from a copy of the package sources."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "lstm_zero_lib",
        src / "lstm_zero_lib",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), "."], src)
    (built,) = dist.glob("*.whl")
    return built


@pytest.mark.slow
def test_wheel_metadata(wheel: Path):
    assert wheel.name == f"lstm_zero_lib-{_source_version()}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = zf.read(meta_name).decode()
    assert "lstm_zero_lib/py.typed" in names
    assert "lstm_zero_lib/book/models.py" in names, "the book layer ships, behind an extra"
    assert not [n for n in names if n.startswith(("tests/", "chapters/", "benchmarks/"))]
    assert f"\nVersion: {_source_version()}\n" in meta
    requires = [
        line.split(":", 1)[1].strip()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    hard = [r for r in requires if "extra ==" not in r]
    assert [r.replace(" ", "") for r in hard] == ["torch>=2.7"], hard
    book = [r for r in requires if 'extra == "book"' in r]
    assert {r.split(">")[0].split("=")[0].strip() for r in book} >= {
        "matplotlib",
        "seaborn",
        "tqdm",
        "pandas",
        "numpy",
    }


@pytest.mark.slow
def test_wheel_in_a_fresh_venv(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    # The wheel and pytest (to run the doctests there), at the pinned versions; --no-compile:
    # byte-compiling torch's ~20k files is most of an install's time.
    _run(
        [
            *pip,
            "install",
            "-q",
            "--no-compile",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
            "pytest",
        ],
        tmp_path,
    )
    names = {d["name"].lower() for d in json.loads(_run([*pip, "list", "--format=json"], tmp_path))}
    assert {"torch", "lstm-zero-lib", "pytest"} <= names
    assert not names & set(BOOK_PACKAGES), "the wheel pulled in a book package"

    # Run from tmp_path: this checkout's lstm_zero_lib must not be importable there.
    script = IMPORT_PROBE + textwrap.dedent(
        """
        from lstm_zero_lib import MaskedLSTM, lengths_to_mask
        torch.manual_seed(0)
        m = MaskedLSTM(3, 4)
        x, lengths = torch.randn(2, 5, 3), [5, 2]
        out, (h_n, c_n) = m(x, lengths_to_mask(lengths))
        assert out.shape == (2, 5, 4) and h_n.shape == (1, 2, 4)
        for b, n in enumerate(lengths):  # each sequence alone through the plain nn.LSTM
            _, (h, _) = m.lstm(x[b : b + 1, :n])
            torch.testing.assert_close(h_n[:, b], h[:, 0])
        print("MaskedLSTM ok")
        """
    )
    first, second = _run([python, "-c", script], tmp_path).splitlines()
    probe = json.loads(first)
    assert Path(probe["file"]).is_relative_to(venv), probe["file"]
    assert probe["version"] == _source_version()
    assert _book_modules(probe["all"]) == [], "not installed, and not imported"
    assert second == "MaskedLSTM ok"

    # The doctests of every core module, with the flags pyproject.toml gives pytest.
    package = Path(probe["file"]).parent
    core = sorted(p for p in package.glob("*.py"))
    assert {p.stem for p in core} >= {"masks", "zeroing", "rnn", "pooling", "ablation", "missing"}
    out = _run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--doctest-modules",
            "-o",
            f"doctest_optionflags={DOCTEST_FLAGS}",
            "--rootdir",
            str(tmp_path),
            *map(str, core),
        ],
        tmp_path,
    )
    assert " passed" in out and "failed" not in out, out
