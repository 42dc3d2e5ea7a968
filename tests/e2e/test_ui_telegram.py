"""The notifications page's Telegram card in a real browser: enter the bot token, find the chat, send a test
message, see Telegram's refusal; the token is never shown again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, Site, login, opened_page, owner_api, watch  # noqa: E402

pytestmark = pytest.mark.browser


def test_find_the_chat_and_send_a_test_message(chromium: Any, site: Site) -> None:
    from tests.test_notify_telegram import TOKEN, FakeTelegram  # type: ignore[import-not-found]

    telegram = FakeTelegram()  # the stand-in Bot API
    telegram.updates = [{"update_id": 1, "message": {"message_id": 1, "text": "hello", "chat": {
        "id": 424242, "type": "private", "first_name": "Owner <b>"}}}]
    cfg = site.core.settings.notify  # type: ignore[attr-defined]
    cfg.telegram_api_url, before = telegram.url, cfg.telegram_api_url
    try:
        with opened_page(chromium, 1280, 900) as page:
            outside, errors = watch(page, site.url)
            login(page, site.url, OWNER)
            page.goto(site.url + "/notifications")
            card = page.locator("#telegram")
            card.get_by_label("Bot token").fill("not a token")
            card.get_by_role("button", name="Find my chat").click()
            result = card.get_by_role("status")
            result.filter(has_text="@BotFather").wait_for()

            card.get_by_label("Bot token").fill(TOKEN)
            card.get_by_role("button", name="Find my chat").click()
            result.filter(has_text="Found your chat").wait_for()
            assert card.locator("input[name=chat_id]").input_value() == "424242"
            assert card.get_by_role("button", name="Owner <b> (private, 424242)").is_visible()  # text, not markup
            card.get_by_label("Send alarms to Telegram").check()
            assert not card.get_by_label("Send the picture").is_checked()  # off by default
            card.get_by_role("button", name="Send test message").click()
            result.filter(has_text="delivered").wait_for()
            test = telegram.received("sendMessage")[0]
            assert test["token"] == TOKEN and test["fields"]["chat_id"] == "424242"
            assert card.get_by_label("Bot token").input_value() == ""  # never shown again

            telegram.script["sendMessage"] = [(403, {"ok": False, "error_code": 403,
                                                     "description": "Forbidden: bot was blocked by the user"})]
            card.get_by_role("button", name="Send test message").click()
            result.filter(has_text="HTTP 403").wait_for()
            page.reload()
            card = page.locator("#telegram")
            card.get_by_role("alert").filter(has_text="bot was blocked by the user").wait_for()
            assert card.get_by_label("Send alarms to Telegram").is_checked()
            assert TOKEN.split(":")[1] not in page.content()
            assert "a token is saved" in (card.get_by_label("Bot token").get_attribute("placeholder") or "")
            assert page.evaluate(AUDIT_JS) == []  # labels, contrast, sizes (tests/e2e/audit.js)
            assert outside == [] and errors == []
        state = owner_api(site).get("/api/v1/me/telegram").json()
        assert state["enabled"] is True and state["chat_id"] == "424242"
        assert [d["state"] for d in state["deliveries"]] == ["dead", "sent"]
    finally:
        cfg.telegram_api_url = before
        telegram.close()
