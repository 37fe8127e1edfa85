"""Which code a saved benchmark result measured.

``make bench`` records a fingerprint of every file whose code its timings run (see
:func:`measured_code`); ``tests/test_benchmark.py`` recomputes them on the checkout, so a
committed result that no longer describes the code fails the tests. Docstrings, comments
and blank lines are left out of a fingerprint: they change what the code says, not what
runs. No git is needed, so a result measured on a copy of the tree (a GPU machine) is
checked the same way.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tokenize
from pathlib import Path

__all__ = ["code_fingerprint", "measured_code", "code_version"]


def _tokens(source: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of each token that carries code, in order.

    Comments and line breaks inside brackets are dropped; indentation, newlines and dedents
    keep their kind only (not their whitespace); a string literal keeps its source text.
    Python 3.12 splits an f-string into several tokens: they are joined back into its
    source text, the one token 3.11 gives, so the list is the same on both.
    """
    lines = source.splitlines(keepends=True)

    def text(start: tuple[int, int], end: tuple[int, int]) -> str:
        if start[0] == end[0]:
            return lines[start[0] - 1][start[1] : end[1]]
        middle = "".join(lines[start[0] : end[0] - 1])
        return lines[start[0] - 1][start[1] :] + middle + lines[end[0] - 1][: end[1]]

    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    out: list[tuple[str, str]] = []
    depth, opened = 0, (0, 0)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == fstring_start:
            depth += 1
            opened = token.start if depth == 1 else opened
            continue
        if depth:
            if token.type == fstring_end:
                depth -= 1
                if not depth:
                    out.append(("STRING", text(opened, token.end)))
            continue
        if token.type in (tokenize.COMMENT, tokenize.NL):
            continue
        kind = tokenize.tok_name[token.type]
        whitespace = token.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE)
        out.append((kind, "" if whitespace else token.string))
    return out


def _is_fstring(literal: str) -> bool:
    prefix = literal[: min(i for i in (literal.find("'"), literal.find('"')) if i >= 0)]
    return "f" in prefix.lower()


def code_fingerprint(source: str) -> str:
    """SHA-256 of the tokens of Python ``source`` without comments and docstrings.

    A statement that is a bare string literal (a docstring, or any other no-op string; not
    an f-string, whose expressions run) is left out, as are comments and formatting
    (whitespace, line breaks inside brackets): what is hashed is what runs.

    Examples
    --------
    >>> a = code_fingerprint('def f(a, b):\\n    "Doc."\\n    return g(a,\\n        b)  # one\\n')
    >>> a == code_fingerprint("def f(a,b):\\n\\n    return g(a, b)\\n")
    True
    >>> a == code_fingerprint("def f(a, b):\\n    return g(b, a)\\n")
    False
    """
    tokens = _tokens(source)
    kept: list[tuple[str, str]] = []
    dropped = False
    for i, (kind, text) in enumerate(tokens):
        if dropped and kind == "NEWLINE":
            dropped = False
            continue  # the dropped string statement's own end
        after = tokens[i + 1][0] if i + 1 < len(tokens) else "ENDMARKER"
        starts = not kept or kept[-1][0] in ("NEWLINE", "INDENT", "DEDENT")
        dropped = (
            kind == "STRING"
            and starts
            and after in ("NEWLINE", "ENDMARKER")
            and not _is_fstring(text)  # its {expressions} run
        )
        if not dropped:
            kept.append((kind, text))
    return hashlib.sha256(repr(kept).encode()).hexdigest()


def _measured_paths(root: Path) -> list[Path]:
    return sorted(
        [
            *(root / "lstm_zero_lib").glob("*.py"),
            root / "lstm_zero_lib" / "book" / "benchmark.py",
            *(root / "benchmarks").glob("*.py"),
        ]
    )


def measured_code(root: Path) -> dict[str, str]:
    """Fingerprints of the files a bench run measures, by path relative to ``root``.

    The code its timings import: the library's core package (``lstm_zero_lib/*.py``; its
    ``__init__`` imports every core module), the harness (``lstm_zero_lib/book/benchmark.py``)
    and the benchmark scripts (``benchmarks/*.py``). The rest of the book layer (plots,
    summaries, datasets) runs after the timings or not at all.

    Examples
    --------
    >>> root = Path(__file__).resolve().parents[2]
    >>> code = measured_code(root)
    >>> "lstm_zero_lib/rnn.py" in code, len(code["lstm_zero_lib/rnn.py"])
    (True, 64)
    """
    return {
        path.relative_to(root).as_posix(): code_fingerprint(path.read_text(encoding="utf-8"))
        for path in _measured_paths(root)
    }


def code_version(root: Path) -> str:
    """The git commit checked out at ``root``, ``+dirty`` if a measured file has changes.

    Without git (a copy of the tree), ``$BENCH_COMMIT`` names the commit the copy was made
    from, else ``"unknown"``; the fingerprints of :func:`measured_code` are what the tests
    check either way.
    """
    git = ["git", "-C", str(root)]
    paths = [str(path.relative_to(root)) for path in _measured_paths(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--", *paths], capture_output=True, text=True
        )
    except OSError:  # no git
        return os.environ.get("BENCH_COMMIT", "unknown")
    if commit.returncode != 0:
        return os.environ.get("BENCH_COMMIT", "unknown")
    return commit.stdout.strip() + ("+dirty" if changes.stdout.strip() else "")
