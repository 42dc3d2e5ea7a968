"""Shared bits of the browser tests: launching Debian chromium, a live server, a clip the INSTAR adapter accepts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

CHROMIUM = os.environ.get("ALARMCLOUD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
MODEL = "IN-9008 Full HD"  # accepts 640x352 H.264 sub-stream clips
PASSWORD = "correct horse battery staple"
OWNER = "demo@example.org"
#: the accessibility and layout audit every page must pass (``page.evaluate(AUDIT_JS)`` lists what it finds)
AUDIT_JS = (Path(__file__).parent / "audit.js").read_text()
OPERATOR = "operator@example.org"
REDIRECT = "https://example.com/callback"


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian chromium (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (dev group) is not installed")


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def opened_page(b: Any, width: int, height: int, **context: Any) -> Iterator[Any]:
    """A page in a new browser context of that viewport (downloads on, 15 s timeouts); the context closes after."""
    ctx = b.new_context(viewport={"width": width, "height": height}, accept_downloads=True, **context)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        ctx.close()


def watch(page: Any, base: str) -> tuple[list[str], list[str]]:
    """Lists that fill with the page's requests to other origins (a privacy promise) and its script errors."""
    outside: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else outside.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    return outside, errors


def make_accepted_clip(path: Path, seconds: float = 6.0) -> Path:
    from alarmcloud.testing import make_clip

    return make_clip(path, seconds=seconds, width=640, height=352, fps=15)


class Site:
    """The seeded deployment of the ``site`` fixture: its URL, core, and the ids the tests need."""

    def __init__(self, url: str, core: Any, event_id: str, camera_id: str, client_id: str) -> None:
        self.url, self.core, self.event_id, self.camera_id, self.client_id = url, core, event_id, camera_id, client_id

    def owner_pages(self) -> dict[str, str]:
        consent = "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": self.client_id,
                                                   "redirect_uri": REDIRECT, "scope": "alarms:read cameras:control",
                                                   "state": "xyz"})
        return {"timeline": "/", "clip": f"/events/{self.event_id}", "cameras": "/cameras",
                "camera": f"/cameras/{self.camera_id}", "storage": "/storage", "notifications": "/notifications",
                "links": "/links", "privacy": "/privacy-center", "account": "/account", "plates": "/plates",
                "cases": "/cases",
                "consent": consent,
                "not found": "/events/nope", "unknown address": "/no/such/page", "policy": "/privacy",
                "api reference": "/api-docs"}


def login(page: Any, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")


def owner_api(site: Any) -> Any:
    """An API client logged in as the demo owner of ``site`` (a ``Site``), with the CSRF header set."""
    import httpx

    c = httpx.Client(base_url=site.url, timeout=30)
    r = c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = c.cookies["ac_csrf"]
    return c
