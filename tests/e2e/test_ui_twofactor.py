"""Two-step verification in a real browser: switch it on (QR, key, first code, recovery codes), log out, log in
with a code computed here (after a wrong one), then with a recovery code; the new states pass the page audit."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, PASSWORD, browser, require_chromium, watch  # noqa: E402

pytestmark = pytest.mark.browser

EMAIL = "twostep@example.org"


def _audit(page: Any, name: str, found: dict[str, list[str]]) -> None:
    problems = page.evaluate(AUDIT_JS)
    if problems:
        found[name] = problems


def _log_in_with_password(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Verification code").wait_for(state="visible")


def test_switch_on_log_out_and_log_in_with_a_code(tmp_path: Path) -> None:
    require_chromium()
    from alarmcloud import twofactor
    from alarmcloud.testing import LiveServer, test_settings

    with LiveServer(test_settings(tmp_path / "data")) as srv, browser() as b:
        assert httpx.post(srv.url + "/api/v1/auth/register",
                          json={"email": EMAIL, "password": PASSWORD}).status_code == 201
        ctx = b.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        outside, errors = watch(page, srv.url)  # third-party requests, script errors
        audit: dict[str, list[str]] = {}

        # the password alone still logs in while it is off
        page.goto(srv.url + "/login")
        page.get_by_label("E-mail address").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(srv.url + "/")

        # switch on: QR code and key are shown, a first code confirms
        page.goto(srv.url + "/account")
        page.get_by_role("button", name="Switch on two-step verification").click()
        qr = page.get_by_role("img", name="QR code with your authenticator key")
        qr.locator("svg").wait_for(state="visible")
        secret = page.locator("[data-twofactor-secret]").inner_text().replace(" ", "")
        assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
        _audit(page, "account: enrolment", audit)
        page.get_by_label("Enter the 6-digit code the app shows").fill("000000" if twofactor.totp(secret) != "000000"
                                                                          else "111111")
        page.get_by_label("Your password, to confirm it is you").fill(PASSWORD)
        page.get_by_role("button", name="Confirm and switch on").click()
        page.get_by_text("That code is wrong").wait_for(state="visible")
        page.get_by_label("Enter the 6-digit code the app shows").fill(twofactor.totp(secret))
        page.get_by_label("Your password, to confirm it is you").fill("not my password")
        page.get_by_role("button", name="Confirm and switch on").click()
        page.get_by_text("The password is wrong").wait_for(state="visible")
        page.get_by_label("Your password, to confirm it is you").fill(PASSWORD)
        page.get_by_role("button", name="Confirm and switch on").click()
        codes_box = page.locator("[data-twofactor-codes]")
        codes_box.wait_for(state="visible")
        codes = [c.strip() for c in codes_box.locator("li").all_inner_texts()]
        assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}", c) for c in codes), (codes, errors, codes_box.inner_html())
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download codes").click()
        saved = Path(dl.value.path()).read_text()
        assert all(c in saved for c in codes)
        _audit(page, "account: recovery codes", audit)
        page.get_by_role("link", name="Done").click()
        page.get_by_text("10 of 10 recovery codes left").wait_for(state="visible")
        _audit(page, "account: on", audit)

        # log out; the password alone now leads to the second step, which a wrong code does not pass
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r"/login"))
        _log_in_with_password(page, srv.url)
        _audit(page, "login: second step", audit)
        page.get_by_label("Verification code").fill("999999" if twofactor.totp(secret, time.time() + 30) != "999999"
                                                    else "888888")
        page.get_by_role("button", name="Verify").click()
        page.get_by_text("That code is wrong or was already used").wait_for(state="visible")
        assert "/login" in page.url
        # the next step's code (accepted within the ±30 s window, and later than the one used to confirm)
        page.get_by_label("Verification code").fill(twofactor.totp(secret, time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(srv.url + "/")

        # a recovery code logs in once
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r"/login"))
        _log_in_with_password(page, srv.url)
        page.get_by_label("Verification code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(srv.url + "/")
        page.goto(srv.url + "/account")
        page.get_by_text("9 of 10 recovery codes left").wait_for(state="visible")

        # deleting the account asks for a code as well
        page.goto(srv.url + "/privacy-center")
        page.on("dialog", lambda dialog: dialog.accept())
        delete = page.locator("form[data-method=DELETE]")
        delete.get_by_label("Your password").fill(PASSWORD)
        delete.get_by_label("Code from your app, or a recovery code").fill(codes[1])
        delete.get_by_role("button", name="Delete my account").click()
        page.wait_for_url(re.compile(r"/signup\?deleted=1"))

        ctx.close()
        assert not audit, "\n".join(f"{k}: {v}" for k, v in audit.items())
        assert not outside, f"third-party requests: {outside}"
        assert not errors, errors


def test_a_server_that_requires_it_sends_a_new_owner_to_set_it_up(tmp_path: Path) -> None:
    require_chromium()
    from alarmcloud import twofactor
    from alarmcloud.testing import LiveServer, test_settings

    with LiveServer(test_settings(tmp_path / "data", two_factor_required="owners")) as srv, browser() as b:
        ctx = b.new_context(viewport={"width": 390, "height": 844})
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        outside, errors = watch(page, srv.url)
        audit: dict[str, list[str]] = {}

        page.goto(srv.url + "/signup")
        page.get_by_label("E-mail address").fill(EMAIL)
        page.locator("input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        page.wait_for_url(re.compile(r"/account\?setup=two-factor"))  # signed up: straight to setting it up
        page.get_by_role("heading", name="Set up two-step verification to continue").wait_for()
        assert not page.get_by_role("heading", name="API tokens").count()
        _audit(page, "account: setup required", audit)
        page.goto(srv.url + "/cameras")  # every other page leads back here
        page.wait_for_url(re.compile(r"/account\?setup=two-factor"))

        page.get_by_role("button", name="Switch on two-step verification").click()
        page.get_by_role("img", name="QR code with your authenticator key").locator("svg").wait_for(state="visible")
        secret = page.locator("[data-twofactor-secret]").inner_text().replace(" ", "")
        page.get_by_label("Enter the 6-digit code the app shows").fill(twofactor.totp(secret))
        page.get_by_label("Your password, to confirm it is you").fill(PASSWORD)
        page.get_by_role("button", name="Confirm and switch on").click()
        page.locator("[data-twofactor-codes]").wait_for(state="visible")
        page.get_by_role("link", name="Continue").click()
        page.wait_for_url(srv.url + "/")
        page.goto(srv.url + "/cameras")
        page.wait_for_url(srv.url + "/cameras")
        _audit(page, "cameras after setup", audit)
        ctx.close()
        assert not audit, "\n".join(f"{k}: {v}" for k, v in audit.items())
        assert not outside, f"third-party requests: {outside}"
        assert not errors, errors


def test_the_required_setup_asks_for_the_code_from_the_email(tmp_path: Path) -> None:
    require_chromium()
    from aiosmtpd.controller import Controller
    from alarmcloud import twofactor
    from alarmcloud.testing import LiveServer, test_settings

    from tests.test_notify import Mailbox  # type: ignore[import-not-found]

    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=box.port)
    smtp.start()
    st: Any = test_settings(tmp_path / "data", two_factor_required="everyone")
    st.smtp.host, st.smtp.port = "127.0.0.1", box.port
    try:
        with LiveServer(st) as srv, browser() as b:
            assert httpx.post(srv.url + "/api/v1/auth/register",
                              json={"email": EMAIL, "password": PASSWORD}).status_code == 201
            page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(15_000)
            outside, errors = watch(page, srv.url)
            page.goto(srv.url + "/login")
            page.get_by_label("E-mail address").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(re.compile(r"/account\?setup=two-factor"))
            page.get_by_role("button", name="Switch on two-step verification").click()
            page.get_by_role("img", name="QR code with your authenticator key").locator("svg").wait_for()
            secret = page.locator("[data-twofactor-secret]").inner_text().replace(" ", "")
            mailed_field = page.get_by_label("The code from the e-mail we just sent you")
            mailed_field.wait_for()
            mailed = re.search(r"(\d{4}) (\d{4})", box.wait(1)[0].get_content())
            assert mailed
            page.get_by_label("Enter the 6-digit code the app shows").fill(twofactor.totp(secret))
            page.get_by_label("Your password, to confirm it is you").fill(PASSWORD)
            mailed_field.fill("0000 0000" if mailed.group(0) != "0000 0000" else "1111 1111")
            page.get_by_role("button", name="Confirm and switch on").click()
            page.get_by_text("The code from the e-mail is wrong").wait_for()
            mailed_field.fill(mailed.group(0))
            page.get_by_role("button", name="Confirm and switch on").click()
            page.locator("[data-twofactor-codes]").wait_for(state="visible")
            assert page.evaluate(AUDIT_JS) == []
            page.get_by_role("link", name="Continue").click()
            page.wait_for_url(srv.url + "/")
            assert not outside and not errors, (outside, errors)
    finally:
        smtp.stop()
