"""Which code a saved benchmark result measured.

``make bench`` records a fingerprint of every file whose code its timings run (see
:func:`measured_code`); ``tests/test_benchmark.py`` recomputes them on the checkout, so a
committed result that no longer describes the code fails the tests. Docstrings, comments
and blank lines are left out of a fingerprint: they change what the code says, not what
runs. No git is needed, so a result measured on a copy of the tree (a GPU machine) is
checked the same way.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import subprocess
import tokenize
from pathlib import Path

__all__ = ["code_fingerprint", "measured_code", "code_version"]


def code_fingerprint(source: str) -> str:
    """SHA-256 of Python ``source`` without its docstrings, comments and blank lines.

    Built from line numbers and tokens, which read the same on every Python version (a
    dump of the syntax tree does not).

    Examples
    --------
    >>> a = code_fingerprint('def f():\\n    "Doc."\\n    return 1  # one\\n')
    >>> a == code_fingerprint("def f():\\n\\n    return 1\\n")
    True
    >>> a == code_fingerprint("def f():\\n    return 2\\n")
    False
    """
    dropped: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            end = body[0].end_lineno or body[0].lineno
            dropped.update(range(body[0].lineno, end + 1))
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col]
    kept = [line.rstrip() for n, line in enumerate(lines, 1) if n not in dropped and line.strip()]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def measured_code(root: Path) -> dict[str, str]:
    """Fingerprints of the files a bench run measures, by path relative to ``root``.

    The code its timings run: the library's core (``lstm_zero_lib/*.py``), the harness
    (``lstm_zero_lib/book/benchmark.py``) and the benchmark scripts (``benchmarks/*.py``).
    The rest of the book layer (plots, summaries, datasets) runs after the timings or not
    at all.

    Examples
    --------
    >>> root = Path(__file__).resolve().parents[2]
    >>> code = measured_code(root)
    >>> "lstm_zero_lib/rnn.py" in code, len(code["lstm_zero_lib/rnn.py"])
    (True, 64)
    """
    paths = [
        *(root / "lstm_zero_lib").glob("*.py"),
        root / "lstm_zero_lib" / "book" / "benchmark.py",
        *(root / "benchmarks").glob("*.py"),
    ]
    return {
        path.relative_to(root).as_posix(): code_fingerprint(path.read_text(encoding="utf-8"))
        for path in sorted(paths)
    }


def code_version(root: Path) -> str:
    """The git commit checked out at ``root``, ``+dirty`` if the measured code has changes.

    Without git (a copy of the tree), ``$BENCH_COMMIT`` names the commit the copy was made
    from, else ``"unknown"``; the fingerprints of :func:`measured_code` are what the tests
    check either way.
    """
    git = ["git", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--", "lstm_zero_lib", "benchmarks/*.py"],
            capture_output=True,
            text=True,
        )
    except OSError:  # no git
        return os.environ.get("BENCH_COMMIT", "unknown")
    if commit.returncode != 0:
        return os.environ.get("BENCH_COMMIT", "unknown")
    return commit.stdout.strip() + ("+dirty" if changes.stdout.strip() else "")
