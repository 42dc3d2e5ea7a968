"""Every page in a real browser: accessibility basics, phone width, dark theme, keyboard, and same-origin only.

One seeded deployment (an owner with two cameras and analysed clips, a linked service, an operator) is shared by
the tests of this module; each test opens its own browser context.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OPERATOR, OWNER, Site, login  # noqa: E402

pytestmark = pytest.mark.browser


class Recorder:
    """Every request the browser makes and every script error, across pages."""

    def __init__(self, page: Any, base: str) -> None:
        self.base = base
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.requests = 0
        page.on("request", self._request)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        # a failed sub-request is reported by the response handler; error pages (404, 403) are expected
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400
                and r.request.resource_type != "document" else None)

    def _request(self, r: Any) -> None:
        self.requests += 1
        if not r.url.startswith((self.base + "/", "data:", "blob:")):
            self.outside.append(r.url)


def audit_pages(chromium: Any, site: Site, width: int, height: int, scheme: str) -> tuple[dict[str, list[str]], Recorder]:
    ctx = chromium.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = ctx.new_page()
    rec = Recorder(page, site.url)
    found: dict[str, list[str]] = {}
    for name, path in {"login": "/login", "signup": "/signup"}.items():
        page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        found[name] = page.evaluate(AUDIT_JS)
    login(page, site.url, OWNER)
    for name, path in site.owner_pages().items():
        page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        found[name] = page.evaluate(AUDIT_JS)
    page.goto(site.url + "/operator")
    found["operator (customer)"] = page.evaluate(AUDIT_JS)
    ctx.clear_cookies()
    login(page, site.url, OPERATOR)
    page.goto(site.url + "/operator")
    page.wait_for_load_state("networkidle")
    found["operator"] = page.evaluate(AUDIT_JS)
    ctx.close()
    return {k: v for k, v in found.items() if v}, rec


@pytest.mark.parametrize(("width", "height", "scheme"), [(1280, 800, "light"), (375, 740, "light"),
                                                          (375, 740, "dark")])
def test_every_page_passes_the_basics(chromium: Any, site: Site, width: int, height: int, scheme: str) -> None:
    """Labels, headings, lang, contrast >= 4.5:1, no horizontal scroll, no script errors, same-origin only."""
    problems, rec = audit_pages(chromium, site, width, height, scheme)
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert rec.requests > 30  # the recorder saw the pages' CSS, JS, images and API calls
    assert not rec.outside, f"third-party requests: {rec.outside}"
    assert not rec.errors, "\n".join(rec.errors)


FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const st = getComputedStyle(el);
  const ring = (st.outlineStyle !== "none" && parseFloat(st.outlineWidth) >= 2) || st.boxShadow !== "none";
  if (!el.dataset.auditId) el.dataset.auditId = String(Math.random());
  return { id: el.dataset.auditId, ring, what: el.tagName + " " + (el.textContent || el.name || "").trim().slice(0, 30) };
}"""
FOCUSABLE_JS = """() => Array.from(document.querySelectorAll(
    'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), ' +
    'textarea, video[controls], [tabindex]:not([tabindex="-1"])'))
  .filter((el) => { const r = el.getBoundingClientRect(); const st = getComputedStyle(el);
                    return r.width > 0 && r.height > 0 && st.visibility !== "hidden" && !el.closest("[hidden]"); })
  .filter((el, i, all) => el.type !== "radio" ||  // a radio group is one Tab stop (arrow keys move inside it)
          all.findIndex((o) => o.type === "radio" && o.name === el.name && o.form === el.form) === i)
  .map((el) => el.tagName + " " + (el.textContent || el.name || "").trim().slice(0, 30))"""


def walk_with_tab(page: Any, name: str) -> list[str]:
    """Tab round the page once; problems: controls never reached, focus without a visible ring."""
    problems: list[str] = []
    page.wait_for_load_state("networkidle")
    wanted = page.evaluate(FOCUSABLE_JS)
    reached: dict[str, str] = {}
    first = ""
    for _ in range(len(wanted) * 4 + 20):  # date inputs and video controls take several Tabs
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUS_JS)
        if f is None:
            continue
        if f["id"] == first:
            break  # round the page once
        first = first or f["id"]
        if f["id"] in reached:
            continue
        reached[f["id"]] = f["what"]
        if not f["ring"]:
            problems.append(f"{name}: no visible focus on {f['what']}")
    if len(reached) < len(wanted):
        missing = sorted(set(wanted) - set(reached.values()))
        problems.append(f"{name}: Tab reached {len(reached)} of {len(wanted)} controls; not {missing}")
    return problems


def test_keyboard_reaches_everything_with_a_visible_focus(chromium: Any, site: Site) -> None:
    """Tab walks every visible control of every page, and each shows a focus ring."""
    ctx = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    problems: list[str] = []
    for name in ("login", "signup"):
        page.goto(site.url + "/" + name)
        problems += walk_with_tab(page, name)
    login(page, site.url, OWNER)
    pages = {k: v for k, v in site.owner_pages().items() if k not in ("not found", "unknown address", "policy")}
    for name, path in pages.items():
        page.goto(site.url + path)
        problems += walk_with_tab(page, name)
    ctx.clear_cookies()
    login(page, site.url, OPERATOR)
    page.goto(site.url + "/operator")
    problems += walk_with_tab(page, "operator")
    ctx.close()
    assert not problems, "\n".join(problems)
