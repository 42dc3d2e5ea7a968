"""Known plates in a real browser: name a plate from the clip it was read in, see the name on the alarms page,
rename it, stop announcing it, forget it; a sub-user sees plates but never the owner's names for them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, opened_page, owner_api, watch  # noqa: E402

pytestmark = pytest.mark.browser
pytest.importorskip("alarmcloud_detect_plates")  # the page and its menu entry come with the plates detector


def _plate_event(site: Site) -> str:
    from alarmcloud.models import FindingRow
    from sqlmodel import select

    with site.core.db.session() as s:  # type: ignore[attr-defined]
        return s.exec(select(FindingRow.clip_id).where(FindingRow.label == "plate")).first()


def test_name_a_plate_from_its_clip_rename_silence_and_forget_it(chromium: Any, site: Site) -> None:
    event_id = _plate_event(site)  # the seeded clip with the plate "B AC 1234"
    with opened_page(chromium, 1280, 900) as page:
        outside, errors = watch(page, site.url)
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/events/{event_id}")
        page.get_by_role("link", name="Name this plate").click()
        page.wait_for_url("**/plates?text=BAC1234#add")
        form = page.locator("#add form")
        assert form.get_by_role("textbox", name="Plate").input_value() == "BAC1234"  # taken from the clip
        form.get_by_role("textbox", name="Name").fill("Grandpa")
        form.get_by_label("Announce when read").uncheck()
        form.get_by_role("button", name="Add plate").click()
        page.wait_for_url(site.url + "/plates")
        page.locator(".flash").filter(has_text="Plate saved.").wait_for()
        assert page.get_by_label("Name of BAC1234").input_value() == "Grandpa"
        assert not page.get_by_label("Announce BAC1234").is_checked()
        assert page.evaluate(AUDIT_JS) == []  # labels, contrast, sizes (tests/e2e/audit.js)

        seen = page.locator("[data-last-seen]")
        assert seen.inner_text().startswith("Last seen ")  # the clip it was read in, on its camera
        assert seen.get_by_role("link").get_attribute("href") == f"/events/{event_id}"

        page.get_by_label("Name of BAC1234").fill("Grandpa Joe")
        page.get_by_label("Announce BAC1234").check()
        page.get_by_label("count reads of BAC1234 one character off").uncheck()
        page.get_by_role("button", name="Save BAC1234").click()
        page.locator(".flash").filter(has_text="Saved BAC1234.").wait_for()
        (saved,) = owner_api(site).get("/api/v1/plates").json()["items"]
        assert saved["name"] == "Grandpa Joe" and saved["notify"] is True and saved["text"] == "BAC1234"
        assert saved["close_reads"] is False and saved["last_seen"]["event_id"] == event_id

        page.get_by_role("link", name="Alarms with BAC1234").click()  # the alarms page, filtered to the plate
        page.wait_for_url("**/?plate=BAC1234")
        card = page.locator(f'.event[data-event-id="{event_id}"]')
        assert "Grandpa Joe" in card.inner_text() and page.locator(".event").count() == 1
        page.goto(f"{site.url}/events/{event_id}")
        assert page.locator(".findings").get_by_text("Grandpa Joe").is_visible()
        assert page.get_by_role("link", name="Name this plate").count() == 0  # named already

        page.goto(site.url + "/plates")
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Forget BAC1234").click()
        page.locator(".flash").filter(has_text="Plate forgotten.").wait_for()
        page.get_by_text("No known plates yet.").wait_for()
        assert owner_api(site).get("/api/v1/plates").json()["items"] == []
        assert outside == [] and errors == []


def test_a_sub_user_sees_the_plate_but_not_the_owners_name_for_it(chromium: Any, site: Site) -> None:
    event_id = _plate_event(site)
    owner = owner_api(site)
    assert owner.post("/api/v1/plates", json={"text": "B-AC 1234", "name": "Neighbour Anna"}).status_code == 201
    camera_id = owner.get(f"/api/v1/events/{event_id}").json()["camera_id"]
    r = owner.post("/api/v1/subusers", json={"email": "plates-kid@example.com", "password": PASSWORD,
                                             "rights": {camera_id: "view"}})
    assert r.status_code == 201, r.text
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, "plates-kid@example.com")
        page.goto(f"{site.url}/events/{event_id}")
        assert page.locator(".findings .plate").inner_text() == "B AC 1234"
        assert "Neighbour Anna" not in page.content()
        assert page.get_by_role("link", name="Name this plate").count() == 0  # the owner's list
        page.get_by_role("link", name="Plates").click()
        page.get_by_text("The account owner keeps the list of known plates.").wait_for()
        assert "Neighbour Anna" not in page.content()
    assert owner.delete(f"/api/v1/plates/{owner.get('/api/v1/plates').json()['items'][0]['id']}").status_code == 204


def test_a_clip_analysed_while_the_alarms_page_is_open_gets_its_plate_and_the_owners_name(chromium: Any,
                                                                                          site: Site) -> None:
    """The alarms page updates a clip's card when its analysis finishes (no reload): the plate chip comes with the
    owner's name for a known plate, as the server draws it."""
    from alarmcloud.models import Clip, FindingRow
    from sqlmodel import select

    event_id = _plate_event(site)
    owner = owner_api(site)
    pid = owner.post("/api/v1/plates", json={"text": "BAC1234", "name": "Grandpa"}).json()["id"]
    core: Any = site.core  # type: ignore[attr-defined]
    with core.db.session() as s:  # the clip as it was while its analysis ran: no verdict, no findings yet
        clip = s.get(Clip, event_id)
        kept = (clip.status, clip.verdict)
        rows = s.exec(select(FindingRow).where(FindingRow.clip_id == event_id)).all()
        findings = [r.model_dump(exclude={"id"}) for r in rows]
        for r in rows:
            s.delete(r)
        clip.status, clip.verdict = "pending", None
        s.add(clip)
        s.commit()
    try:
        with opened_page(chromium, 1280, 900) as page:
            login(page, site.url, OWNER)
            page.goto(site.url + "/")
            card = page.locator(f'.event[data-event-id="{event_id}"]')
            assert card.locator(".badge").inner_text() == "Analysing…" and card.locator(".plate").count() == 0
            with core.db.session() as s:  # the analysis finishes
                s.add_all([FindingRow(**f) for f in findings])
                clip = s.get(Clip, event_id)
                clip.status, clip.verdict = kept
                s.add(clip)
                s.commit()
            card.locator(".plate-name").wait_for(timeout=20_000)
            assert card.locator(".plate").inner_text() == "B AC 1234"  # as read; the name matches it
            assert card.locator(".plate-name").inner_text() == "Grandpa"
    finally:
        with core.db.session() as s:
            clip = s.get(Clip, event_id)
            if clip.status == "pending":
                s.add_all([FindingRow(**f) for f in findings])
                clip.status, clip.verdict = kept
                s.add(clip)
                s.commit()
        assert owner.delete(f"/api/v1/plates/{pid}").status_code == 204
