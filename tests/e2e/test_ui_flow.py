"""The customer journey in a real browser: sign up → camera → upload → timeline → play/seek → feedback → delete."""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import MODEL, PASSWORD, browser, make_accepted_clip, require_chromium, watch  # noqa: E402

pytestmark = pytest.mark.browser


def _wait_for_verdict(page: Any, event_id: str, timeout: float = 60.0) -> str:
    """Wait, without reloading, until the clip's badge has left the 'Analysing…' state; its text."""
    badge = page.locator(f'.event[data-event-id="{event_id}"] .badge')
    try:
        page.wait_for_function("b => b.dataset.verdict", arg=badge.element_handle(), timeout=timeout * 1000)
    except Exception as exc:
        raise AssertionError("the clip's badge did not update in time; last badge: " + badge.inner_text()) from exc
    return badge.inner_text()


def test_customer_journey(tmp_path: Path) -> None:
    require_chromium()
    from alarmcloud.testing import LiveServer, test_settings

    clip = make_accepted_clip(tmp_path / "A_20240101_120000.mp4")
    settings = test_settings(tmp_path / "data")
    with LiveServer(settings) as srv, browser() as b:
        ctx = b.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        outside, errors = watch(page, srv.url)  # third-party requests, script errors

        # sign up: lands on the cameras page, logged in
        page.goto(srv.url + "/")
        assert "/login" in page.url
        page.get_by_role("link", name="Sign up").first.click()
        page.get_by_label("E-mail address").fill("owner@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        page.wait_for_url(re.compile(r"/cameras"))

        # add a camera; the upload settings are shown once, read them from the page
        page.get_by_label("Name", exact=True).fill("Driveway")
        page.get_by_label("Brand").select_option("instar")
        page.get_by_label("Model").select_option(MODEL)
        page.get_by_role("button", name="Add camera").click()
        page.locator("#credentials").wait_for(state="visible")
        creds = {k: page.input_value(f"#cred-{k}") for k in ("username", "password", "http")}
        assert creds["password"] and creds["http"].endswith("/api/v1/ingest/clips")
        page.locator("#new-camera-link").click()
        page.wait_for_url(re.compile(r"/cameras/\w+"))
        camera_url = page.url

        # switch the rain detector on
        rain = page.locator('input[data-detector="rain"]')
        rain.check()
        page.locator(".flash").get_by_text("Rain and snow detection switched on").wait_for()

        # the camera uploads a clip over HTTP with its own credentials
        r = httpx.post(creds["http"].replace("http://localhost:8000", srv.url).replace(
            settings.public_url.rstrip("/"), srv.url), content=clip.read_bytes(), auth=(creds["username"],
                                                                                       creds["password"]),
            headers={"Content-Type": "video/mp4", "X-File-Name": clip.name}, timeout=60)
        assert r.status_code == 201, r.text
        event_id = r.json()["event_id"]

        # the timeline shows it with a thumbnail and, once analysed, a verdict
        page.get_by_role("link", name="Alarms", exact=True).click()
        card = page.locator(f'.event[data-event-id="{event_id}"]')
        card.wait_for()
        verdict = _wait_for_verdict(page, event_id)
        assert verdict and verdict != "Analysing…"
        thumb = page.locator(f'.event[data-event-id="{event_id}"] img')
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())

        # the clip page: the video plays and seeks through Range requests
        ranges: list[tuple[int, str | None]] = []
        page.on("response", lambda resp: ranges.append((resp.status, resp.request.headers.get("range")))
                if "/video" in resp.url else None)
        page.locator(f'.event[data-event-id="{event_id}"]').click()
        page.wait_for_url(re.compile(rf"/events/{event_id}"))
        page.wait_for_function("() => document.querySelector('#player').readyState >= 1")
        duration = page.evaluate("() => document.querySelector('#player').duration")
        assert duration == pytest.approx(6.0, abs=0.5)
        t = page.evaluate("""() => new Promise((ok) => {
            const v = document.querySelector('#player');
            v.addEventListener('seeked', () => ok(v.currentTime), { once: true });
            v.currentTime = 4.0;
        })""")
        assert t == pytest.approx(4.0, abs=0.3)
        assert any(status == 206 and rng for status, rng in ranges), ranges

        # "this was rain", with the release consent
        page.get_by_label(re.compile("Release this clip")).check()
        page.get_by_role("button", name="This was rain").click()
        page.locator(".sent").get_by_text("marked as rain").wait_for()
        released = list((settings.data_dir / "training" / "rain" / "rain").glob(f"{event_id}.mp4"))
        assert released, "the released clip was not copied to the training area"

        # switch the detector off again
        page.goto(camera_url)
        page.locator('input[data-detector="rain"]').uncheck()
        page.locator(".flash").get_by_text("Rain and snow detection switched off").wait_for()
        page.reload()
        assert not page.locator('input[data-detector="rain"]').is_checked()

        # the privacy center: consent history shows the release; export with progress; download the ZIP
        page.get_by_role("link", name="Privacy").first.click()
        page.locator("#consents").get_by_text("improve the rain detector").wait_for()
        page.get_by_role("button", name="Export my data").click()
        status = page.locator("#export-status")
        status.get_by_text(re.compile("ready|not available|failed")).wait_for(timeout=60_000)
        link = page.locator("#export-download")
        if link.count():
            with page.expect_download() as dl:
                link.click()
            path = dl.value.path()
            assert path and zipfile.is_zipfile(path)
        else:  # the privacy engineer's endpoints are missing: the UI says so clearly
            assert "not available" in status.inner_text()

        # delete the account: back to sign-up, and the session is gone
        page.once("dialog", lambda d: d.accept())
        page.locator("form[data-api='/api/v1/me'] input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Delete my account").click()
        page.wait_for_url(re.compile(r"/signup"))
        assert httpx.post(srv.url + "/api/v1/auth/login", json={"email": "owner@example.org",
                                                                 "password": PASSWORD}).status_code == 401

        assert not outside, f"third-party requests: {outside}"
        assert not errors, errors
        ctx.close()
