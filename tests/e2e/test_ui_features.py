"""The web UI's features one by one in a real browser, against a seeded deployment (see ``conftest.site``).

Accounts and CSRF, timeline filters and paging, the clip page, camera controls against a fake INSTAR camera,
storage charts, linked services and the OAuth consent page, the privacy center, the operator page, empty states.
Tests that delete things come last.
"""

from __future__ import annotations

import re
import sys
import zipfile
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import OPERATOR, OWNER, PASSWORD, REDIRECT, Site, login, opened_page  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium: Any, site: Site) -> Any:
    with opened_page(chromium, 1280, 900, timezone_id="UTC") as pg:
        yield pg


def api(site: Site, email: str = OWNER, password: str = PASSWORD) -> httpx.Client:
    c = httpx.Client(base_url=site.url, timeout=30)
    r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = c.cookies["ac_csrf"]
    return c


def cards(page: Any) -> list[str]:
    return page.eval_on_selector_all(".event", "els => els.map((e) => e.dataset.eventId)")


def clips_by_verdict(site: Site) -> dict[str, Any]:
    from alarmcloud.models import Clip, FindingRow
    from sqlmodel import select

    with site.core.db.session() as s:  # type: ignore[attr-defined]
        clips = s.exec(select(Clip)).all()
        plates = s.exec(select(FindingRow).where(FindingRow.label == "plate")).all()
        return {"clips": [(c.id, c.camera_id, c.verdict, c.started_at) for c in clips],
                "plate_clips": {f.clip_id for f in plates}}


# ---------------------------------------------------------------- accounts and CSRF


def test_log_in_errors_next_page_log_out_and_password_change(page: Any, site: Site) -> None:
    base = site.url
    # a protected page sends to the login page and back after logging in
    page.goto(base + "/storage")
    assert "/login?next=%2Fstorage" in page.url
    page.get_by_label("E-mail address").fill(OWNER)
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert re.search(r"e-mail|password", alert.inner_text(), re.I), alert.inner_text()
    assert "/login" in page.url
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/storage")

    # password change: the wrong current password is refused with a message, the right one works
    page.get_by_role("link", name="Account").click()
    form = page.locator("form[data-method=PATCH]")
    form.get_by_label("Current password").fill("not my password")
    form.get_by_label("New password").fill("a brand new secret 42")
    form.get_by_role("button", name="Change password").click()
    form.get_by_role("alert").wait_for()
    assert form.get_by_role("alert").inner_text()
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password").fill("a brand new secret 42")
    form.get_by_role("button", name="Change password").click()
    page.locator(".flash").get_by_text("Password changed.").wait_for()
    assert httpx.post(base + "/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 401

    # log out: the session is gone, pages send to the login page again
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto(base + "/cameras")
    assert "/login" in page.url

    # put the password back for the other tests
    c = api(site, password="a brand new secret 42")
    assert c.patch("/api/v1/me", json={"current_password": "a brand new secret 42",
                                       "password": PASSWORD}).status_code == 200


def test_without_javascript_no_password_lands_in_a_url(chromium: Any, site: Site) -> None:
    ctx = chromium.new_context(java_script_enabled=False)
    page = ctx.new_page()
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(site.url + "/login")
    assert "needs JavaScript" in page.locator("main").inner_text()
    page.get_by_label("E-mail address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert not [u for u in seen if "password" in u or "horse" in u], seen
    ctx.close()


def test_sign_up_errors_are_clear(page: Any, site: Site) -> None:
    page.goto(site.url + "/signup")
    page.get_by_label("E-mail address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert re.search(r"already|exists|registered|taken", alert.inner_text(), re.I), alert.inner_text()
    # the browser itself refuses a short password before anything is sent
    page.get_by_label("E-mail address").fill("new@example.org")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    assert page.eval_on_selector("input[name=password]", "el => !el.validity.valid")
    assert "/signup" in page.url


def test_every_change_the_ui_makes_carries_the_csrf_token(page: Any, site: Site) -> None:
    """Each non-GET request the pages send has X-CSRF-Token = the ac_csrf cookie; without it the server refuses."""
    sent: list[tuple[str, str, str | None]] = []
    page.on("request", lambda r: sent.append((r.method, r.url, r.headers.get("x-csrf-token")))
            if r.method not in ("GET", "HEAD") else None)
    login(page, site.url, OWNER)
    page.goto(site.url + f"/cameras/{site.camera_id}")
    page.locator('input[data-detector="plates"]').check()
    page.locator(".flash").get_by_text("Licence plates detection switched on").wait_for()
    page.locator('input[data-detector="plates"]').uncheck()
    page.locator(".flash").get_by_text("Licence plates detection switched off").wait_for()
    page.goto(site.url + "/notifications")
    page.get_by_role("button", name="Save").click()
    page.locator(".flash").get_by_text("E-mail notifications saved.").wait_for()
    page.goto(site.url + f"/events/{site.event_id}")
    page.get_by_role("button", name="Not rain").click()
    page.locator(".sent").wait_for()
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "ac_csrf")
    changes = [s for s in sent if "/api/v1/auth/login" not in s[1]]
    assert len(changes) >= 4, sent
    assert all(token == cookie for _, _, token in changes), changes

    # the same requests without the header are refused (the session cookie alone is not enough)
    req = page.context.request
    r = req.put(site.url + f"/api/v1/cameras/{site.camera_id}/detectors", data={"plates": True})
    assert r.status == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = req.post(site.url + f"/api/v1/events/{site.event_id}/feedback",
                 data={"detector": "rain", "label": "rain", "release": True})
    assert r.status == 403
    # the OAuth consent form is a plain HTML form with its own hidden token
    consent = site.url + site.owner_pages()["consent"]
    r = req.post(consent, form={"decision": "approve"}, max_redirects=0)
    assert r.status == 403
    page.goto(consent)
    assert page.locator("form input[type=hidden][name=csrf_token]").get_attribute("value") == cookie


def test_phone_menu(chromium: Any, site: Site) -> None:
    ctx = chromium.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    page = ctx.new_page()
    login(page, site.url, OWNER)
    nav = page.get_by_role("navigation", name="Main")
    assert not nav.get_by_role("link", name="Storage").is_visible()
    toggle = page.get_by_role("button", name="Menu")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    nav.get_by_role("link", name="Storage").click()
    page.wait_for_url(site.url + "/storage")
    ctx.close()


def test_a_login_form_on_another_site_cannot_log_the_browser_in(page: Any, site: Site) -> None:
    """Login CSRF: a text/plain form elsewhere can carry a JSON body; the server refuses it by its Origin."""
    field = '{"email": "' + OWNER + '", "password": "' + PASSWORD + '", "pad": "'
    html = (f"<form method=post enctype=text/plain action='{site.url}/api/v1/auth/login'>"
            f"<input type=hidden name='{field}' value='\"}}'></form><script>document.forms[0].submit()</script>")
    page.route("http://attacker.test/**", lambda r: r.fulfill(status=200, content_type="text/html", body=html))
    with page.expect_response(site.url + "/api/v1/auth/login") as resp:
        page.goto("http://attacker.test/")
    assert resp.value.status == 403
    assert not [c for c in page.context.cookies() if c["name"] == "ac_session"]


# ---------------------------------------------------------------- timeline


def test_timeline_newest_first_with_pages(page: Any, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from alarmcloud.web import pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    data = clips_by_verdict(site)
    newest_first = [c[0] for c in sorted(data["clips"], key=lambda c: c[3], reverse=True)]
    login(page, site.url, OWNER)
    # the server sends one page of cards and a "Load more" button for the next
    html = page.context.request.get(site.url + "/").text()
    assert re.findall(r'data-event-id="(\w+)"', html) == newest_first[:2]
    assert "data-more=" in html
    # in the browser the next pages load by themselves while the end of the list is in view
    page.wait_for_function(f"() => document.querySelectorAll('.event').length === {len(newest_first)}")
    page.wait_for_function("() => [...document.querySelectorAll('.event img')].every((i) => i.complete "
                           "&& i.naturalWidth > 0)")
    assert page.locator(".event .badge").count() == len(newest_first)
    assert page.get_by_role("button", name="Load more").count() == 0
    assert cards(page) == newest_first
    times = page.eval_on_selector_all(".event time", "els => els.map((e) => e.getAttribute('datetime'))")
    assert times == sorted(times, reverse=True)
    # the plate text is on the card of the clip with the plate
    plate_card = page.locator(f'.event[data-event-id="{next(iter(data["plate_clips"]))}"]')
    assert plate_card.locator(".plate").inner_text() == "B AC 1234"


def test_timeline_filters(page: Any, site: Site) -> None:
    data = clips_by_verdict(site)
    login(page, site.url, OWNER)
    form = page.get_by_role("form", name="Filter alarms")

    def apply(**values: str) -> list[str]:
        page.goto(site.url + "/")
        for label, value in values.items():
            field = form.get_by_label(label, exact=True)
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(label=value)
            else:
                field.fill(value)
        form.get_by_role("button", name="Filter").click()
        page.wait_for_load_state("networkidle")
        return sorted(cards(page))

    rain = sorted(c[0] for c in data["clips"] if c[2] == "false_alarm:rain")
    assert rain and apply(Verdict="Rain") == rain
    real = sorted(c[0] for c in data["clips"] if c[2] == "alarm")
    assert apply(Verdict="Real alarm") == real
    cams = api(site).get("/api/v1/cameras").json()["items"]
    garden = next(c["id"] for c in cams if c["name"] == "Garden")
    assert apply(Camera="Garden") == sorted(c[0] for c in data["clips"] if c[1] == garden)
    assert apply(Label="plate") == sorted(data["plate_clips"])
    assert apply(Plate="b ac 1235") == sorted(data["plate_clips"])  # whole plate, one OCR slip allowed
    one = data["clips"][0]
    day = one[3].replace(tzinfo=one[3].tzinfo or UTC).astimezone(UTC).date()
    same_day = sorted(c[0] for c in data["clips"]
                      if c[3].replace(tzinfo=c[3].tzinfo or UTC).astimezone(UTC).date() == day)
    assert apply(Day=day.isoformat()) == same_day
    # the filters stay in the form and can be cleared; nothing found says so
    assert apply(Plate="ZZ 9999") == []
    assert form.get_by_label("Plate").input_value() == "ZZ 9999"
    page.get_by_text("No alarms match these filters.").wait_for()
    page.get_by_role("link", name="Clear").click()
    page.wait_for_url(site.url + "/")
    assert len(cards(page)) == len(data["clips"])


def test_day_filter_means_the_day_where_the_browser_is(chromium: Any, site: Site) -> None:
    """A clip at 23:30 UTC on 10 January is on 11 January in Berlin; the filter follows the browser's zone."""
    from datetime import datetime

    from alarmcloud.models import Clip

    data = clips_by_verdict(site)
    late = data["clips"][-1][0]
    with site.core.db.session() as s:  # type: ignore[attr-defined]
        clip = s.get(Clip, late)
        original = clip.started_at
        clip.started_at = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
        s.add(clip)
        s.commit()
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
    page = ctx.new_page()
    try:
        login(page, site.url, OWNER)
        for day, expected in (("2026-01-11", [late]), ("2026-01-10", [])):
            page.goto(site.url + "/")
            page.get_by_label("Day").fill(day)
            page.get_by_role("button", name="Filter").click()
            page.wait_for_load_state("networkidle")
            assert cards(page) == expected, day
        assert "tz=-60" in page.url
    finally:
        ctx.close()
        with site.core.db.session() as s:  # type: ignore[attr-defined]
            clip = s.get(Clip, late)
            clip.started_at = original
            s.add(clip)
            s.commit()


# ---------------------------------------------------------------- clip page


def test_clip_page_findings_seek_the_video(page: Any, site: Site) -> None:
    plate_clip = next(iter(clips_by_verdict(site)["plate_clips"]))
    login(page, site.url, OWNER)
    page.goto(site.url + f"/events/{plate_clip}")
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1")
    finding = page.locator(".findings li", has_text="B AC 1234")
    assert "1.2 s" in finding.inner_text()
    finding.get_by_role("button", name=re.compile("Jump to 1.2 s")).click()
    page.wait_for_function("() => Math.abs(document.querySelector('#player').currentTime - 1.2) < 0.3")
    # the plate's box is drawn over the picture around its time, where the detector found it
    page.evaluate("() => { const v = document.querySelector('#player'); v.pause(); v.currentTime = 1.2; }")
    overlay = page.locator(".finding-box", has_text="plate B AC 1234")
    overlay.wait_for(state="visible")
    placed = page.evaluate("""() => {
        const v = document.querySelector('#player'), b = document.querySelector('.finding-box');
        const s = Math.min(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight);
        const pw = v.videoWidth * s, ph = v.videoHeight * s;
        const px = (v.clientWidth - pw) / 2, py = (v.clientHeight - ph) / 2;
        const vr = v.getBoundingClientRect(), br = b.getBoundingClientRect();
        return [(br.left - vr.left - px) / pw, (br.top - vr.top - py) / ph,
                (br.right - vr.left - px) / pw, (br.bottom - vr.top - py) / ph];
    }""")
    assert placed == pytest.approx([0.40, 0.60, 0.62, 0.70], abs=0.02)
    # and gone away from it
    page.evaluate("() => { const v = document.querySelector('#player'); v.pause(); v.currentTime = 4.0; }")
    overlay.wait_for(state="hidden")
    # the clip can be downloaded as the MP4 the camera sent
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download the clip").click()
    assert Path(dl.value.path()).read_bytes()[4:8] == b"ftyp"
    # the feedback form explains the consent box, which is off by default
    box = page.get_by_label(re.compile("Release this clip"))
    assert not box.is_checked()


# ---------------------------------------------------------------- cameras


def test_add_camera_shows_the_upload_settings_once(page: Any, site: Site) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    login(page, site.url, OWNER)
    page.goto(site.url + "/cameras")
    # a name of blanks is refused by the server with a message in the form
    page.get_by_label("Name", exact=True).fill("   ")
    page.get_by_role("button", name="Add camera").click()
    page.locator("form[data-add-camera] [role=alert]").wait_for()
    assert "name" in page.locator("form[data-add-camera] [role=alert]").inner_text()
    page.get_by_label("Name", exact=True).fill("Porch")
    page.get_by_label("Brand").select_option("instar")
    models = page.eval_on_selector_all("#model option", "os => os.map((o) => o.value)")
    assert "IN-9008 Full HD" in models
    page.get_by_label("Model").select_option("IN-9008 Full HD")
    page.get_by_role("button", name="Add camera").click()
    panel = page.locator("#credentials")
    panel.wait_for(state="visible")
    values = {k: page.input_value(f"#cred-{k}") for k in ("username", "password", "http", "ftp-host", "ftp-port")}
    assert all(values.values()), values
    assert values["http"].endswith("/api/v1/ingest/clips")
    panel.get_by_role("button", name="Copy").nth(1).click()
    assert page.evaluate("navigator.clipboard.readText()") == values["password"]
    # the password works for an upload, and it is not shown again on the camera's page
    assert httpx.post(site.url + "/api/v1/ingest/clips", content=b"not a video", timeout=30,
                      auth=(values["username"], values["password"])).status_code != 401
    page.locator("#new-camera-link").click()
    page.wait_for_url(re.compile(r"/cameras/\w+"))
    assert values["password"] not in page.content()
    assert page.locator("#credentials").is_hidden()
    # a new password needs a confirmation, because the camera stops uploading until it gets it
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="New upload password").click()
    assert page.locator("#credentials").is_hidden()


def test_camera_connection_controls_snapshot_and_setup(page: Any, site: Site) -> None:
    from alarmcloud_camera_instar.testing import FakeInstarCamera

    # a pan-tilt model, so the preset control is there too
    cam = api(site).post("/api/v1/cameras", json={"name": "Hall", "brand": "instar", "model": "IN-8015"}).json()
    assert cam["model"] == "IN-8015 Full HD"
    with FakeInstarCamera("fullhd", password="S3cret!pass") as fake:
        login(page, site.url, OWNER)
        page.goto(site.url + f"/cameras/{cam['id']}")
        assert page.get_by_role("button", name="Take snapshot").is_disabled()
        form = page.locator("form[data-connection]")
        form.get_by_label("Local address").fill("127.0.0.1")
        form.get_by_label("HTTP port").fill(str(fake.port))
        form.get_by_label("Camera user name").fill("admin")
        form.get_by_label("Camera password").fill("S3cret!pass")
        form.get_by_role("button", name="Save").click()
        page.locator(".flash").get_by_text("Camera saved.").wait_for()
        assert page.get_by_role("button", name="Take snapshot").is_enabled()

        page.get_by_role("button", name="Take snapshot").click()
        page.wait_for_function("() => { const i = document.querySelector('.snapshot img'); "
                               "return i && !i.hidden && i.complete && i.naturalWidth > 0; }")

        # live view: a new picture every 2 s until stopped
        def pictures() -> int:
            return sum(1 for r in list(fake.requests) if r.authorized and "snap" in r.path)

        before = pictures()
        page.get_by_role("button", name="Start live view").click()
        page.locator("#live-state").get_by_text("Live: picture of").wait_for()
        deadline = before + 3
        for _ in range(100):
            if pictures() >= deadline:
                break
            page.wait_for_timeout(100)
        assert pictures() >= deadline, "live view did not keep fetching pictures"
        stop = page.get_by_role("button", name="Stop live view")
        assert stop.get_attribute("aria-pressed") == "true"
        stop.click()
        page.locator("#live-state").get_by_text("Live view stopped.").wait_for()
        stopped = pictures()
        page.wait_for_timeout(2500)  # longer than one live-view period
        assert pictures() <= stopped + 1  # at most the picture already on its way
        assert page.get_by_role("button", name="Start live view").get_attribute("aria-pressed") == "false"

        controls = page.locator("[data-controls]")

        def sent() -> None:
            page.locator(".flash").get_by_text("Sent to the camera.").wait_for()
            page.locator(".flash").evaluate("e => { e.hidden = true; e.textContent = ''; }")

        controls.get_by_role("group", name="Motion detection").get_by_role("button", name="Off").click()
        sent()
        assert all(a["enable"] == "0" for a in fake.state["areas"].values())
        assert page.locator("#md-state").inner_text() == "(off)"
        controls.get_by_role("group", name="Alarm e-mail").get_by_role("button", name="On").click()
        sent()
        assert fake.state["mdalarm"]["emailsnap"] == "on"
        controls.get_by_label("Alarm area").select_option("2")
        controls.get_by_role("button", name="On", exact=True).nth(2).click()
        sent()
        assert fake.state["areas"][2]["enable"] == "1"
        controls.get_by_label("Area sensitivity").fill("80")
        controls.get_by_role("button", name="Set", exact=True).click()
        sent()
        assert fake.state["areas"][2]["s"] == "80"
        controls.get_by_label("Go to preset").fill("3")
        controls.get_by_role("button", name="Go", exact=True).click()
        sent()
        assert fake.state["preset"] == 2  # the web UI's position 3 is CGI number 2 (0-based)

        page.get_by_role("button", name="One-click setup").click()
        result = page.locator("#setup-result")
        result.wait_for(state="visible")
        assert "Done" in result.inner_text(), result.inner_text()
        # the page now names the upload login the camera was given
        page.wait_for_function("u => document.querySelector('#upload-user').textContent === u",
                               arg=fake.state["ftp"]["-ft_username"])

        # a camera that cannot be reached gives a message, not a hang
        fake.mode = "refuse"
        send_btn = controls.get_by_role("group", name="Motion detection").get_by_role("button", name="On")
        send_btn.click()
        bad = page.locator(".flash.bad")
        bad.wait_for()
        assert bad.inner_text()
        page.locator(".flash").evaluate("e => { e.hidden = true; e.className = 'flash'; }")
        page.get_by_role("button", name="Take snapshot").click()
        page.locator(".flash.bad").get_by_text("No snapshot").wait_for()
        assert page.locator(".snapshot").evaluate("e => e.classList.contains('no-image')")
        # the live view stops by itself and says why
        page.locator(".flash").evaluate("e => { e.hidden = true; e.className = 'flash'; }")
        page.get_by_role("button", name="Start live view").click()
        page.locator(".flash.bad").get_by_text("Live view stopped").wait_for()
        assert page.get_by_role("button", name="Start live view").get_attribute("aria-pressed") == "false"


def test_camera_page_shows_fair_use_and_detectors(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    page.goto(site.url + f"/cameras/{site.camera_id}")
    notice = page.locator("#fair-use")
    assert "low priority" in notice.inner_text().lower()
    assert "more than 300 alarm clips" in notice.inner_text()
    page.goto(site.url + "/cameras")
    assert "more than 300 alarm clips" in page.locator(".cam-list").inner_text()
    # another camera in the normal state says so
    other = next(c for c in api(site).get("/api/v1/cameras").json()["items"] if c["id"] != site.camera_id)
    page.goto(site.url + f"/cameras/{other['id']}")
    assert "normal" in page.locator("#fair-use").inner_text()
    switches = page.locator("input[data-detector]")
    assert switches.count() >= 2


# ---------------------------------------------------------------- storage and statistics


def test_storage_page_gauge_usage_and_charts(page: Any, site: Site) -> None:
    status = api(site).get("/api/v1/storage").json()
    stats = api(site).get("/api/v1/stats?days=14").json()["days"]
    login(page, site.url, OWNER)
    page.goto(site.url + "/storage")
    gauge = page.locator(".gauge-box svg")
    # a small but real use reads "<1%", not "0%" (the demo clips are tiny against the quota)
    ratio = status["used_ratio"]
    assert gauge.locator("text").text_content() == ("<1%" if 0 < ratio < 0.005 else f"{ratio * 100:.0f}%")
    # the quota reads as it is set: 10 * 1024**3 bytes is "10 GB", not "10.7 GB"
    quota = status["quota_bytes"]
    if quota % 1024**3 == 0:
        assert f"of {quota // 1024**3} GB used" in page.locator(".gauge-box").inner_text()
    usage = page.locator("ul.usage li")
    assert usage.count() == len(status["per_camera"]) == 2
    assert "Driveway" in page.locator("ul.usage").inner_text()
    charts = page.locator("svg.chart[role=img]")
    assert charts.count() == 3
    # one bar group per day, each titled with that day's counts, heights in proportion
    groups = page.locator("svg.chart").nth(1).locator("g")
    assert groups.count() == 14
    titles = groups.evaluate_all("gs => gs.map((g) => g.querySelector('title').textContent)")
    assert titles == [f'{d["day"]}: {d["alarms"]} alarms, {d["false_alarms"]} false alarms' for d in stats]
    heights = groups.evaluate_all("gs => gs.map((g) => parseFloat(g.querySelector('.bar-alarm').getAttribute('height')))")
    busiest = max(range(14), key=lambda i: stats[i]["alarms"])
    assert heights[busiest] == max(heights) > 0
    # the newest day is labelled on the axis as "21 Nov", not "11-21"
    from datetime import date

    newest = date.fromisoformat(stats[-1]["day"])
    ticks = page.locator("svg.chart").nth(1).locator("text.tick").all_text_contents()
    assert ticks[-1] == f"{newest.day} {newest.strftime('%b')}"
    dots = page.locator("svg.chart").nth(2).locator("circle")
    assert dots.count() == sum(1 for d in stats if d["false_alarm_rate"] is not None)


# ---------------------------------------------------------------- linked services and consent


def test_consent_page_and_linked_services(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    landed: list[str] = []
    page.route(REDIRECT + "**", lambda route: (landed.append(route.request.url),
                                              route.fulfill(status=200, body="linked"))[1])
    page.goto(site.url + site.owner_pages()["consent"])
    page.get_by_role("heading", name="Link Home Automation").wait_for()
    text = page.locator("main").inner_text()
    assert "See your alarm events" in text and "Control your cameras" in text
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"^https://example\.com/callback"))
    query = parse_qs(urlsplit(landed[-1]).query)
    assert query["state"] == ["xyz"] and query["code"][0]

    page.goto(site.url + "/links")
    item = page.locator("#links li", has_text="Home Automation").first
    item.wait_for()
    assert "alarms:read" in item.inner_text() and "See your alarm events" in item.inner_text()
    page.once("dialog", lambda d: d.dismiss())
    item.get_by_role("button", name="Revoke Home Automation").click()
    assert api(site).get("/api/v1/me/links").json()["items"]
    page.once("dialog", lambda d: d.accept())
    item.get_by_role("button", name="Revoke Home Automation").click()
    page.locator(".flash").get_by_text("Link revoked.").wait_for()
    assert api(site).get("/api/v1/me/links").json()["items"] == []
    page.reload()
    page.get_by_text("No services are linked to your account.").wait_for()
    # the consent history keeps the grant, marked withdrawn
    page.goto(site.url + "/privacy-center")
    history = page.locator("#consents")
    history.locator("li").first.wait_for()
    grant = history.locator("li", has_text="Home Automation").first
    assert "withdrawn" in grant.inner_text()


def test_releasing_a_clip_and_withdrawing_it(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    page.goto(site.url + f"/events/{site.event_id}")
    page.get_by_label(re.compile("Release this clip")).check()
    page.get_by_role("button", name="This was rain").click()
    page.locator(".sent").get_by_text("marked as rain").wait_for()
    released = site.core.settings.data_dir / "training"  # type: ignore[attr-defined]
    assert list(released.rglob(f"{site.event_id}.mp4"))
    page.goto(site.url + "/privacy-center")
    item = page.locator("#consents li", has_text="Clip released").first
    item.wait_for()
    page.once("dialog", lambda d: d.accept())
    item.get_by_role("button", name=re.compile("Withdraw")).click()
    page.locator(".flash").get_by_text("Consent withdrawn.").wait_for()
    page.locator("#consents li", has_text="withdrawn").first.wait_for()
    assert not list(released.rglob(f"{site.event_id}.mp4"))


# ---------------------------------------------------------------- privacy center


def test_privacy_center_restriction_and_export(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    page.goto(site.url + "/privacy-center")
    switch = page.get_by_role("switch", name=re.compile("Restrict processing"))
    page.wait_for_load_state("networkidle")
    assert not switch.is_checked()
    switch.check()
    page.locator(".flash").get_by_text("Processing restricted").wait_for()
    assert api(site).get("/api/v1/me").json()["restricted"] is True
    page.reload()
    page.wait_for_load_state("networkidle")
    assert switch.is_checked()
    switch.uncheck()
    page.locator(".flash").get_by_text("Processing allowed again.").wait_for()
    assert api(site).get("/api/v1/me").json()["restricted"] is False

    page.get_by_role("button", name="Export my data").click()
    assert page.locator("#export-progress").is_visible()
    page.locator("#export-download").wait_for(timeout=60_000)
    assert page.locator("#export-progress").evaluate("p => p.value") == 1
    with page.expect_download() as dl:
        page.locator("#export-download").click()
    path = dl.value.path()
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert any(n.endswith(".mp4") for n in names), names


# ---------------------------------------------------------------- notifications


def test_webhook_form_errors_secret_once_and_removal(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    page.goto(site.url + "/notifications")
    form = page.locator("form[data-add-webhook]")
    form.get_by_label("URL").fill("ftp://example.org/hook")
    form.get_by_role("button", name="Add webhook").click()
    form.get_by_role("alert").wait_for()
    assert form.get_by_role("alert").inner_text()[0].isupper()
    assert api(site).get("/api/v1/webhooks").json()["items"] == []
    form.get_by_label("URL").fill("http://127.0.0.1:9/alarmcloud")
    form.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#webhook-secret-value")
    secret.wait_for(state="visible")
    assert len(secret.input_value()) >= 20
    page.locator("#webhooks li", has_text="127.0.0.1:9/alarmcloud").first.wait_for()
    page.reload()
    assert page.locator("#webhook-secret").is_hidden()
    row = page.locator("#webhooks li", has_text="127.0.0.1:9/alarmcloud").first
    page.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name=re.compile("^Remove")).click()
    assert len(api(site).get("/api/v1/webhooks").json()["items"]) == 1
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=re.compile("^Remove")).click()
    page.get_by_text("No webhooks yet.").wait_for()
    assert api(site).get("/api/v1/webhooks").json()["items"] == []


# ---------------------------------------------------------------- operator


def test_operator_page(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    assert page.get_by_role("link", name="Operator").count() == 0
    page.goto(site.url + "/operator")
    page.get_by_role("heading", name="Operators only").wait_for()
    page.context.clear_cookies()

    login(page, site.url, OPERATOR)
    page.get_by_role("link", name="Operator").click()
    plugins = page.locator("section", has=page.get_by_role("heading", name="Plugins"))
    assert "instar" in plugins.inner_text() and "loaded" in plugins.inner_text()
    users = page.locator("section", has=page.get_by_role("heading", name="Users"))
    assert OWNER in users.inner_text() and OPERATOR in users.inner_text()
    fair = page.locator("section", has=page.get_by_role("heading", name="Fair use"))
    # the camera that is not in the normal state is listed first, with its reason
    assert "more than 300 alarm clips" in fair.locator("tbody tr").first.inner_text()
    fair.get_by_label("Override for Garden").select_option("normal")
    page.locator(".flash").get_by_text("Override saved.").wait_for()
    cam = api(site).get(f"/api/v1/cameras/{site.camera_id}").json()
    assert cam["fair_use"]["override"] == "normal" and cam["fair_use"]["state"] == "normal"
    fair.get_by_label("Override for Garden").select_option("")
    page.locator(".flash").get_by_text("Override saved.").wait_for()
    assert api(site).get(f"/api/v1/cameras/{site.camera_id}").json()["fair_use"]["override"] is None


# ---------------------------------------------------------------- empty states


def test_a_new_account_is_told_what_to_do_next(page: Any, site: Site) -> None:
    page.goto(site.url + "/signup")
    page.get_by_label("E-mail address").fill("fresh@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/cameras\?welcome=1"))
    assert "Add your first camera" in page.locator("main").inner_text()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alarms").click()
    page.get_by_role("link", name="Add your first camera").wait_for()
    page.goto(site.url + "/storage")
    page.get_by_text("No clips stored yet.").wait_for()
    page.goto(site.url + "/links")
    page.get_by_text("No services are linked to your account.").wait_for()
    page.goto(site.url + "/privacy-center")
    page.get_by_text("You have not given or withdrawn any consent yet.").wait_for()
    page.goto(site.url + "/notifications")
    page.get_by_text("No webhooks yet.").wait_for()


def test_a_wrong_address_gets_a_page_with_a_way_back(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    response = page.goto(site.url + "/no/such/page")
    assert response.status == 404
    page.get_by_role("heading", name="Page not found").wait_for()
    page.get_by_role("link", name="Back to the alarms").click()
    page.wait_for_url(site.url + "/")


# ---------------------------------------------------------------- destructive actions (last)


def test_deleting_asks_first(page: Any, site: Site) -> None:
    victim = next(c[0] for c in clips_by_verdict(site)["clips"] if c[0] != site.event_id)
    login(page, site.url, OWNER)
    page.goto(site.url + f"/events/{victim}")
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Delete this clip").click()
    assert api(site).get(f"/api/v1/events/{victim}").status_code == 200
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete this clip").click()
    page.wait_for_url(site.url + "/")
    assert api(site).get(f"/api/v1/events/{victim}").status_code == 404
    assert victim not in cards(page)

    # removing a camera asks first, then takes it off the list
    cam = api(site).post("/api/v1/cameras", json={"name": "Shed", "brand": "instar", "model": "IN-9008"}).json()
    page.goto(site.url + f"/cameras/{cam['id']}")
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Remove this camera").click()
    assert api(site).get(f"/api/v1/cameras/{cam['id']}").status_code == 200
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove this camera").click()
    page.wait_for_url(site.url + "/cameras")
    assert "Shed" not in page.locator("main").inner_text()
    assert api(site).get(f"/api/v1/cameras/{cam['id']}").status_code == 404

    # account deletion: a wrong password is refused with a message, a dismissed dialog deletes nothing
    page.goto(site.url + "/privacy-center")
    form = page.locator("form[data-method=DELETE]")
    form.get_by_label("Your password").fill("not my password")
    page.once("dialog", lambda d: d.accept())
    # the refusal itself is awaited first: a failure then says whether the request went out and what came back
    with page.expect_response(lambda r: r.url.endswith("/api/v1/me") and r.request.method == "DELETE") as refused:
        form.get_by_role("button", name="Delete my account").click()
    assert refused.value.status == 401
    form.get_by_role("alert").wait_for()
    form.get_by_label("Your password").fill(PASSWORD)
    page.once("dialog", lambda d: d.dismiss())
    form.get_by_role("button", name="Delete my account").click()
    assert api(site).get("/api/v1/me").status_code == 200
