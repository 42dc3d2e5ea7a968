"""Signed-in devices in a real browser: a person signed in on a laptop and a phone sees both on the account page,
signs the phone out from the laptop (the phone is sent to the login page), then signs the laptop out."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, PASSWORD, browser, login, opened_page, require_chromium, watch  # noqa: E402

pytestmark = pytest.mark.browser

EMAIL = "two-devices@example.org"
PHONE = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
LAPTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")


def test_sign_out_the_phone_from_the_laptop(tmp_path: Path) -> None:
    require_chromium()
    from alarmcloud.testing import LiveServer, test_settings

    with LiveServer(test_settings(tmp_path / "data")) as srv, browser() as b, \
            opened_page(b, 1280, 800, user_agent=LAPTOP) as laptop, \
            opened_page(b, 375, 740, user_agent=PHONE) as phone:
        assert httpx.post(srv.url + "/api/v1/auth/register",
                          json={"email": EMAIL, "password": PASSWORD}).status_code == 201
        outside, errors = watch(laptop, srv.url)
        laptop.on("dialog", lambda d: d.accept())  # "Sign out every other device?", "Sign out here?"
        login(phone, srv.url, EMAIL)
        login(laptop, srv.url, EMAIL)
        laptop.goto(srv.url + "/account")
        card = laptop.locator("#sessions")
        rows = card.locator("tbody tr")
        assert rows.count() == 2
        assert "Chrome on Windows" in rows.nth(0).inner_text() and "(this device)" in rows.nth(0).inner_text()
        assert "Firefox on Android" in rows.nth(1).inner_text()
        found = laptop.evaluate(AUDIT_JS)
        assert not found, found

        card.get_by_role("button", name="Sign out every other device").click()
        laptop.get_by_text("Signed out 1 other device.").wait_for()
        assert rows.count() == 1
        assert card.get_by_role("button", name="Sign out every other device").is_hidden()
        phone.goto(srv.url + "/account")
        phone.wait_for_url("**/login**")  # the phone's session is gone

        card.get_by_role("button", name="Sign out this device").click()
        laptop.wait_for_url("**/login**")
        laptop.goto(srv.url + "/account")
        laptop.wait_for_url("**/login**")
        assert not outside and not errors, (outside, errors)
