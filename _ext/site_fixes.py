"""Small fixes to the rendered HTML that the site tests (tests/test_site.py) found.

Loaded through ``sphinx.local_extensions`` in ``_config.yml``. Each fix names the cause,
so it can be dropped when the cause is fixed upstream.

* Duplicate inline scripts. An extension that calls ``app.add_js_file(None, body=...)``
  after the HTML builder is initialised (sphinx-thebe does, on ``env-before-read-docs``)
  gets its script written twice by Sphinx 7.4: the builder keeps ``filename=None`` while
  the copy re-added from the registry has ``filename=""``, so they do not compare equal.
  sphinx-thebe's script declares ``const THEBE_JS_URL``, and the second declaration is a
  ``SyntaxError`` in the console of every page. We keep the first of equal scripts.
* Bibliography entries. docutils writes each citation as ``<div role="doc-biblioentry">``
  inside ``<div role="list">``. DPUB-ARIA 1.1 deprecates ``doc-biblioentry`` (use
  ``listitem``), and axe-core reports the list as having no list items
  (``aria-required-children``, critical). We write ``role="listitem"``.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

_BIBLIOENTRY = 'role="doc-biblioentry"'


def _script_key(script: Any) -> tuple[Any, ...]:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {})
    return (str(filename), getattr(script, "priority", None), *sorted(attributes.items()))


def fix_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    scripts = context.get("script_files")
    if scripts:
        seen: set[tuple[Any, ...]] = set()
        unique = []
        for script in scripts:
            key = _script_key(script)
            if key not in seen:
                seen.add(key)
                unique.append(script)
        scripts[:] = unique  # in place: the builder restores its own list after each page
    body = context.get("body")
    if isinstance(body, str) and _BIBLIOENTRY in body:
        context["body"] = body.replace(_BIBLIOENTRY, 'role="listitem"')


def setup(app: Sphinx) -> dict[str, Any]:
    # Late (priority 900): after the extensions that add per-page scripts (MathJax, myst-nb).
    app.connect("html-page-context", fix_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
