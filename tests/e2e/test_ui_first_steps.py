"""A first-time owner in a real browser: upload settings a camera can use, whether the camera has sent anything yet,
and a clip page that explains its verdict."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import (  # noqa: E402
    MODEL,
    OPERATOR,
    OWNER,
    PASSWORD,
    Site,
    login,
    make_accepted_clip,
    opened_page,
    owner_api,
)

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
    arrived = api.get(f"/api/v1/cameras/{cam['id']}").json()["last_clip_at"]  # arrival, not recording time

    page.goto(site.url + "/cameras")
    card = page.locator(".cam-list li").filter(has=page.get_by_role("heading", name="Shed"))
    assert "No clip received yet" not in card.inner_text()
    assert card.locator("[data-last-clip] time").get_attribute("datetime") == arrived
    page.goto(site.url + f"/cameras/{cam['id']}")
    link = page.locator("[data-last-clip]").get_by_role("link")
    assert "Last clip received:" in page.locator("[data-last-clip]").inner_text()
    assert page.locator("[data-last-clip] time").get_attribute("datetime") == arrived
    link.click()
    page.wait_for_url(re.compile(f"/events/{event_id}$"))
    # the clip page says why nothing was found, and where to change that
    page.get_by_text("No detector is switched on for this camera").wait_for()
    page.get_by_role("link", name="switch them on on the camera's page").click()
    page.wait_for_url(re.compile(f"/cameras/{cam['id']}#detectors$"))


def test_a_real_alarm_without_findings_says_why_it_counts(page: Any, site: Site) -> None:
    api = owner_api(site)
    items = api.get("/api/v1/events", params={"limit": 100}).json()["items"]
    watched = {c["id"] for c in api.get("/api/v1/cameras").json()["items"] if any(c["detectors"].values())}
    plain = next(e for e in items if e["verdict"] == "alarm" and not e["findings"] and e["camera_id"] in watched)
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
    title = {"rain": "Rain and snow", "plates": "Licence plates"}[f["detector"]]  # the plugins' titles
    assert f"{title} detector · {f['score'] * 100:.0f}% sure" in line


def test_the_local_address_refuses_a_url_and_enables_the_controls(page: Any, site: Site) -> None:
    api = owner_api(site)
    cam = api.post("/api/v1/cameras", json={"name": "Gate", "brand": "instar", "model": MODEL}).json()
    login(page, site.url, OWNER)
    page.goto(site.url + f"/cameras/{cam['id']}")
    # without an address the controls cannot work: they are off and say what they need
    controls = page.locator("section.card").filter(has=page.get_by_role("heading", name="Controls"))
    assert "Enter the camera's local address under Connection to use the controls." in controls.inner_text()
    assert controls.get_by_role("group", name="Motion detection").get_by_role("button", name="On").is_disabled()
    form = page.locator("form[data-connection]")
    field = form.get_by_label("Local address")
    field.fill("http://192.168.1.20/")
    form.get_by_role("button", name="Save").click()
    assert field.evaluate("el => el.validity.patternMismatch")
    assert field.evaluate("el => el.validationMessage") == (
        "Enter an IP address or host name only, e.g. 192.168.1.20 (no http:// and no path).")
    assert api.get(f"/api/v1/cameras/{cam['id']}").json()["has_address"] is False
    # a plain address is taken
    field.fill("192.168.1.20")
    with page.expect_navigation():  # saved, the page reloads itself (a goto of ours could cut into that reload)
        form.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    assert api.get(f"/api/v1/cameras/{cam['id']}").json()["has_address"] is True
    assert page.get_by_text("Camera saved.").is_visible()
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
    remove = page.get_by_text("Remove the saved token")
    assert remove.count() == 2  # the push card's and the Telegram card's, neither with a token saved
    assert all(remove.nth(i).is_hidden() for i in range(remove.count()))


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


def test_upload_settings_warn_about_a_loopback_ftp_server_too(page: Any, site: Site) -> None:
    # HTTP uploads go to a LAN address, but the FTP server name (ftp.public_host) is this computer's loopback
    def fake_credentials(route: Any) -> None:
        route.fulfill(status=201, content_type="application/json", body=json.dumps({
            "username": "cam-x", "password": "secret", "http_url": "http://192.168.7.23:8000/api/v1/ingest/clips",
            "ftp_host": "localhost", "ftp_port": 2121, "ftps": False}))

    page.route("**/upload-credentials", fake_credentials)
    login(page, site.url, OWNER)
    page.goto(site.url + "/cameras")
    page.get_by_label("Name", exact=True).fill("Carport")
    page.get_by_label("Model").select_option(MODEL)
    page.get_by_role("button", name="Add camera").click()
    panel = page.locator("#credentials")
    panel.wait_for(state="visible")
    assert panel.get_by_label("FTP server").input_value() == "localhost"
    warning = panel.locator("[data-cred-local]")
    assert warning.is_visible()
    assert "A camera cannot reach localhost" in warning.inner_text()
    assert "192.168.7.23" not in warning.inner_text()  # the HTTP address is fine: only the FTP server is named
    assert "HTTP and FTP then listen on the network" in warning.inner_text()


def test_a_wide_table_on_a_phone_says_that_it_scrolls_sideways(chromium: Any, site: Site) -> None:
    state = """w => ({over: w.scrollWidth > w.clientWidth + 1, hint: !w.previousElementSibling.hidden,
                    text: w.previousElementSibling.textContent, tab: w.getAttribute("tabindex"),
                    label: w.getAttribute("aria-label"), shadows: getComputedStyle(w).backgroundImage,
                    left: w.classList.contains("more-left"), right: w.classList.contains("more-right")})"""
    with opened_page(chromium, 390, 844) as page:
        login(page, site.url, OPERATOR)
        page.goto(site.url + "/operator")
        wraps = page.locator(".table-wrap")
        assert wraps.count() == 3
        for i in range(3):
            s = wraps.nth(i).evaluate(state)
            assert s["over"] and s["hint"], s  # the operator's tables are wider than a phone
            assert s["text"] == "Scroll sideways for more columns →"
            assert s["tab"] == "0"  # keyboard users can scroll it too
            # a shadow marks the right edge, where the other columns are; none on the left before it scrolls
            assert s["right"] and not s["left"] and s["shadows"].count("linear-gradient") == 1, s
        plugins = wraps.first
        assert plugins.evaluate(state)["label"] == "Plugins (scrolls sideways)"
        assert page.get_by_text("Scroll sideways for more columns →").first.is_visible()
        # arrow keys scroll the focused table; at its end the hint points back
        plugins.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.querySelector('.table-wrap').scrollLeft > 0")
        plugins.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
        page.wait_for_function("() => document.querySelector('.scroll-hint').textContent.startsWith('←')")
        at_end = plugins.evaluate(state)
        assert at_end["text"] == "← Scroll back for the first columns"
        assert at_end["left"] and not at_end["right"] and at_end["shadows"].count("linear-gradient") == 1, at_end
        plugins.evaluate("w => { w.scrollLeft = 20; }")
        page.wait_for_function("() => document.querySelector('.table-wrap').classList.contains('more-right')")
        assert plugins.evaluate(state)["shadows"].count("linear-gradient") == 2  # columns on both sides
    with opened_page(chromium, 1280, 800) as page:
        login(page, site.url, OPERATOR)
        page.goto(site.url + "/operator")
        for w in page.locator(".table-wrap").all():
            s = w.evaluate(state)
            assert not s["over"] and not s["hint"] and s["tab"] is None, s  # nothing to scroll: no hint
            assert s["shadows"] == "none" and not s["left"] and not s["right"], s  # and no edge shadow
        assert page.get_by_text("Scroll sideways").first.is_hidden()


def test_detectors_brands_and_plugins_show_their_titles_not_entry_names(page: Any, chromium: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    page.goto(site.url + f"/cameras/{site.camera_id}")
    card = page.locator("#detectors")
    titles = card.locator(".switch strong").all_inner_texts()
    assert {"Licence plates", "Rain and snow"} <= set(titles) and titles == sorted(titles, key=str.lower)
    names = [i.get_attribute("data-detector") for i in card.locator("input[data-detector]").all()]
    assert all(t[0].isupper() and t != n for t, n in zip(titles, names, strict=True)), (titles, names)
    assert page.locator("h1 time").inner_text().startswith("INSTAR · ")
    rain = card.locator('input[data-detector="rain"]')  # the API still gets the entry name
    was_on = rain.is_checked()
    rain.click()
    page.locator(".flash").get_by_text(f"Rain and snow detection switched {'off' if was_on else 'on'}.").wait_for()
    assert owner_api(site).get(f"/api/v1/cameras/{site.camera_id}/detectors").json()["enabled"]["rain"] is not was_on
    rain.click()
    page.locator(".flash").get_by_text(f"Rain and snow detection switched {'on' if was_on else 'off'}.").wait_for()

    page.goto(site.url + "/cameras")
    garden = page.locator(".cam-list li").filter(has=page.get_by_role("heading", name="Garden"))
    assert "Detectors: Rain and snow" in garden.inner_text()
    assert "INSTAR · " in garden.inner_text()
    brand = page.get_by_label("Brand")
    assert brand.locator("option").all_inner_texts()[0] == "INSTAR"
    assert brand.input_value() == "instar"

    items = owner_api(site).get("/api/v1/events", params={"limit": 100}).json()["items"]
    plate = next(e for e in items if any(f["detector"] == "plates" for f in e["findings"]))
    page.goto(site.url + f"/events/{plate['id']}")
    assert "Licence plates detector · 93% sure" in page.locator("ul.findings").inner_text()

    with opened_page(chromium, 1280, 800) as op:
        login(op, site.url, OPERATOR)
        op.goto(site.url + "/operator")
        rows = op.locator(".table-wrap").first.locator("tbody tr")
        names = [rows.nth(i).locator("td").nth(1).inner_text().split("\n") for i in range(rows.count())]
    assert ["Licence plates", "plates"] in names and ["Google Home", "google_home"] in names
    assert ["IFTTT", "ifttt"] in names and ["INSTAR", "instar"] in names
    # one plugin, both of its detectors
    assert ["Rain and snow", "Insects and spider webs at the IR lamp", "rain"] in names


def test_the_day_filter_label_lines_up_with_the_other_filter_labels(chromium: Any, site: Site) -> None:
    measure = """() => Array.from(document.querySelectorAll(".filters .field")).map((f) => {
        const label = f.querySelector("label").getBoundingClientRect();
        const box = f.querySelector("input:not([type=hidden]), select").getBoundingClientRect();
        return {name: f.querySelector("label").textContent, top: label.top, bottom: box.bottom, height: box.height};
    })"""
    for width, height in ((390, 844), (1280, 800)):
        with opened_page(chromium, width, height) as page:
            login(page, site.url, OWNER)
            fields = page.evaluate(measure)
            assert [f["name"] for f in fields] == ["Camera", "Day", "Label", "Verdict", "Plate", "Cars", "Kept"]  # the owner
            day = next(f for f in fields if f["name"] == "Day")
            row = [f for f in fields if abs(f["bottom"] - day["bottom"]) < 2 and f is not day]
            assert row, fields  # Day shares its row with other filters (Camera on a phone, all on a desktop)
            for other in row:
                assert abs(other["top"] - day["top"]) <= 2, (width, day, other)
            # every filter control is as tall as the others
            assert max(f["height"] for f in fields) - min(f["height"] for f in fields) <= 1, fields
