"""Snoozing alarm messages in a real browser: on the notifications page a person snoozes one camera for an hour and
every camera until 7:00 in their own time zone, sees what is snoozed until when, and resumes."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, opened_page, watch  # noqa: E402

pytestmark = pytest.mark.browser

ZONE = "Europe/Berlin"


@pytest.fixture
def page(chromium: Any, site: Site) -> Any:
    with opened_page(chromium, 375, 740, timezone_id=ZONE) as pg:
        yield pg


def _snooze(site: Site) -> dict[str, Any]:
    with httpx.Client(base_url=site.url, timeout=30) as c:
        assert c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
        return dict(c.get("/api/v1/me/snooze").json())


def test_snooze_a_camera_and_every_camera_then_resume(page: Any, site: Site) -> None:
    outside, errors = watch(page, site.url)
    login(page, site.url, OWNER)
    page.goto(site.url + "/notifications")
    card = page.locator("#snooze")
    assert "Not snoozed" in card.inner_text()
    card.get_by_label("Messages about").select_option(label="Garden")
    card.get_by_role("button", name="For 1 hour").click()
    card.locator("li", has_text="Garden").wait_for()
    state = _snooze(site)
    assert state["all"] is None and [c["name"] for c in state["cameras"]] == ["Garden"]
    found = page.evaluate(AUDIT_JS)
    assert not found, found

    # every camera until 7:00 where the person is
    card.get_by_label("Messages about").select_option(label="every camera")
    card.get_by_role("button", name="Until 7:00").click()
    card.locator("li", has_text="Every camera").wait_for()
    until = datetime.fromisoformat(_snooze(site)["all"]).astimezone(ZoneInfo(ZONE))
    assert (until.hour, until.minute) in ((7, 0), (7, 1)), until
    assert "7:0" in card.locator("li", has_text="Every camera").inner_text()  # shown in the person's time zone

    card.get_by_role("button", name="Resume", exact=True).click()  # every camera's
    card.locator("li", has_text="Every camera").wait_for(state="detached")  # the page shows the rest again
    card.locator("li", has_text="Garden").wait_for()
    assert _snooze(site)["all"] is None
    card.get_by_role("button", name="Resume Garden").click()
    page.get_by_text("Not snoozed").wait_for()
    assert _snooze(site) == {"all": None, "cameras": []}
    assert not outside and not errors, (outside, errors)
