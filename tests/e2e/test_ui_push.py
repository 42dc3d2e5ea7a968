"""The notifications page's push card in a real browser: set the ntfy topic and token, send a test push, see the
outcome (delivered, or the server's refusal); the token is never shown again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, Site, login, opened_page, owner_api, watch  # noqa: E402

pytestmark = pytest.mark.browser
TOKEN = "tk_browser0123456789abcdefghij"


def test_set_the_topic_and_send_a_test_push(chromium: Any, site: Site) -> None:
    from tests.conftest import Receiver  # type: ignore[import-not-found]

    with Receiver() as ntfy:  # a stand-in ntfy server
        with opened_page(chromium, 1280, 900) as page:
            outside, errors = watch(page, site.url)
            login(page, site.url, OWNER)
            page.goto(site.url + "/notifications")
            card = page.locator("#push")
            card.get_by_label("Push alarms to my phone").check()
            card.get_by_role("button", name="Apply push settings").click()
            card.get_by_role("status").filter(has_text="Enter your ntfy topic").wait_for()
            card.get_by_label("Topic").fill(ntfy.url + "/demo-alarms")
            card.get_by_label("Access token").fill(TOKEN)
            card.get_by_label("Push alarms to my phone").check()
            assert not card.get_by_label("Attach the picture").is_checked()  # off by default
            card.get_by_role("button", name="Send test push").click()
            result = card.get_by_role("status")
            result.filter(has_text="delivered").wait_for()
            assert result.inner_text().startswith("Test push delivered")
            (req,) = ntfy.received()
            assert req["path"] == "/demo-alarms" and req["headers"]["Authorization"] == f"Bearer {TOKEN}"
            assert req["headers"]["Title"] == "alarmcloud test"
            assert card.get_by_label("Access token").input_value() == ""  # never shown again

            ntfy.script["/demo-alarms"] = [(401, "unauthorized")]
            card.get_by_role("button", name="Send test push").click()
            result.filter(has_text="HTTP 401").wait_for()
            assert "not delivered: HTTP 401: unauthorized" in result.inner_text()

            page.reload()
            card = page.locator("#push")
            assert card.get_by_label("Topic").input_value() == ntfy.url + "/demo-alarms"
            assert card.get_by_label("Push alarms to my phone").is_checked()
            assert card.get_by_label("Access token").input_value() == "" and TOKEN not in page.content()
            assert "a token is saved" in (card.get_by_label("Access token").get_attribute("placeholder") or "")
            assert page.evaluate(AUDIT_JS) == []  # labels, contrast, sizes (tests/e2e/audit.js)
            assert outside == [] and errors == []
        state = owner_api(site).get("/api/v1/me/push").json()
        assert state["enabled"] is True and state["has_token"] is True
        assert [d["state"] for d in state["deliveries"]] == ["dead", "sent"]
