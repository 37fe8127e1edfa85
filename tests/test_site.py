"""The built website, checked the way a reader uses it: in a real browser.

Run after ``make book`` (``make site`` does both). The tests read ``_build/html`` (or
``$SITE_HTML_DIR``), serve it with ``http.server`` on a random free port of 127.0.0.1 and
drive Debian's Chromium with Playwright. Every page listed in ``_toc.yml`` is checked, so a
chapter added to the table of contents is tested without touching this file:

* it loads without console errors, page errors or failed requests, and it requests nothing
  from another host (the site must work offline: no CDN, no web fonts, no trackers);
* every ``<img>`` has loaded and has real alt text (not empty, not the file name); every
  ``<figure>`` has a numbered, non-empty caption, and every notebook output image sits in
  such a figure;
* every formula on a page whose source has math is typeset by MathJax, without errors;
* axe-core reports no ``critical`` or ``serious`` accessibility violation;
* a full-page screenshot lands in ``_build/screenshots/`` for a person to look at.

Also: the sidebar navigates to every page of the table of contents, the search page finds
``pack_padded_sequence``, each notebook page offers its ``.ipynb``, and every internal
``href``/``src`` of every built page, anchors included, resolves (a fast static crawl with
the standard library's HTML parser, no browser).

The browser is the system Chromium (``apt-get install chromium`` on Debian), never a
download by ``playwright install``. Without it (or without Playwright) the browser tests are
skipped with a message saying how to install it, except when the environment variable
``CI`` is set: there a missing browser or a missing build is a failure. A summary of every
page visit, axe results included, is written to ``_build/site_report.json``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml
from site_browser import CHROMIUM_ARGS, IN_CI, INSTALL_HINT, find_chromium, serve_directory

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SITE_HTML_DIR", ROOT / "_build" / "html")).resolve()
SCREENSHOT_DIR = HTML_DIR.parent / "screenshots"
REPORT_FILE = HTML_DIR.parent / "site_report.json"
# $SITE_TOC: test against a build made with `jupyter-book build --toc OTHER_TOC`.
TOC_FILE = Path(os.environ.get("SITE_TOC", ROOT / "_toc.yml")).resolve()
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000
BLOCKING_IMPACTS = ("critical", "serious")
SEARCH_TERM = "pack_padded_sequence"
SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")


# ------------------------------------------------------------------ table of contents
def toc_docnames(toc_file: Path = TOC_FILE) -> list[str]:
    """Every document of ``_toc.yml`` (root first, then in reading order), without suffix."""
    data = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    names: list[str] = []

    def add(entry: str) -> None:
        for suffix in SOURCE_SUFFIXES:
            if entry.endswith(suffix):
                entry = entry[: -len(suffix)]
        if entry not in names:
            names.append(entry)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "file" in node:
                add(str(node["file"]))
            for key in ("parts", "chapters", "sections", "subtrees", "entries"):
                walk(node.get(key))

    add(str(data["root"]))
    walk(data)
    return names


def source_file(doc: str) -> Path | None:
    for suffix in SOURCE_SUFFIXES:
        path = ROOT / f"{doc}{suffix}"
        if path.exists():
            return path
    return None


@cache
def source_markdown(doc: str) -> str:
    """The prose of a page: a Markdown file, or the Markdown cells of a notebook."""
    path = source_file(doc)
    if path is None:
        return ""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text).get("cells", [])
        text = "\n\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c.get("cell_type") == "markdown"
        )
    return text


_FENCE = re.compile(r"^(`{3,}|~{3,})(.*?)$.*?^\1\s*$", re.M | re.S)
_MATH = re.compile(
    r"\$\$|(?<![\\$])\$[^\s$][^$\n]*?(?<![\\\s])\$|\{math\}|\\begin\{(?:align|equation)"
)


def has_math(doc: str) -> bool:
    """True when the page's prose has math: ``$...$``, ``$$...$$`` or a math directive."""
    text = source_markdown(doc)
    if re.search(r"^(`{3,}|~{3,})\{math\}", text, re.M):
        return True
    text = _FENCE.sub("", text)  # code blocks (their `$` is a shell prompt, not math)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return bool(_MATH.search(text))


def source_title(doc: str) -> str | None:
    """The first level-1 heading of the page's prose, without Markdown markup."""
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", _FENCE.sub("", source_markdown(doc)), re.M)
    if match is None:
        return None
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # [text](url) -> text
    return normalise(re.sub(r"[`*]", "", title))


_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                             "\u2013": "-", "\u2014": "-", "\u2026": "..."})  # fmt: skip


def normalise(text: str) -> str:
    """Collapse white space and undo Sphinx's smart quotes and dashes."""
    text = re.sub(r"-{2,3}", "-", text.translate(_TYPOGRAPHY))
    return re.sub(r"\s+", " ", text).strip()


TOC_DOCS = toc_docnames()
NOTEBOOK_DOCS = [d for d in TOC_DOCS if (s := source_file(d)) is not None and s.suffix == ".ipynb"]
MATH_DOCS = [d for d in TOC_DOCS if has_math(d)]


def html_file(doc: str) -> Path:
    return HTML_DIR / f"{doc}.html"


def unavailable(reason: str) -> None:
    """Skip locally; in CI (``$CI`` set) a missing prerequisite fails the run instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def built_site() -> Path:
    if not (HTML_DIR / "index.html").is_file():
        unavailable(f"no built site in {HTML_DIR}: run `make book` first")
    missing = [d for d in TOC_DOCS if not html_file(d).is_file()]
    assert not missing, f"pages of _toc.yml missing from {HTML_DIR}: {missing}"
    return HTML_DIR


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site served on 127.0.0.1, on a free port, for the whole session."""
    with serve_directory(built_site) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(
            "Playwright for Python is not installed: `make install` installs it with the "
            f"[test] extra; then {INSTALL_HINT}"
        )
    executable = find_chromium()
    if executable is None:
        unavailable(f"no Chromium found: {INSTALL_HINT}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True, timeout=TIMEOUT_MS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def context(browser: Any, site_url: str) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=site_url, reduced_motion="reduce")
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@dataclass
class PageReport:
    """Everything one visit of a page found; the tests assert on it."""

    doc: str
    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    uncaptioned_outputs: list[str] = field(default_factory=list)
    math: dict[str, Any] = field(default_factory=dict)
    axe_violations: list[dict[str, Any]] = field(default_factory=list)
    screenshot: str = ""
    seconds: float = 0.0


def watch(page: Any, origin: str, report: PageReport) -> Callable[[], None]:
    """Record console errors, failed requests, and block + record requests to other hosts.

    Returns ``stop()``, which ends the recording (requests to other hosts stay blocked):
    axe-core, injected afterwards, makes requests of its own that are not the site's (it
    resolves a stylesheet's relative ``@import`` against the page, e.g. ``/basic.css``).
    """
    recording = True

    def stop() -> None:
        nonlocal recording
        recording = False

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(origin):
            route.continue_()
        else:
            if recording:
                report.foreign_requests.append(url)
            route.abort("blockedbyclient")

    def on_console(msg: Any) -> None:
        if recording and msg.type == "error":
            loc = msg.location or {}
            report.console_errors.append(
                f"{msg.text} (at {loc.get('url', '?')}:{loc.get('lineNumber', '?')})"
            )

    def on_failed(request: Any) -> None:
        if recording and request.url not in report.foreign_requests:
            report.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

    def on_response(response: Any) -> None:
        if recording and response.status >= 400:
            report.failed_requests.append(f"HTTP {response.status} {response.url}")

    page.route("**/*", route)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: recording and report.console_errors.append(f"uncaught: {exc}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return stop


def settle(page: Any) -> None:
    """Wait until MathJax has typeset, web fonts are in and every image is decoded."""
    page.evaluate(
        """async () => {
            const mj = window.MathJax;
            if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
            await document.fonts.ready;
            await Promise.all(Array.from(document.images, (img) =>
                img.complete ? null : new Promise((ok) => {
                    img.addEventListener('load', ok); img.addEventListener('error', ok); })));
        }"""
    )


COLLECT_JS = """() => {
    const text = (el) => (el ? el.textContent.replace(/\\s+/g, ' ').trim() : '');
    const images = Array.from(document.images, (img) => ({
        src: img.getAttribute('src') || '', alt: img.getAttribute('alt'),
        naturalWidth: img.naturalWidth, visible: img.getClientRects().length > 0 }));
    const figures = Array.from(document.querySelectorAll('figure'), (fig) => {
        const cap = fig.querySelector('figcaption');
        return { id: fig.id || '', caption: text(cap),
                 number: text(cap && cap.querySelector('.caption-number')) }; });
    const uncaptioned = Array.from(
        document.querySelectorAll('.cell_output img, .output img'), (img) => img)
        .filter((img) => { const fig = img.closest('figure');
                           return !fig || !text(fig.querySelector('figcaption')); })
        .map((img) => img.getAttribute('src'));
    const mathEls = Array.from(document.querySelectorAll('.math'));
    const math = {
        elements: mathEls.length,
        unrendered: mathEls.filter((el) => !el.querySelector('mjx-container'))
                           .map((el) => text(el).slice(0, 80)),
        containers: document.querySelectorAll('mjx-container').length,
        errors: Array.from(document.querySelectorAll('mjx-merror'),
                           (el) => el.getAttribute('data-mjx-error') || text(el)),
        mathjaxVersion: (window.MathJax && window.MathJax.version) || null };
    return { images, figures, uncaptioned, math };
}"""


@pytest.fixture(scope="session")
def visit(context: Any, site_url: str) -> Iterator[Any]:
    """``visit(doc) -> PageReport``: load a toc page once, check everything, screenshot it."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    reports: dict[str, PageReport] = {}
    failures: dict[str, BaseException] = {}

    def _visit(doc: str) -> PageReport:
        if doc in failures:  # one timeout, not one per test of the page
            raise failures[doc]
        if doc not in reports:
            try:
                reports[doc] = _load(doc)
            except Exception as exc:
                failures[doc] = exc
                raise
        return reports[doc]

    def _load(doc: str) -> PageReport:
        start = time.perf_counter()
        report = PageReport(doc=doc, url=f"{site_url}{doc}.html")
        page = context.new_page()
        try:
            stop_recording = watch(page, site_url, report)
            page.goto(report.url, wait_until="load")
            settle(page)
            report.title = page.title()
            found = page.evaluate(COLLECT_JS)
            report.images = found["images"]
            report.figures = found["figures"]
            report.uncaptioned_outputs = found["uncaptioned"]
            report.math = found["math"]
            shot = SCREENSHOT_DIR / f"{doc}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True, animations="disabled")
            report.screenshot = str(shot)
            stop_recording()
            results = axe.run(page).response
            report.axe_violations = [
                {
                    "id": v["id"],
                    "impact": v["impact"],
                    "help": v["help"],
                    "targets": [" ".join(map(str, n["target"])) for n in v["nodes"]],
                }
                for v in results["violations"]
            ]
        finally:
            page.close()
        report.seconds = round(time.perf_counter() - start, 2)
        return report

    yield _visit
    if reports:
        REPORT_FILE.write_text(
            json.dumps([asdict(r) for r in reports.values()], indent=2) + "\n", encoding="utf-8"
        )


def bullet(items: list[str]) -> str:
    return "".join(f"\n  - {item}" for item in items)


# ----------------------------------------------------------------- per-page checks
def test_toc_lists_pages() -> None:
    assert TOC_DOCS, "_toc.yml lists no page"
    missing = [d for d in TOC_DOCS if source_file(d) is None]
    assert not missing, f"_toc.yml lists pages without a source file: {missing}"


@pytest.mark.parametrize("doc", TOC_DOCS)
def test_page_loads_cleanly(visit: Any, doc: str) -> None:
    report = visit(doc)
    problems = [f"console error: {e}" for e in report.console_errors]
    problems += [f"failed request: {r}" for r in report.failed_requests]
    problems += [f"request to another host (blocked): {u}" for u in report.foreign_requests]
    assert not problems, f"{doc}.html:{bullet(problems)}"


def _bad_alt(image: dict[str, Any]) -> bool:
    alt = (image["alt"] or "").strip()
    src = image["src"]
    return (
        not alt
        or alt == src
        or alt == src.rsplit("/", 1)[-1]
        or bool(re.fullmatch(r"\S+\.(png|jpe?g|gif|svg|webp)", alt, re.I))
    )


@pytest.mark.parametrize("doc", TOC_DOCS)
def test_images_load_and_have_alt_text(visit: Any, doc: str) -> None:
    report = visit(doc)
    problems = [
        f"{i['src']}: not loaded (naturalWidth 0)" for i in report.images if i["naturalWidth"] == 0
    ]
    problems += [
        f"{i['src']}: alt text {i['alt']!r} is missing or only a file name"
        for i in report.images
        if _bad_alt(i)
    ]
    assert not problems, f"{doc}.html:{bullet(problems)}"


@pytest.mark.parametrize("doc", TOC_DOCS)
def test_figures_are_captioned_and_numbered(visit: Any, doc: str) -> None:
    report = visit(doc)
    problems = [f"figure #{f['id'] or '?'}: no caption" for f in report.figures if not f["caption"]]
    problems += [
        f"figure #{f['id'] or '?'} ({f['caption'][:40]!r}): no figure number (Sphinx "
        "numbers a figure only when it has a name: `mystnb: figure: name: ...`)"
        for f in report.figures
        if f["caption"] and not f["number"]
    ]
    problems += [
        f"notebook output image {src} is not in a captioned figure (give its cell "
        "`mystnb: figure: caption` and `image: alt` metadata, or glue it into a {glue:figure})"
        for src in report.uncaptioned_outputs
    ]
    assert not problems, f"{doc}.html:{bullet(problems)}"


def test_some_page_has_math() -> None:
    assert MATH_DOCS, "no page of _toc.yml has math in its source; the intro should"


@pytest.mark.parametrize("doc", MATH_DOCS)
def test_math_is_rendered(visit: Any, doc: str) -> None:
    math = visit(doc).math
    assert math["elements"] > 0, f"{doc}: the source has math but the page has no .math element"
    assert math["containers"] > 0 and not math["unrendered"], (
        f"{doc}.html: MathJax {math['mathjaxVersion'] or 'did not load'}; "
        f"{len(math['unrendered'])} of {math['elements']} formulas not typeset, e.g."
        f"{bullet(math['unrendered'][:5])}"
    )
    assert not math["errors"], f"{doc}.html: MathJax errors:{bullet(math['errors'])}"


@pytest.mark.parametrize("doc", TOC_DOCS)
def test_accessibility(visit: Any, doc: str) -> None:
    blocking = [v for v in visit(doc).axe_violations if v["impact"] in BLOCKING_IMPACTS]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} -- targets: {', '.join(v['targets'][:10])}"
        + (f" (+{len(v['targets']) - 10} more)" if len(v["targets"]) > 10 else "")
        for v in blocking
    ]
    assert not lines, f"axe-core on {doc}.html:{bullet(lines)}"


@pytest.mark.parametrize("doc", TOC_DOCS)
def test_screenshot_written(visit: Any, doc: str) -> None:
    shot = Path(visit(doc).screenshot)
    assert shot.is_file() and shot.stat().st_size > 1000, f"no screenshot at {shot}"
    with shot.open("rb") as fh:
        header = fh.read(24)
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is not a PNG"
    assert width == VIEWPORT["width"], (
        f"{doc}.html is {width} px wide in a {VIEWPORT['width']} px window: the whole page "
        "scrolls sideways (a wide table, figure or code line outside a scroll box)"
    )
    assert height >= VIEWPORT["height"] // 2, f"{shot}: only {height} px high"


# ------------------------------------------------------------------- site-wide checks
def test_sidebar_navigates_to_every_page(context: Any, site_url: str) -> None:
    """Click through the sidebar, page after page, to every page of the toc and back home."""
    page = context.new_page()
    try:
        page.goto(f"{site_url}{TOC_DOCS[0]}.html", wait_until="domcontentloaded")
        texts = page.locator("nav.bd-docs-nav a.reference.internal").all_inner_texts()
        doubled = [t for t in map(normalise, texts) if re.match(r"\d+(\.\d+)*\.?\s+\d", t)]
        assert not doubled, (
            "sidebar entries numbered twice (a numbered toc and a number in the heading; "
            f"keep one):{bullet(doubled)}"
        )
        visited = []
        for doc in [*TOC_DOCS[1:], TOC_DOCS[0]]:
            target = f"{site_url}{doc}.html"
            links = page.locator("nav.bd-docs-nav a.reference.internal")
            hrefs = links.evaluate_all("(as) => as.map((a) => a.href)")
            assert target in hrefs, (
                f"the sidebar of {page.url} has no link to {doc}.html; it links to:{bullet(hrefs)}"
            )
            link = links.nth(hrefs.index(target))
            if not link.is_visible():  # a collapsed section: open it as a reader would
                page.evaluate(
                    "() => document.querySelectorAll('nav.bd-docs-nav details')"
                    ".forEach((d) => { d.open = true; })"
                )
            with page.expect_navigation(wait_until="domcontentloaded"):
                link.click()
            assert page.url.split("#")[0] == target, f"clicking {doc} led to {page.url}"
            expected = source_title(doc)
            if expected is not None:
                heading = normalise(page.locator("main h1").first.inner_text()).replace("#", "")
                assert expected in heading and expected in page.title(), (
                    f"{doc}.html: heading {heading!r} / title {page.title()!r}, "
                    f"expected {expected!r}"
                )
            visited.append(doc)
        assert visited == [*TOC_DOCS[1:], TOC_DOCS[0]]
    finally:
        page.close()


def test_search_finds_pack_padded_sequence(context: Any, site_url: str) -> None:
    page = context.new_page()
    report = PageReport(doc="search", url=f"{site_url}search.html?q={SEARCH_TERM}")
    try:
        watch(page, site_url, report)
        page.goto(report.url)
        page.wait_for_function(
            "() => /Search finished|did not match/.test("
            "(document.querySelector('.search-summary') || {}).textContent || '')"
        )
        summary = page.locator(".search-summary").inner_text()
        results = page.locator("#search-results ul.search > li").all_inner_texts()
    finally:
        page.close()
    assert results, f"searching {SEARCH_TERM!r} found nothing: {summary!r}"
    problems = report.console_errors + report.failed_requests + report.foreign_requests
    assert not problems, f"search page:{bullet(problems)}"


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS)
def test_notebook_page_offers_the_notebook(built_site: Path, doc: str) -> None:
    hrefs = parse_page(html_file(doc)).downloads
    assert any(h.endswith(".ipynb") for h in hrefs), f"{doc}.html: no .ipynb download: {hrefs}"
    for href in hrefs:
        assert (html_file(doc).parent / unquote(href)).resolve().is_file(), href


# ------------------------------------------------------------------ static crawl
LINK_ATTRS = {"a": "href", "area": "href", "link": "href", "img": "src", "script": "src",
              "iframe": "src", "source": "src"}  # fmt: skip
SKIPPED_DIRS = ("_static", "_sources", "_images")  # assets (theme templates), not pages


class _LinkParser(HTMLParser):
    """One pass over a page: its outgoing links and the ids (anchors) it defines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.downloads: list[str] = []  # the theme's "download this page" links

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = LINK_ATTRS.get(tag)
        attributes = dict(attrs)
        if tag == "a" and "btn-download-source-button" in (attributes.get("class") or ""):
            self.downloads.append(attributes.get("href") or "")
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name == wanted:
                self.links.append(value.strip())

    handle_startendtag = handle_starttag


@cache
def parse_page(path: Path) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def site_pages(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.html") if p.relative_to(root).parts[0] not in SKIPPED_DIRS
    )


def broken_links(root: Path) -> tuple[int, list[str]]:
    """Check every internal href/src of every built page; returns (links checked, broken)."""
    checked, broken = 0, []
    base = "http://site.invalid/"
    for page in site_pages(root):
        rel = page.relative_to(root).as_posix()
        for raw in parse_page(page).links:
            if not raw or raw == "#":
                continue
            url = urlsplit(urljoin(base + rel, raw))
            if f"{url.scheme}://{url.netloc}/" != base:
                continue  # another host, mailto:, javascript:, data: ...
            checked += 1
            path = unquote(url.path).lstrip("/")
            target = (root / path).resolve()
            if path == "" or path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root) or not target.is_file():
                broken.append(f"{rel}: {raw} -> missing file {path or 'index.html'}")
                continue
            fragment = unquote(url.fragment)
            if fragment and target.suffix == ".html" and fragment not in parse_page(target).ids:
                broken.append(f"{rel}: {raw} -> no id {fragment!r} in {path}")
    return checked, broken


def test_internal_links_resolve(built_site: Path) -> None:
    checked, broken = broken_links(built_site)
    assert checked > 0
    assert not broken, f"{len(broken)} broken internal links (of {checked}):{bullet(broken)}"
