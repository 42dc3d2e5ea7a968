"""Render the web UI's app icons (PNG, for phones that install the UI as an app) from ``static/favicon.svg``.

Run: ``.venv/bin/python tools/make_icons.py`` (needs Playwright and Debian's chromium, as the browser tests do).
The bell is drawn on the full square (no rounded corners: Android masks the icon itself, ``"purpose": "maskable"``
keeps it inside the safe zone)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from uihelpers import browser, opened_page  # noqa: E402

STATIC = Path(__file__).resolve().parents[1] / "core" / "src" / "alarmcloud" / "web" / "static"
#: the favicon's bell, scaled into the middle 60 % of the square (the maskable safe zone is a circle of 80 %)
PAGE = """<!doctype html><html><body style="margin:0">
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="{n}" height="{n}" style="display:block">
<rect width="32" height="32" fill="#1f5fbf"/>
<g transform="translate(16 16) scale(0.85) translate(-16 -16)">
<path d="M16 6a7 7 0 0 0-7 7v5l-2 4h18l-2-4v-5a7 7 0 0 0-7-7zm-3 18a3 3 0 0 0 6 0z" fill="#fff"/></g>
</svg></body></html>"""


def main() -> None:
    with browser() as b:
        for n in (192, 512):
            with opened_page(b, n, n) as page:
                page.set_content(PAGE.format(n=n))
                page.screenshot(path=str(STATIC / f"icon-{n}.png"), clip={"x": 0, "y": 0, "width": n, "height": n})
                print(STATIC / f"icon-{n}.png")


if __name__ == "__main__":
    main()
