"""``make lab`` works: a chapter opens in JupyterLab and its first cells run, in a real browser.

The test starts JupyterLab (the ``lab`` extra) headless on a free port of 127.0.0.1 with a
random token, the way ``make lab`` starts it (same executable, the inline matplotlib
backend), on a temporary copy of a chapter (JupyterLab saves what it runs; the committed
notebook must not change). Debian's Chromium, driven by Playwright (``tools/site_browser.py``,
as in ``tests/test_site.py``), opens the notebook, waits for the kernel, runs the first
``N_CODE_CELLS`` code cells with Shift+Enter, and checks that each one finished (an
execution count), that none shows an error or traceback, and that the text the committed
notebook printed appears in the cells' output (``device: ...`` lines excepted: they name
the machine).

Without Chromium or Playwright the test is skipped, except with ``CI`` set, where it fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from site_browser import CHROMIUM_ARGS, IN_CI, INSTALL_HINT, find_chromium

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "02_mask_based_zeroing.ipynb"
N_CODE_CELLS = 3
START_TIMEOUT_S = 120
RUN_TIMEOUT_MS = int(os.environ.get("LAB_TEST_TIMEOUT_MS", 180_000))


# JavaScript (JupyterLab's app object, exposed by --LabApp.expose_app_in_browser, as
# JupyterLab's own UI tests do): is the notebook's kernel connected and idle?
KERNEL_READY = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const session = panel && panel.sessionContext;
    const kernel = session && session.session && session.session.kernel;
    return Boolean(session && session.isReady && kernel
        && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
}"""

# JavaScript: is the notebook's active cell the one at index `arg`?
ACTIVE_CELL_IS = """i => {
    const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')];
    return cells.findIndex(c => c.classList.contains('jp-mod-active')) === i;
}"""


def unavailable(reason: str) -> None:
    """Skip locally; in CI (``$CI`` set) a missing prerequisite fails the run instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    url: str
    token: str
    notebook: str
    log: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pytest.importorskip("jupyterlab", reason="JupyterLab is the `lab` extra: run `make install`")
    home = tmp_path_factory.mktemp("lab")
    root = home / "chapters"
    root.mkdir()
    shutil.copy2(CHAPTER, root / CHAPTER.name)
    # Every cell rendered (no virtual scrolling), so the test sees each cell's prompt.
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    token, port = secrets.token_hex(16), _free_port()
    env = os.environ | {
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # as `make lab`
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # Nothing from the network: no news feed, no update check.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:  # CI runs as root; so does `make lab` there
        command.append("--ServerApp.allow_root=True")
    log = home / "lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()}")
            request = urllib.request.Request(
                f"{url}api/status", headers={"Authorization": f"token {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in {START_TIMEOUT_S} s:\n{log.read_text()}")
            time.sleep(0.5)
        yield Lab(url=url, token=token, notebook=CHAPTER.name, log=log)
    finally:
        # The server and the kernels it started (its own process group).
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:  # the group has already exited
        pass


def _committed_lines(n_cells: int) -> list[str]:
    """What the first ``n_cells`` code cells printed when the chapter was executed."""
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"][:n_cells]
    lines: list[str] = []
    for cell in code:
        for output in cell["outputs"]:
            if output["output_type"] == "stream" and output["name"] == "stdout":
                lines += [ln for ln in "".join(output["text"]).splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith("device:")]


def _presses_needed(n_cells: int) -> int:
    """Shift+Enter presses from the first cell until the ``n_cells``-th code cell has run."""
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    seen = 0
    for i, cell in enumerate(cells):
        seen += cell["cell_type"] == "code"
        if seen == n_cells:
            return i + 1
    raise AssertionError(f"{CHAPTER.name} has fewer than {n_cells} code cells")


def test_chapter_runs_in_jupyterlab(lab: Lab) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(f"Playwright for Python is not installed (the test extra); {INSTALL_HINT}")
    executable = find_chromium()
    if executable is None:
        unavailable(f"no Chromium found: {INSTALL_HINT}")

    expected = _committed_lines(N_CODE_CELLS)
    assert expected, f"the first {N_CODE_CELLS} code cells of {CHAPTER.name} print nothing"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(RUN_TIMEOUT_MS)
            page_errors: list[str] = []
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            page.goto(f"{lab.url}lab/tree/{lab.notebook}?token={lab.token}")
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
            # The kernel is connected and idle (the toolbar may say idle before that, and a
            # cell run before the kernel is attached is silently dropped).
            page.wait_for_function(KERNEL_READY)

            # Select the first cell (its prompt area: a click there does not start editing),
            # then Shift+Enter cell by cell, each press once the previous one has moved on:
            # presses sent faster than the notebook advances can run cells out of order.
            page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".jp-InputPrompt").click()
            page.keyboard.press("Escape")  # command mode: Shift+Enter runs and moves on
            page.wait_for_function(ACTIVE_CELL_IS, arg=0)
            for i in range(_presses_needed(N_CODE_CELLS)):
                page.keyboard.press("Shift+Enter")
                page.wait_for_function(ACTIVE_CELL_IS, arg=i + 1)

            code_cells = page.locator(".jp-NotebookPanel .jp-CodeCell")
            counts = []
            for i in range(N_CODE_CELLS):
                prompt = code_cells.nth(i).locator(".jp-InputArea-prompt")
                page.wait_for_function(
                    "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle()
                )
                counts.append(int(prompt.inner_text().strip("[]: \n")))
            page.wait_for_function(KERNEL_READY)
            assert counts == sorted(counts) and len(set(counts)) == N_CODE_CELLS, counts

            shown = ""
            for i in range(N_CODE_CELLS):
                cell = code_cells.nth(i)
                errors = cell.locator(
                    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
                ).all_inner_texts()
                bad = [e for e in errors if "Traceback" in e or "Error" in e]
                assert not bad, f"code cell {i + 1} of {lab.notebook} failed:\n" + "\n".join(bad)
                shown += cell.locator(".jp-OutputArea").inner_text() + "\n"
            missing = [line for line in expected if line.strip() not in shown]
            assert not missing, f"not in the cells' output: {missing}\nshown:\n{shown}"
            assert not page_errors, page_errors
        except Exception:
            # For a person to look at: what the page showed when the check failed.
            page.screenshot(path=str(lab.log.with_name("failure.png")), full_page=True)
            for i, cell in enumerate(page.locator(".jp-NotebookPanel .jp-Cell").all()[:8]):
                prompt = cell.locator(".jp-InputPrompt").first.inner_text(timeout=5000)
                text = cell.inner_text(timeout=5000)[:300].replace("\n", " | ")
                print(f"cell {i} {cell.get_attribute('class')} {prompt!r}: {text}")
            print(f"screenshot: {lab.log.with_name('failure.png')}; server log: {lab.log}")
            raise
        finally:
            browser.close()
