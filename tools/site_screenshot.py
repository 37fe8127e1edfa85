"""Take the README's screenshot of the rendered book (``docs/site.png``).

Serves the built site (``make book`` first) on 127.0.0.1, opens one page in Debian's
Chromium through Playwright (the same set-up as ``tests/test_site.py``) and saves the
first screen of it as a palette PNG, small enough to commit (the README asks < 300 KB).

Usage::

    .venv/bin/python tools/site_screenshot.py [--page chapters/intro] [--out docs/site.png]

Exit status 0 on success, 1 when the PNG is over ``--max-kb``, 2 when the site or the
browser is missing.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from site_browser import CHROMIUM_ARGS, INSTALL_HINT, find_chromium, serve_directory

ROOT = Path(__file__).resolve().parents[1]


def shoot(html: Path, page_name: str, width: int, height: int) -> bytes:
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        sys.exit(f"no Chromium: {INSTALL_HINT}")
    with serve_directory(html) as origin, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.route(
            "**/*",
            lambda r: r.continue_() if r.request.url.startswith(origin) else r.abort(),
        )
        page.goto(f"{origin}{page_name}.html", wait_until="load")
        page.evaluate(
            """async () => {
                const mj = window.MathJax;
                if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
                await document.fonts.ready;
            }"""
        )
        png = page.screenshot(animations="disabled")
        browser.close()
    return png


def compress(png: bytes, colors: int) -> bytes:
    """A palette PNG: a screenshot of text and flat colours loses nothing visible."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    quantized = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=0)
    out = io.BytesIO()
    quantized.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--page", default="chapters/intro", help="docname, without .html")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "site.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--colors", type=int, default=128)
    parser.add_argument("--max-kb", type=int, default=300)
    args = parser.parse_args(argv)

    if not (args.html / f"{args.page}.html").is_file():
        print(f"{args.html / args.page}.html not found: run `make book` first", file=sys.stderr)
        return 2
    data = compress(shoot(args.html, args.page, args.width, args.height), args.colors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    kb = len(data) / 1024
    print(f"wrote {args.out} ({args.width}x{args.height}, {kb:.0f} KB)")
    if kb > args.max_kb:
        print(f"{args.out} is over {args.max_kb} KB: lower --colors or the size", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
