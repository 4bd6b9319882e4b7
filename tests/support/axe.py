"""axe-core accessibility scans of a page in the browser tests (the vendored axe in tests/data/axe/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parents[1] / "data" / "axe" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
"""The axe rule tags of WCAG 2.1 A and AA."""


def scan(page: Any, axe: str) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page, one line each.

    axe is evaluated through the DevTools protocol (``page.evaluate``), which the page's CSP (``script-src 'self'``)
    does not govern; a ``<script>`` tag (``add_script_tag``) would be refused by that policy, as it should be."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe)
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    assert len(result["passes"]) >= 10, f"axe checked next to nothing on {page.url}"
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']} - {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
