"""Chromium for the checks that drive a real browser: found, launched and fed the same way.

Used by ``tools/site_screenshot.py`` (run as a script, so this folder is on ``sys.path``)
and by ``tests/test_site.py`` and ``tests/test_lab.py`` (pyproject.toml puts ``tools/`` on
pytest's ``pythonpath``). The browser is the system Chromium (Debian's ``chromium``),
never a download by ``playwright install``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_CANDIDATES",
    "INSTALL_HINT",
    "IN_CI",
    "find_chromium",
    "serve_directory",
]

#: With CI set (``CI=true``, as .ci/run runs), a missing browser fails the tests.
IN_CI = os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# The background-networking switches keep the browser from calling home (on a closed
# network those connections are refused and show up as errors).
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container: the setuid/user-namespace sandbox is unavailable
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

INSTALL_HINT = (
    "install Debian's Chromium (as root: `apt-get update && apt-get install -y chromium`) "
    "or point $CHROMIUM_PATH at a Chromium binary; do not run `playwright install` "
    "(its browser download does not work here)"
)


def find_chromium() -> str | None:
    """``$CHROMIUM_PATH`` if set (None if that file is missing), else the first on PATH."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        if found := shutil.which(name):
            return found
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free port of 127.0.0.1; yields the origin ``http://.../``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
