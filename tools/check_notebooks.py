"""Check that every chapter notebook is committed fully executed and without errors.

The book is built with ``execute_notebooks: "off"``: the site shows exactly the outputs
stored in the notebooks, the same outputs that nbval re-executes and compares in
``make test``. A notebook saved without outputs, half executed, run out of order or
with an error would therefore be published as it is. This gate refuses it.

For every ``*.ipynb`` under the given folders (``.ipynb_checkpoints`` excluded) and
every code cell with source, it checks that

* the cell has an integer ``execution_count`` and an ``outputs`` list,
* the execution counts increase from cell to cell (one top-to-bottom run),
* no output is an error (``output_type == "error"``), except in a cell tagged
  ``raises-exception``: the tag with which nbval and MyST-NB both accept a cell that is
  meant to fail, e.g. to show that an API crashes.

Usage::

    python tools/check_notebooks.py chapters [more folders or notebooks ...]

Exit status 0 when everything passes (also when there is no notebook at all), 1 when a
problem was found (each one is printed, naming the notebook and the cell), 2 on a bad
argument or an unreadable notebook.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HINT = "restart the kernel, run all cells top to bottom, and save the notebook"


@dataclass(frozen=True)
class Problem:
    """One problem found in one cell of one notebook."""

    notebook: Path
    cell: int  # 1-based position among all cells of the notebook; 0: the whole notebook
    message: str

    def __str__(self) -> str:
        where = f"cell {self.cell}: " if self.cell else ""
        return f"{self.notebook}: {where}{self.message}"


def find_notebooks(paths: Sequence[Path]) -> list[Path]:
    """Return the notebooks named by ``paths`` (files, or folders searched recursively)."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(nb for nb in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in nb.parts)
        elif path.suffix == ".ipynb" and path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"{path}: not a folder or a .ipynb file")
    return sorted(found)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def check_notebook(path: Path, notebook: dict[str, Any]) -> Iterator[Problem]:
    """Yield the problems of one parsed notebook (``path`` is used in the messages)."""
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        yield Problem(path, 0, "no 'cells' list: not an nbformat 4 notebook")
        return
    last_count = 0
    for index, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code" or not _source(cell).strip():
            continue
        count = cell.get("execution_count")
        outputs = cell.get("outputs")
        if not isinstance(count, int):
            yield Problem(path, index, f"code cell was never executed (no execution_count); {HINT}")
        elif count <= last_count:
            yield Problem(
                path,
                index,
                f"execution_count {count} does not follow {last_count} of an earlier cell: "
                f"cells were run out of order; {HINT}",
            )
        if isinstance(count, int):
            last_count = max(last_count, count)
        if not isinstance(outputs, list):
            yield Problem(path, index, f"code cell has no 'outputs' list; {HINT}")
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if "raises-exception" in tags:
            continue
        for output in outputs:
            if isinstance(output, dict) and output.get("output_type") == "error":
                name = output.get("ename", "error")
                value = output.get("evalue", "")
                yield Problem(path, index, f"error output {name}: {value}".rstrip(": "))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gate on the paths in ``argv``; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks or folders of notebooks")
    args = parser.parse_args(argv)

    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as err:
        print(f"check_notebooks: {err}", file=sys.stderr)
        return 2
    if not notebooks:
        print("check_notebooks: no notebooks found; nothing to check")
        return 0

    problems: list[Problem] = []
    for path in notebooks:
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            print(f"check_notebooks: {path}: cannot read notebook: {err}", file=sys.stderr)
            return 2
        problems.extend(check_notebook(path, notebook))

    for problem in problems:
        print(f"check_notebooks: {problem}", file=sys.stderr)
    if problems:
        print(
            f"check_notebooks: {len(problems)} problem(s) in {len(notebooks)} notebook(s); "
            "the book shows committed outputs as they are, so they must be complete",
            file=sys.stderr,
        )
        return 1
    print(f"check_notebooks: {len(notebooks)} notebook(s) fully executed, no errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
