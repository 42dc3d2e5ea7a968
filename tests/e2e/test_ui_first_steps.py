"""A first-time owner in a real browser: upload settings a camera can use, whether the camera has sent anything yet,
and a clip page that explains its verdict."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import MODEL, OWNER, PASSWORD, Site, login, make_accepted_clip, opened_page, owner_api  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium: Any, site: Site) -> Any:
    with opened_page(chromium, 390, 844, timezone_id="UTC") as pg:
        yield pg


def test_upload_settings_leave_out_ftp_when_it_is_off_and_warn_about_a_loopback_address(page: Any,
                                                                                        site: Site) -> None:
    # the test deployment runs with FTP off (port 0) on 127.0.0.1, as a first start on a laptop does
    login(page, site.url, OWNER)
    page.goto(site.url + "/cameras")
    page.get_by_label("Name", exact=True).fill("Porch light")
    page.get_by_label("Model").select_option(MODEL)
    page.get_by_role("button", name="Add camera").click()
    panel = page.locator("#credentials")
    panel.wait_for(state="visible")
    assert panel.get_by_label("HTTP upload URL").is_visible()
    assert panel.get_by_label("FTP server").is_hidden() and panel.get_by_label("FTP port").is_hidden()
    copies = panel.locator("button[data-copy]")
    assert [b.is_visible() for b in copies.all()] == [True] * 3 + [False] * 2  # user, password, URL; no FTP
    assert panel.get_by_text("FTP upload is switched off on this server").is_visible()
    host = urlsplit(page.input_value("#cred-http")).hostname
    assert host in ("127.0.0.1", "localhost")
    warning = panel.locator("[data-cred-local]")
    assert warning.is_visible()
    assert f"A camera cannot reach {host}" in warning.inner_text()
    assert "network address of the computer that runs alarmcloud" in warning.inner_text()


def test_a_camera_says_whether_it_has_sent_a_clip_yet(page: Any, site: Site) -> None:
    api = owner_api(site)
    cam = api.post("/api/v1/cameras", json={"name": "Shed", "brand": "instar", "model": MODEL}).json()
    login(page, site.url, OWNER)
    page.goto(site.url + "/cameras")
    card = page.locator(".cam-list li").filter(has=page.get_by_role("heading", name="Shed"))
    assert "No clip received yet: enter the upload settings in the camera." in card.inner_text()
    page.goto(site.url + f"/cameras/{cam['id']}")
    hint = page.locator("[data-last-clip]")
    assert "No clip received yet." in hint.inner_text()
    assert "Get the upload settings below" in hint.inner_text()

    # the camera uploads its first clip (no detector is switched on for it)
    creds = api.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").json()
    clip = make_accepted_clip(Path(site.core.settings.data_dir) / "shed.mp4", seconds=4)
    r = httpx.post(site.url + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                   auth=(creds["username"], creds["password"]), headers={"Content-Type": "video/mp4"})
    assert r.status_code == 201, r.text
    event_id = r.json()["event_id"]
    deadline = time.monotonic() + 60
    while api.get(f"/api/v1/events/{event_id}").json()["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.3)
    started = api.get(f"/api/v1/events/{event_id}").json()["started_at"]

    page.goto(site.url + "/cameras")
    card = page.locator(".cam-list li").filter(has=page.get_by_role("heading", name="Shed"))
    assert "No clip received yet" not in card.inner_text()
    assert card.locator("[data-last-clip] time").get_attribute("datetime") == started
    page.goto(site.url + f"/cameras/{cam['id']}")
    link = page.locator("[data-last-clip]").get_by_role("link")
    assert "Last clip received:" in page.locator("[data-last-clip]").inner_text()
    link.click()
    page.wait_for_url(re.compile(f"/events/{event_id}$"))
    # the clip page says why nothing was found, and where to change that
    page.get_by_text("No detector is switched on for this camera").wait_for()
    page.get_by_role("link", name="switch them on on the camera's page").click()
    page.wait_for_url(re.compile(f"/cameras/{cam['id']}#detectors$"))


def test_a_real_alarm_without_findings_says_why_it_counts(page: Any, site: Site) -> None:
    api = owner_api(site)
    items = api.get("/api/v1/events", params={"limit": 100}).json()["items"]
    plain = next(e for e in items if e["verdict"] == "alarm" and not e["findings"])
    login(page, site.url, OWNER)
    page.goto(site.url + f"/events/{plain['id']}")
    assert page.locator("#verdict").inner_text() == "Real alarm"
    findings = page.locator("section.card").filter(has=page.get_by_role("heading", name="Findings"))
    assert "no false-alarm cause (such as rain)" in findings.inner_text()
    assert "so it counts as a real alarm" in findings.inner_text()
    # a finding names the detector that made it and how sure it is
    found = next(e for e in items if len(e["findings"]) == 1)
    f = found["findings"][0]
    page.goto(site.url + f"/events/{found['id']}")
    line = page.locator("ul.findings li").first.inner_text()
    assert f"{f['detector']} detector · {f['score'] * 100:.0f}% sure" in line


def test_the_local_address_refuses_a_url_and_enables_the_controls(page: Any, site: Site) -> None:
    api = owner_api(site)
    cam = api.post("/api/v1/cameras", json={"name": "Gate", "brand": "instar", "model": MODEL}).json()
    login(page, site.url, OWNER)
    page.goto(site.url + f"/cameras/{cam['id']}")
    # without an address the controls cannot work: they are off and say what they need
    controls = page.locator("section.card").filter(has=page.get_by_role("heading", name="Controls"))
    assert "Enter the camera's local address under Connection to use the controls." in controls.inner_text()
    assert controls.get_by_role("group", name="Motion detection").get_by_role("button", name="On").is_disabled()
    form = page.locator("form[data-method=PATCH]")
    field = form.get_by_label("Local address")
    field.fill("http://192.168.1.20/")
    form.get_by_role("button", name="Save").click()
    assert field.evaluate("el => el.validity.patternMismatch")
    assert field.evaluate("el => el.validationMessage") == (
        "Enter an IP address or host name only, e.g. 192.168.1.20 (no http:// and no path).")
    assert api.get(f"/api/v1/cameras/{cam['id']}").json()["has_address"] is False
    # a plain address is taken
    field.fill("192.168.1.20")
    form.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    deadline = time.monotonic() + 10
    while not api.get(f"/api/v1/cameras/{cam['id']}").json()["has_address"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api.get(f"/api/v1/cameras/{cam['id']}").json()["has_address"] is True
    page.goto(site.url + f"/cameras/{cam['id']}")
    assert controls.get_by_role("group", name="Motion detection").get_by_role("button", name="On").is_enabled()
    assert "to use the controls" not in controls.inner_text()


def test_what_is_marked_hidden_is_not_shown_on_any_page(page: Any, site: Site) -> None:
    # e.g. "Remove the saved token" while no push token is saved (a styled label used to show through)
    login(page, site.url, OWNER)
    shown: dict[str, list[str]] = {}
    for name, path in site.owner_pages().items():
        page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        found = page.evaluate("""() => Array.from(document.querySelectorAll("[hidden]"))
            .filter((el) => el.getClientRects().length > 0)
            .map((el) => el.tagName.toLowerCase() + " " + el.textContent.trim().slice(0, 40))""")
        if found:
            shown[name] = found
    assert shown == {}
    page.goto(site.url + "/notifications")
    assert page.get_by_text("Remove the saved token").is_hidden()


def test_an_empty_timeline_with_a_camera_says_where_to_check_the_uploads(page: Any, site: Site) -> None:
    c = httpx.Client(base_url=site.url, timeout=30)
    assert c.post("/api/v1/auth/register", json={"email": "waiting@example.org", "password": PASSWORD}).is_success
    c.post("/api/v1/auth/login", json={"email": "waiting@example.org", "password": PASSWORD})
    c.headers["X-CSRF-Token"] = c.cookies["ac_csrf"]
    assert c.post("/api/v1/cameras", json={"name": "Door", "brand": "instar", "model": MODEL}).status_code == 201
    login(page, site.url, "waiting@example.org")
    empty = page.locator("section.empty")
    assert "No alarms yet." in empty.inner_text()
    assert "Nothing after a test alarm?" in empty.inner_text()
    # notifications are off on a new account: the empty timeline says so and where to switch them on
    assert "You are not told about alarms yet" in empty.inner_text()
    assert empty.get_by_role("link", name="Notifications").get_attribute("href") == "/notifications"
    empty.get_by_role("link", name="Cameras").click()
    page.wait_for_url(site.url + "/cameras")
    assert "No clip received yet" in page.locator(".cam-list").inner_text()
    assert c.patch("/api/v1/me", json={"notify_email": True}).is_success
    page.goto(site.url + "/")
    assert "No alarms yet." in page.locator("section.empty").inner_text()
    assert "You are not told about alarms yet" not in page.locator("section.empty").inner_text()
