"""The camera page's detector options in a real browser: tick plate countries, save, reload; a wrong number's error."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, opened_page, owner_api  # noqa: E402

pytestmark = pytest.mark.browser


def stored(site: Site, camera_id: str) -> dict[str, Any]:
    return owner_api(site).get(f"/api/v1/cameras/{camera_id}/detectors").json()["options"]


def visible_choices(card: Any) -> list[str]:
    return [t.strip() for t in card.locator("[data-option=countries] .choice-list label:visible").all_inner_texts()]


def test_owner_ticks_two_plate_countries_saves_reloads_and_resets(chromium: Any, site: Site) -> None:
    owner_api(site).put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"options": {"plates": None}})
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/cameras/{site.camera_id}")
        card = page.locator("#detectors")
        summary = card.get_by_role("button", name="Options of Licence plates")
        assert "Plate countries: deployment default (all " in summary.inner_text()
        summary.click()
        countries = card.get_by_role("group", name="Plate countries")
        assert "fewer countries mean fewer misreads" in countries.inner_text()
        assert countries.get_by_label("DE Germany").is_visible()
        everything = visible_choices(card)
        assert len(everything) >= 11 and "AT Austria" in everything

        # the filter box narrows the long list (code or name); Enter in it does not save
        search = countries.get_by_label("Filter plate countries")
        search.fill("austr")
        assert visible_choices(card) == ["AT Austria"]
        search.press("Enter")
        countries.get_by_label("AT Austria").check()
        search.fill("zz-nothing")
        assert visible_choices(card) == [] and countries.get_by_text("No plate countries match").is_visible()
        search.fill("")
        assert visible_choices(card) == everything
        countries.get_by_label("DE Germany").focus()
        page.keyboard.press("Space")  # ticked by keyboard
        assert card.get_by_text("Not saved yet.").is_visible()
        assert stored(site, site.camera_id) == {}  # nothing changes before Save

        card.get_by_role("button", name="Save Licence plates options").click()
        card.get_by_role("status").filter(has_text="Saved.").wait_for()
        assert stored(site, site.camera_id) == {"plates": {"countries": ["DE", "AT"]}}
        assert "Plate countries: DE, AT" in summary.inner_text()

        page.reload()
        summary = card.get_by_role("button", name="Options of Licence plates")
        assert "Plate countries: DE, AT" in summary.inner_text()
        summary.click()
        checked = card.locator("[data-option=countries] input:checked")
        assert [checked.nth(i).get_attribute("value") for i in range(checked.count())] == ["DE", "AT"]
        assert "Now: DE, AT." in countries.inner_text()

        # back to the deployment default
        countries.get_by_role("button", name="Use the deployment default").click()
        assert card.locator("[data-option=countries] input:checked").count() == 0
        card.get_by_role("button", name="Save Licence plates options").click()
        card.get_by_role("status").filter(has_text="Saved.").wait_for()
        assert stored(site, site.camera_id) == {}
        assert "Now: deployment default (all " in countries.inner_text()


def test_an_out_of_range_number_shows_the_error_and_stores_nothing(chromium: Any, site: Site) -> None:
    owner_api(site).put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"options": {"rain": None}})
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/cameras/{site.camera_id}")
        card = page.locator("#detectors")
        toggle = card.get_by_role("button", name="Options of Rain and snow")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert not card.get_by_role("button", name="Save Rain and snow options").is_visible()
        toggle.focus()
        page.keyboard.press("Enter")  # the options open from the keyboard
        assert toggle.get_attribute("aria-expanded") == "true"
        threshold = card.get_by_label("Rain / snow threshold")
        assert threshold.input_value() == "" and threshold.get_attribute("placeholder") == "deployment default (0.65)"
        threshold.fill("1.5")
        card.get_by_role("button", name="Save Rain and snow options").click()
        alert = card.get_by_role("alert")
        alert.wait_for()
        assert alert.inner_text() == "Rain and snow: threshold must be from 0.05 to 0.99, not 1.5"
        assert stored(site, site.camera_id) == {}
        threshold.fill("0.85")
        threshold.press("Enter")  # submits the small form from the keyboard
        card.get_by_role("status").filter(has_text="Saved.").wait_for()
        assert not alert.is_visible()
        assert stored(site, site.camera_id) == {"rain": {"threshold": 0.85}}
        assert "Rain / snow threshold: 0.85" in card.get_by_role("button", name="Options of Rain and snow").inner_text()
        # a phone in dark mode, the options open: the page passes the audit (labels, contrast, no sideways scroll)
        with opened_page(chromium, 375, 740, color_scheme="dark") as phone:
            login(phone, site.url, OWNER)
            phone.goto(f"{site.url}/cameras/{site.camera_id}")
            for toggle in phone.locator("#detectors [data-options-toggle]").all():
                toggle.click()
            phone.wait_for_load_state("networkidle")
            assert phone.evaluate(AUDIT_JS) == []
    owner_api(site).put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"options": {"rain": None}})


def test_a_viewer_sees_the_options_but_cannot_change_them(chromium: Any, site: Site) -> None:
    c = owner_api(site)
    c.put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"options": {"plates": {"countries": ["NL"]}}})
    r = c.post("/api/v1/subusers", json={"email": "viewer.options@example.org", "password": PASSWORD,
                                         "rights": {site.camera_id: "view"}})
    assert r.status_code == 201, r.text
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, "viewer.options@example.org")
        page.goto(f"{site.url}/cameras/{site.camera_id}")
        card = page.locator("#detectors")
        values = card.locator("dl[aria-label='Options of Licence plates']")
        assert values.locator("dt").all_inner_texts() == ["Plate countries"]
        assert values.locator("dd").all_inner_texts() == ["NL"]
        assert card.locator("form").count() == 0 and card.get_by_role("button").count() == 0
        assert card.get_by_role("switch").count() >= 2
        assert all(sw.is_disabled() for sw in card.get_by_role("switch").all())
        assert "admin right" in card.inner_text()
    c.put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"options": {"plates": None}})


def test_a_camera_sending_its_sub_stream_is_told_to_send_the_main_stream(chromium: Any, site: Site) -> None:
    c = owner_api(site)
    assert c.put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"rain": True, "plates": False}).status_code == 200
    source = c.get(f"/api/v1/cameras/{site.camera_id}/detectors").json()["source"]
    assert source["width"] == 640  # the seeded demo camera uploads 640 x 352 clips
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/cameras/{site.camera_id}")
        card = page.locator("#detectors")
        rain = card.locator("[data-advice-for=rain]")
        assert rain.is_visible() and rain.get_attribute("role") == "note"
        assert rain.inner_text() == (
            f"Rain and snow is measured to work well on clips at least 960 px wide; this camera's last "
            f"{source['clips']} clips are 640 × 352, probably its sub-stream. Set the camera to record and upload its "
            "alarm videos from its main (full-resolution) stream.")
        plates = card.locator("[data-advice-for=plates]")
        assert plates.count() == 1 and not plates.is_visible()  # plates are off here: no advice shown for them
        assert card.locator("[data-advice-for=insects]").count() == 0  # any picture size will do for insects
        # switching shows and hides it at once, without a reload
        card.get_by_role("switch", name=re.compile("Rain and snow")).uncheck()
        page.get_by_text("Rain and snow detection switched off.").wait_for()
        assert not rain.is_visible()
        card.get_by_role("switch", name=re.compile("Licence plates")).check()
        page.get_by_text("Licence plates detection switched on.").wait_for()
        assert plates.is_visible() and plates.inner_text().startswith("Licence plates is measured to work well")
        page.reload()
        assert not card.locator("[data-advice-for=rain]").is_visible()
        assert card.locator("[data-advice-for=plates]").is_visible()
    c.put(f"/api/v1/cameras/{site.camera_id}/detectors", json={"rain": True, "plates": False})
