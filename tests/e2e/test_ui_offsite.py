"""The storage page's off-site copies card in a real browser: enter the bucket, test it (the bucket's own error,
then success), see the copies' status, copy the clips stored before; the secret key is never shown again."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, Site, login, opened_page, owner_api, watch  # noqa: E402

pytestmark = pytest.mark.browser
SECRET = "ui-secret-access-key-4711"


def test_set_up_test_and_watch_the_copies(chromium: Any, site: Site) -> None:
    from alarmcloud.models import Account, Outbox, utcnow
    from sqlmodel import select

    from tests.s3server import ACCESS_KEY, MotoS3  # type: ignore[import-not-found]

    s3 = MotoS3()  # the owner's bucket
    bucket = s3.new_bucket()
    core: Any = site.core
    core.settings.offsite.allow_http = True  # the stand-in bucket speaks plain http on loopback
    try:
        with opened_page(chromium, 1280, 1400) as page:
            outside, errors = watch(page, site.url)
            login(page, site.url, OWNER)
            page.goto(site.url + "/storage")
            card = page.locator("#offsite")
            card.get_by_text("does not delete its copy").wait_for()  # the copies are the owner's
            card.get_by_label("Copy new clips to my bucket").check()
            assert card.get_by_label("What to copy").input_value() == "alarms"  # the default
            card.get_by_label("Endpoint").fill(s3.endpoint)
            card.get_by_label("Region").fill("us-east-1")
            card.locator("input[name=bucket]").fill("not-there-bucket")
            card.get_by_label("Folder").fill("home")
            card.get_by_label("Access key id").fill(ACCESS_KEY)
            card.get_by_label("Secret access key").fill(SECRET)
            card.get_by_role("button", name="Test the bucket").click()
            result = card.get_by_role("status")
            result.filter(has_text="'not-there-bucket' does not exist").wait_for()
            assert card.get_by_label("Secret access key").input_value() == ""  # saved, never shown again

            card.locator("input[name=bucket]").fill(bucket)
            card.get_by_role("button", name="Test the bucket").click()
            result.filter(has_text="The bucket works").wait_for()
            card.get_by_role("button", name="Apply bucket settings").click()
            result.filter(has_text="new clips are copied").wait_for()

            with core.db.session() as s:  # a clip of the owner's was judged an alarm: its copy is queued
                owner = s.exec(select(Account).where(Account.email == OWNER)).one()
                s.add(Outbox(account_id=owner.id, kind="offsite", target=f"offsite:{owner.id}",
                             payload={"clip_id": site.event_id}))
                s.commit()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(k.endswith(".json") for k in s3.keys(bucket)):
                time.sleep(0.1)
            keys = s3.keys(bucket)
            assert len(keys) == 2 and all(k.startswith("home/") and site.event_id in k for k in keys), keys

            page.reload()
            card = page.locator("#offsite")
            card.locator("[data-offsite-status]").filter(has_text="Last copy:").wait_for()
            assert not card.get_by_role("alert").is_visible()
            assert card.get_by_label("Copy new clips to my bucket").is_checked()
            assert card.locator("input[name=bucket]").input_value() == bucket
            card.get_by_label("What to copy").select_option("all")
            card.get_by_role("button", name="Apply bucket settings").click()
            result.filter(has_text="new clips are copied").wait_for()
            assert "a key is saved" in (card.get_by_label("Secret access key").get_attribute("placeholder") or "")
            assert SECRET not in page.content()
            assert not card.get_by_role("button", name="Retry given-up copies").is_visible()

            with core.db.session() as s:  # a copy given up after a long outage
                s.add(Outbox(account_id=owner.id, kind="offsite", target=f"offsite:{owner.id}", state="dead",
                             attempts=24, last_error="cannot connect to the bucket", last_attempt_at=utcnow(),
                             payload={"clip_id": site.event_id}))
                s.commit()
            page.reload()
            card = page.locator("#offsite")
            card.get_by_role("alert").filter(has_text="cannot connect to the bucket").wait_for()
            card.locator("[data-offsite-status]").filter(has_text="1 copy was given up").wait_for()
            card.get_by_role("button", name="Retry given-up copies").click()
            result.filter(has_text="queued again").wait_for()
            assert not card.get_by_role("button", name="Retry given-up copies").is_visible()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and owner_api(site).get("/api/v1/me/offsite").json()["last_error"]:
                time.sleep(0.1)
            assert owner_api(site).get("/api/v1/me/offsite").json()["copies"][0]["state"] == "sent"

            def copy_rows() -> int:
                with core.db.session() as s:
                    return len(s.exec(select(Outbox).where(Outbox.account_id == owner.id,
                                                           Outbox.kind == "offsite")).all())

            before = copy_rows()  # the clips stored before the copies were switched on
            card.get_by_role("button", name="Copy existing clips").click()
            queued = result.filter(has_text="queued for copying")
            queued.wait_for()
            n = copy_rows() - before
            assert n > 0 and queued.inner_text().startswith(f"{n} stored clip"), (n, queued.inner_text())
            card.locator("[data-offsite-status]").filter(has_text="waiting").wait_for()  # the count to watch
            card.get_by_role("button", name="Copy existing clips").click()
            result.filter(has_text="nothing new to copy").wait_for()
            assert copy_rows() - before == n
            assert page.evaluate(AUDIT_JS) == []  # labels, contrast, sizes (tests/e2e/audit.js)
            assert outside == [] and errors == []
        state = owner_api(site).get("/api/v1/me/offsite").json()
        assert state["enabled"] is True and state["bucket"] == bucket and state["prefix"] == "home"
        assert state["scope"] == "all"
        assert state["has_secret_key"] is True and SECRET not in str(state)
    finally:
        core.settings.offsite.allow_http = False
        s3.stop()
