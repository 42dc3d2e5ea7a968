"""Keeping a clip in a real browser: the owner keeps an alarm clip on its page, finds it marked and filtered on the
timeline and counted on the storage page, is told why when kept clips would fill too much, and lets it go again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, watch  # noqa: E402

pytestmark = pytest.mark.browser


def _kept(site: Site, event_id: str) -> bool:
    with httpx.Client(base_url=site.url, timeout=30) as c:
        assert c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
        return bool(c.get(f"/api/v1/events/{event_id}").json()["kept"])


def _quota(site: Site, quota: int | None) -> None:
    from alarmcloud.models import Account
    from sqlmodel import select

    with site.core.db.session() as s:
        acc = s.exec(select(Account).where(Account.email == OWNER)).one()
        acc.quota_bytes = quota
        s.add(acc)
        s.commit()


def test_keep_a_clip_find_it_and_let_it_go(desktop: Any, site: Site) -> None:
    page = desktop
    outside, errors = watch(page, site.url)
    login(page, site.url, OWNER)
    page.goto(f"{site.url}/events/{site.event_id}")
    card = page.locator("#keep")
    assert "Clips are deleted after 30 days" in card.inner_text()
    card.get_by_role("button", name="Keep this clip").click()
    card.get_by_role("button", name="Stop keeping").wait_for()
    assert "Kept since" in card.inner_text() and _kept(site, site.event_id)
    found = page.evaluate(AUDIT_JS)
    assert not found, found

    # the timeline marks it, and its filter shows the kept clips alone
    page.goto(site.url + "/")
    assert page.locator(f'[data-event-id="{site.event_id}"] .kept-mark').inner_text().lower() == "kept"
    assert page.locator(".kept-mark").count() == 1
    page.get_by_label("Kept").select_option("true")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**kept=true**")
    assert [a.get_attribute("data-event-id") for a in page.locator("a.event").all()] == [site.event_id]
    found = page.evaluate(AUDIT_JS)
    assert not found, found
    # the storage page counts it and links to them
    page.goto(site.url + "/storage")
    use = page.locator("[data-kept-use]")
    assert "1 clip kept" in use.inner_text() and "past the 30 days" in use.inner_text()

    # another clip would be more than kept clips may fill: the page says why, nothing changes
    with httpx.Client(base_url=site.url, timeout=30) as c:
        assert c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
        other = next(e for e in c.get("/api/v1/events").json()["items"] if e["id"] != site.event_id)
        size = c.get(f"/api/v1/events/{site.event_id}").json()["size_bytes"]
    _quota(site, 2 * size + other["size_bytes"] - 2)  # half of it: less than both clips
    try:
        page.goto(f"{site.url}/events/{other['id']}")
        page.locator("#keep").get_by_role("button", name="Keep this clip").click()
        flash = page.locator(".flash.bad")
        flash.wait_for()
        assert "stop keeping or delete some first" in flash.inner_text()
        assert not _kept(site, other["id"])
    finally:
        _quota(site, None)

    # let it go: the card offers keeping again, the timeline marks nothing
    page.goto(f"{site.url}/events/{site.event_id}")
    page.locator("#keep").get_by_role("button", name="Stop keeping").click()
    page.locator("#keep").get_by_role("button", name="Keep this clip").wait_for()
    assert not _kept(site, site.event_id)
    page.goto(site.url + "/")
    assert page.locator(".kept-mark").count() == 0
    assert not outside and not errors, (outside, errors)
