"""Required two-step verification, set up with a code e-mailed to the account: someone who learnt the password
before its owner set it up cannot set it up in their place. A real SMTP server on loopback receives the mail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from alarmcloud import twofactor
from alarmcloud.testing import test_settings

from tests.test_notify import Mailbox  # type: ignore[import-not-found]
from tests.test_twofactor import PASSWORD  # type: ignore[import-not-found]


@pytest.fixture
def settings(tmp_path: Path, mailbox: Mailbox) -> Any:
    st: Any = test_settings(tmp_path / "data", two_factor_required="owners")
    st.smtp.host, st.smtp.port, st.smtp.sender = "127.0.0.1", mailbox.port, "alarms@cloud.example"
    st.notify.retry_base_seconds = 0.3
    return st


def _mailed_code(mailbox: Mailbox, count: int) -> str:
    msg = mailbox.wait(count)[count - 1]
    assert msg["Subject"] == "Your code to set up two-step verification"
    found = re.search(r"^(\d{4}) (\d{4})\r?$", msg.get_content(), re.M)
    assert found, msg.get_content()
    return found.group(1) + found.group(2)


def test_the_setup_needs_the_code_from_the_email(api: Any, server: Any, mailbox: Mailbox) -> None:
    a = api().register("mailed-2fa@example.com")
    assert a.get("/api/v1/cameras").json()["error"]["code"] == "two_factor_required"
    r = a.post("/api/v1/me/2fa")
    assert r.status_code == 201 and r.json()["email_code_sent"] is True, r.text
    secret = r.json()["secret"]
    mailed = _mailed_code(mailbox, 1)
    assert mailbox.messages[0][0].rcpt_tos == ["mailed-2fa@example.com"]
    for extra in ({}, {"email_code": "00000000" if mailed != "00000000" else "11111111"}):
        r = a.post("/api/v1/me/2fa/confirm", json={"code": twofactor.totp(secret), "password": PASSWORD, **extra})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_email_code", r.text
    assert a.get("/api/v1/me/2fa").json()["enabled"] is False
    # a new start sends a new code; the old one no longer serves
    r = a.post("/api/v1/me/2fa")
    secret = r.json()["secret"]
    again = _mailed_code(mailbox, 2)
    if again != mailed:
        r = a.post("/api/v1/me/2fa/confirm", json={"code": twofactor.totp(secret), "password": PASSWORD,
                                                   "email_code": mailed})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_email_code"
    r = a.post("/api/v1/me/2fa/confirm", json={"code": twofactor.totp(secret), "password": PASSWORD,
                                               "email_code": f"{again[:4]} {again[4:]}"})  # as the mail shows it
    assert r.status_code == 200 and r.json()["enabled"] is True, r.text
    assert a.get("/api/v1/cameras").status_code == 200


def test_no_code_where_it_is_not_required(api: Any, server: Any, mailbox: Mailbox) -> None:
    server.core.settings.two_factor_required = "operators"  # not of an owner: switched on as before
    try:
        a = api().register("unmailed-2fa@example.com")
        r = a.post("/api/v1/me/2fa")
        assert r.status_code == 201 and r.json()["email_code_sent"] is False
        r = a.post("/api/v1/me/2fa/confirm", json={"code": twofactor.totp(r.json()["secret"]), "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert mailbox.messages == []
    finally:
        server.core.settings.two_factor_required = "owners"
